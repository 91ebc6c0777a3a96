import AirlockMCP
import AirlockState
import AirlockSystem
import Foundation

/// Secrets of MCP servers (`airlock mcp secret set SERVER.KEY`): one 0600 file each, beside
/// Airlock's other secrets. A server gets only those named `SERVER.*` in its catalog entry.
public struct MCPSecrets: Sendable {
    public let directory: String

    public init(store: StateStore) {
        directory = store.secretsDirectory + "/mcp"
    }

    public static func validate(name: String) throws {
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9._-]*\.[A-Za-z0-9_.-]+/) != nil, name.count <= 128 else {
            throw AirlockError(
                .invalidArgument, "MCP secret name '\(name)' must be SERVER.KEY (letters, digits, '.', '_', '-')")
        }
    }

    func path(_ name: String) -> String { directory + "/" + name }

    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// The value, or nil when it was never set.
    public func value(_ name: String) throws -> String? {
        try Self.validate(name: name)
        return Files.readRegularFile(path(name), limit: 1 << 20)
    }

    public func set(_ name: String, value: String) throws {
        try Self.validate(name: name)
        guard !value.isEmpty else { throw AirlockError(.invalidArgument, "the secret's value is empty") }
        try Files.makeDirectory(directory, mode: 0o700)
        try Files.writeAtomically(path(name), value, mode: 0o600)
    }

    public func remove(_ name: String) throws {
        try Self.validate(name: name)
        guard Files.exists(path(name)) else { throw AirlockError(.notFound, "no MCP secret named '\(name)'") }
        Files.remove(path(name))
    }

    /// Every stored value (for `--block-secrets`).
    public func values() -> [String] {
        names().compactMap { try? value($0) }
    }
}

/// Named sets of servers and their settings (`mcp-create-profile`, `--profile`), as JSON in
/// `$XDG_CONFIG_HOME/airlock/mcp-profiles/`.
public struct MCPProfiles: Sendable {
    public let directory: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        directory = UserConfig.directory(environment: environment) + "/mcp-profiles"
    }

    public struct Profile: Codable, Sendable, Equatable {
        public var servers: [String]
        public var config: [String: [String: JSONValue]]
    }

    static func validate(name: String) throws {
        guard name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9._-]{0,63}/) != nil else {
            throw AirlockError(.invalidArgument, "profile name '\(name)' must be letters, digits, '.', '_' or '-'")
        }
    }

    /// The profile a gateway starts from: the one named, or, when neither a name nor pinned
    /// servers are given, the profile `default` if there is one.
    public func starting(profile name: String?, pinned: [String]?) throws -> Profile? {
        try name.map(load) ?? (pinned == nil ? try? load("default") : nil)
    }

    public func load(_ name: String) throws -> Profile {
        try Self.validate(name: name)
        guard let text = Files.readRegularFile(directory + "/" + name + ".json", limit: 1 << 20) else {
            throw AirlockError(.notFound, "no MCP profile named '\(name)'")
        }
        do {
            return try JSONDecoder().decode(Profile.self, from: Data(text.utf8))
        } catch {
            throw AirlockError(.failed, "profile \(name) is damaged: \(error)")
        }
    }

    public func save(_ name: String, _ profile: Profile) throws {
        try Self.validate(name: name)
        try Files.makeDirectory(directory, mode: 0o700)
        try Files.writeAtomically(directory + "/" + name + ".json", try JSONText.pretty(profile) + "\n", mode: 0o600)
    }
}

/// The part of JSON Schema that server settings use: types, properties, required, enum,
/// additionalProperties, items.
enum JSONSchemaCheck {
    static func problems(_ value: JSONValue, against schema: JSONValue, at path: String = "config") -> [String] {
        var problems: [String] = []
        if let type = schema["type"]?.stringValue, !matches(value, type: type) {
            return ["\(path) must be \(type == "object" || type == "array" || type == "integer" ? "an" : "a") \(type)"]
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            problems.append("\(path) must be one of \(options.map { $0.text() }.joined(separator: ", "))")
        }
        if case .object(let object) = value {
            let properties = schema["properties"]?.objectValue ?? [:]
            for required in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            where object[required] == nil {
                problems.append("\(path).\(required) is required")
            }
            for (key, item) in object.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] {
                    problems += self.problems(item, against: property, at: path + "." + key)
                } else if schema["additionalProperties"] == .bool(false) {
                    problems.append("\(path).\(key) is not a known setting")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() {
                problems += self.problems(item, against: itemSchema, at: "\(path)[\(index)]")
            }
        }
        return problems
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null):
            return true
        case ("number", .int), ("number", .double):
            return true
        case ("integer", _):
            return value.intValue != nil
        default:
            return false
        }
    }
}

/// Finds and hides stored secrets in tool arguments and results (`--block-secrets`).
struct SecretScreen {
    /// Values shorter than this are not looked for: they would match by chance.
    static let minimumLength = 6
    let values: [(name: String, value: String)]

    init(values: [(name: String, value: String)]) {
        self.values = values.filter { $0.value.count >= Self.minimumLength }
    }

    /// The name of the first secret whose value appears in any string of `value`.
    func firstMatch(in value: JSONValue) -> String? {
        switch value {
        case .string(let text): return values.first { text.contains($0.value) }?.name
        case .array(let items): return items.lazy.compactMap(firstMatch(in:)).first
        case .object(let object): return object.values.lazy.compactMap(firstMatch(in:)).first
        default: return nil
        }
    }

    /// Replaces every secret's value in the result's strings; true when one was there.
    func redact(_ result: inout ToolResult) -> Bool {
        var found = false
        func clean(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(var text):
                for secret in values where text.contains(secret.value) {
                    text = text.replacingOccurrences(of: secret.value, with: "[redacted: \(secret.name)]")
                    found = true
                }
                return .string(text)
            case .array(let items): return .array(items.map(clean))
            case .object(let object): return .object(object.mapValues(clean))
            default: return value
            }
        }
        result.content = result.content.map(clean)
        result.structuredContent = result.structuredContent.map(clean)
        return found
    }
}
