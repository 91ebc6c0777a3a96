import Foundation

/// Writes, removes and finds the gateway's entry in an MCP client's own settings file, leaving
/// the rest of the file as it was.
///
/// ```swift
/// let wiring = ClientWiring(environment: ProcessInfo.processInfo.environment)
/// let change = try wiring.connect(.gemini, scope: .global, name: "airlock",
///                                 target: .stdio(command: "airlock", arguments: ["mcp", "gateway", "run"]))
/// ```
public struct ClientWiring: Sendable {
    public let environment: [String: String]
    /// Where connect records what it made (nil: nothing recorded, nothing but the entry removed).
    public let ledgerPath: String?

    public init(environment: [String: String], ledgerPath: String? = nil) {
        self.environment = environment
        self.ledgerPath = ledgerPath
    }

    /// What a connect or disconnect did.
    public struct Change: Sendable, Equatable {
        public enum Action: String, Sendable {
            case added
            case replaced
            case unchanged
            case removed
            case absent
        }

        public let client: MCPClientKind
        public let scope: WiringScope
        public let file: String
        public let action: Action
        /// The file was made, or (on disconnect) removed because nothing else was in it.
        public let fileCreatedOrRemoved: Bool
    }

    /// Where a client stands in one scope.
    public struct Status: Sendable {
        public let client: MCPClientKind
        public let scope: WiringScope
        public let file: String
        public let fileExists: Bool
        /// The entry's command line or URL, when it is there.
        public let entry: String?
        /// Why the file could not be read, if it could not.
        public let problem: String?
    }

    public func connect(_ client: MCPClientKind, scope: WiringScope, name: String, target: GatewayTarget)
        throws(WiringError) -> Change
    {
        try Self.checkName(name)
        let entry = try client.entry(for: target)
        let path = try client.file(scope, environment: environment)
        let before = try SettingsFile.read(path)
        var ledger = WiringLedger.load(ledgerPath)
        let file = SettingsFile.resolved(path)
        let existed = before.map { entryExists(client, name: name, in: $0) } ?? false
        var record =
            (existed ? ledger.record(file: file, name: name) : nil)
            ?? WiringLedger.Record(file: file, name: name, madeFile: before == nil, madePaths: [])
        let after: String
        switch client.format {
        case .json:
            var document = try parsed(before ?? "", path: path)
            if let made = try document.set([client.serversKey, name], to: .object(entry)) {
                record.madePaths.append(made)
            }
            if client == .vscode {
                let inputs = ["inputs"]
                if case .url = target {
                    let made = try document.upsert(
                        MCPClientKind.vscodeTokenInput, inArray: inputs, matching: "id",
                        value: MCPClientKind.vscodeInput)
                    if made { record.madePaths.append(inputs) }
                } else {
                    document.removeFromArray(inputs, matching: "id", value: MCPClientKind.vscodeInput)
                    if record.madePaths.contains(inputs) {
                        document.removeIfEmpty(inputs)
                        record.madePaths.removeAll { $0 == inputs }
                    }
                }
            }
            after = document.text
        case .toml:
            var tables = TOMLTables(text: before ?? "")
            let table = [client.serversKey, name]
            if let other = try tomlCall({ () throws(WiringError) in try tables.otherDefinition(of: table) }, path) {
                throw WiringError(
                    .unsupported,
                    "\(path): \(name) is defined outside a [\(table.joined(separator: "."))] table (\(other)); edit it there by hand"
                )
            }
            _ = try tomlCall({ () throws(WiringError) in try tables.removeTables(table) }, path)
            tables.append(table, entries: entry)
            after = tables.text
        }
        let action: Change.Action = before == after ? .unchanged : (existed ? .replaced : .added)
        if action != .unchanged { try SettingsFile.write(after, to: path, base: base(of: scope)) }
        ledger.put(record)
        try ledger.save(ledgerPath)
        return Change(client: client, scope: scope, file: path, action: action, fileCreatedOrRemoved: before == nil)
    }

    public func disconnect(_ client: MCPClientKind, scope: WiringScope, name: String) throws(WiringError) -> Change {
        try Self.checkName(name)
        let path = try client.file(scope, environment: environment)
        guard let before = try SettingsFile.read(path) else {
            return Change(client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
        }
        var ledger = WiringLedger.load(ledgerPath)
        let file = SettingsFile.resolved(path)
        let record = ledger.record(file: file, name: name)
        let after: String
        let empty: Bool
        switch client.format {
        case .json:
            var document = try parsed(before, path: path)
            guard document.remove([client.serversKey, name]) else {
                return Change(client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
            }
            if client == .vscode {
                document.removeFromArray(["inputs"], matching: "id", value: MCPClientKind.vscodeInput)
            }
            for made in (record?.madePaths ?? []).reversed() { document.removeIfEmpty(made) }
            after = document.text
            empty = document.isEmptyObject
        case .toml:
            var tables = TOMLTables(text: before)
            let table = [client.serversKey, name]
            guard try tomlCall({ () throws(WiringError) in try tables.removeTables(table) }, path) else {
                if let other = try tomlCall({ () throws(WiringError) in try tables.otherDefinition(of: table) }, path) {
                    throw WiringError(
                        .unsupported,
                        "\(path): \(name) is defined outside a [\(table.joined(separator: "."))] table (\(other)); remove it there by hand"
                    )
                }
                return Change(client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
            }
            after = tables.text
            empty = after.isEmpty
        }
        // A file connect made goes when nothing else is in it; one the user had stays, even empty.
        let removeFile = empty && record?.madeFile == true
        if removeFile {
            try SettingsFile.remove(path, base: base(of: scope))
        } else {
            try SettingsFile.write(after, to: path, base: base(of: scope))
        }
        ledger.drop(file: file, name: name)
        try ledger.save(ledgerPath)
        return Change(client: client, scope: scope, file: path, action: .removed, fileCreatedOrRemoved: removeFile)
    }

    /// Where `client` stands in `scope` (nil for a scope the client does not have).
    public func status(_ client: MCPClientKind, scope: WiringScope, name: String) -> Status? {
        guard let path = try? client.file(scope, environment: environment) else { return nil }
        let text: String?
        do {
            text = try SettingsFile.read(path)
        } catch {
            return Status(
                client: client, scope: scope, file: path, fileExists: true, entry: nil, problem: error.message)
        }
        guard let text else {
            return Status(client: client, scope: scope, file: path, fileExists: false, entry: nil, problem: nil)
        }
        switch client.format {
        case .json:
            let document: JSONCDocument
            do {
                document = try parsed(text, path: path)
            } catch {
                return Status(
                    client: client, scope: scope, file: path, fileExists: true, entry: nil, problem: error.message)
            }
            let entry = document.value(at: [client.serversKey, name]).map(Self.describe)
            return Status(client: client, scope: scope, file: path, fileExists: true, entry: entry, problem: nil)
        case .toml:
            let tables = TOMLTables(text: text)
            let table = [client.serversKey, name]
            guard (try? tables.hasTable(table)) == true else {
                return Status(client: client, scope: scope, file: path, fileExists: true, entry: nil, problem: nil)
            }
            let command = tables.strings("command", inTable: table).map {
                $0 + (tables.strings("args", inTable: table) ?? [])
            }
            let entry = tables.string("url", inTable: table) ?? command?.joined(separator: " ") ?? "(set)"
            return Status(client: client, scope: scope, file: path, fileExists: true, entry: entry, problem: nil)
        }
    }

    // MARK: - Helpers

    /// The directory above which nothing is made or removed: the project, else the home.
    func base(of scope: WiringScope) -> String {
        switch scope {
        case .project(let directory): directory
        case .global: environment["HOME"] ?? "/"
        }
    }

    static func checkName(_ name: String) throws(WiringError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-".unicodeScalars)
        guard !name.isEmpty, name.count <= 64, name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw WiringError(.unsupported, "the entry's name '\(name)' must be letters, digits and '-' (at most 64)")
        }
    }

    func parsed(_ text: String, path: String) throws(WiringError) -> JSONCDocument {
        do {
            return try JSONCDocument(text: text)
        } catch {
            throw WiringError(.malformed, "\(path): \(error.message); nothing was changed")
        }
    }

    func tomlCall<T>(_ body: () throws(WiringError) -> T, _ path: String) throws(WiringError) -> T {
        do {
            return try body()
        } catch {
            throw WiringError(error.code, "\(path): \(error.message); nothing was changed")
        }
    }

    func entryExists(_ client: MCPClientKind, name: String, in text: String) -> Bool {
        switch client.format {
        case .json: (try? JSONCDocument(text: text))?.value(at: [client.serversKey, name]) != nil
        case .toml: (try? TOMLTables(text: text).hasTable([client.serversKey, name])) == true
        }
    }

    /// An entry in a line: its URL, or its command line.
    static func describe(_ entry: JSONCDocument.Element) -> String {
        if let url = entry.member("url")?.string ?? entry.member("httpUrl")?.string { return url }
        if let items = entry.member("command")?.items {
            return items.compactMap(\.string).joined(separator: " ")
        }
        let command = entry.member("command")?.string ?? "(set)"
        return ([command] + (entry.member("args")?.items ?? []).compactMap(\.string)).joined(separator: " ")
    }
}
