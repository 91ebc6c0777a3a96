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
        return try WiringLedger.locked(ledgerPath) { () throws(WiringError) in
            // Another program (the client itself) may write the file meanwhile: the edit is
            // made again from what is there if it changed between the read and the write.
            for _ in 0..<3 {
                let before = try SettingsFile.read(path)
                var ledger = WiringLedger.load(ledgerPath)
                let file = SettingsFile.resolved(path)
                let existed = before.map { entryExists(client, name: name, in: $0) } ?? false
                var record =
                    ledger.record(file: file)
                    ?? WiringLedger.Record(
                        file: file, names: [], madeFile: before == nil, madePaths: [], madeDirectories: [])
                let after = try edited(
                    before, client: client, name: name, entry: entry, target: target, record: &record)
                if !record.names.contains(name) { record.names.append(name) }
                let action: Change.Action = before == after ? .unchanged : (existed ? .replaced : .added)
                if action != .unchanged {
                    try SettingsFile.checkWritable(path)
                    guard try SettingsFile.read(path) == before else { continue }
                    // The record first: a file written but not recorded could not be cleaned up.
                    ledger.put(record)
                    try ledger.save(ledgerPath)
                    record.madeDirectories += try SettingsFile.write(after, to: path, base: base(of: scope))
                }
                ledger.put(record)
                try ledger.save(ledgerPath)
                return Change(
                    client: client, scope: scope, file: path, action: action, fileCreatedOrRemoved: before == nil)
            }
            throw WiringError(
                .io, "\(path) kept changing while it was edited (is \(client.title) writing it?); try again")
        }
    }

    /// The text with the entry set, and what was made for it noted in `record`.
    func edited(
        _ before: String?, client: MCPClientKind, name: String, entry: [(key: String, value: SettingsValue)],
        target: GatewayTarget, record: inout WiringLedger.Record
    ) throws(WiringError) -> String {
        switch client.format {
        case .json:
            var document = try parsed(before ?? "", path: record.file)
            do {
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
                        dropTokenInputIfUnused(&document, record: &record)
                    }
                }
            } catch {
                throw WiringError(error.code, "\(record.file): \(error.message); nothing was changed")
            }
            return document.text
        case .toml:
            var tables = TOMLTables(text: before ?? "")
            let table = [client.serversKey, name]
            let file = record.file
            if let other = try tomlCall({ () throws(WiringError) in try tables.otherDefinition(of: table) }, file) {
                throw WiringError(
                    .unsupported,
                    "\(file): [\(table.joined(separator: "."))] cannot be added (\(other)); edit the file by hand"
                )
            }
            _ = try tomlCall({ () throws(WiringError) in try tables.removeTables(table) }, file)
            tables.append(table, entries: entry)
            return tables.text
        }
    }

    /// VS Code's token input goes when no server of the file uses it any more.
    func dropTokenInputIfUnused(_ document: inout JSONCDocument, record: inout WiringLedger.Record) {
        let inputs = ["inputs"]
        let reference = "${input:\(MCPClientKind.vscodeInput)}"
        var withoutInputs = document
        withoutInputs.remove(inputs)
        guard !withoutInputs.text.contains(reference) else { return }
        document.removeFromArray(inputs, matching: "id", value: MCPClientKind.vscodeInput)
        if record.madePaths.contains(inputs) {
            document.removeIfEmpty(inputs)
            record.madePaths.removeAll { $0 == inputs }
        }
    }

    public func disconnect(_ client: MCPClientKind, scope: WiringScope, name: String) throws(WiringError) -> Change {
        try Self.checkName(name)
        let path = try client.file(scope, environment: environment)
        return try WiringLedger.locked(ledgerPath) { () throws(WiringError) in
            for _ in 0..<3 {
                guard let before = try SettingsFile.read(path) else {
                    return Change(
                        client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
                }
                var ledger = WiringLedger.load(ledgerPath)
                let file = SettingsFile.resolved(path)
                var record =
                    ledger.record(file: file)
                    ?? WiringLedger.Record(file: file, names: [], madeFile: false, madePaths: [], madeDirectories: [])
                record.names.removeAll { $0 == name }
                // What connect made goes with the last of its entries in the file.
                let last = record.names.isEmpty
                let after: String
                let empty: Bool
                switch client.format {
                case .json:
                    var document = try parsed(before, path: path)
                    guard document.remove([client.serversKey, name]) else {
                        return Change(
                            client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
                    }
                    if client == .vscode { dropTokenInputIfUnused(&document, record: &record) }
                    if last { for made in record.madePaths.reversed() { document.removeIfEmpty(made) } }
                    after = document.text
                    empty = document.isEmptyObject
                case .toml:
                    var tables = TOMLTables(text: before)
                    let table = [client.serversKey, name]
                    guard try tomlCall({ () throws(WiringError) in try tables.removeTables(table) }, path) else {
                        return Change(
                            client: client, scope: scope, file: path, action: .absent, fileCreatedOrRemoved: false)
                    }
                    after = tables.text
                    empty = after.isEmpty
                }
                // A file connect made goes when nothing else is in it; one the user had stays.
                let removeFile = last && empty && record.madeFile
                try SettingsFile.checkWritable(path)
                guard try SettingsFile.read(path) == before else { continue }
                if removeFile {
                    try SettingsFile.remove(path, madeDirectories: record.madeDirectories)
                } else {
                    try SettingsFile.write(after, to: path, base: base(of: scope))
                }
                ledger.put(record)
                try ledger.save(ledgerPath)
                return Change(
                    client: client, scope: scope, file: path, action: .removed, fileCreatedOrRemoved: removeFile)
            }
            throw WiringError(
                .io, "\(path) kept changing while it was edited (is \(client.title) writing it?); try again")
        }
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
