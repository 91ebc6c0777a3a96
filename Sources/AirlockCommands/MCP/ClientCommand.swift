import AirlockClientWiring
import AirlockGateway
import AirlockMCP
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

/// `airlock mcp client`: the gateway's entry in MCP clients' own settings files.
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Point MCP clients (Claude Code, Cursor, VS Code, Gemini, ...) at the gateway.",
        discussion: """
            Writes or removes one entry (named 'airlock') in the client's own MCP settings file, \
            in its own format, and leaves everything else in the file as it was: comments, \
            order, other servers. Clients: \(MCPClientKind.allCases.map(\.rawValue).joined(separator: ", ")).

            By default the entry starts the gateway over stdio (`airlock mcp gateway run`), so the \
            client gets the gateway's tools with nothing else running. With --url it points at a \
            gateway already serving HTTP; the client then sends the token from its own \
            environment (AIRLOCK_MCP_TOKEN; VS Code asks once and keeps it), so no file holds it.

              airlock mcp client connect claude-code --servers time,git
              airlock mcp client connect vscode --project . --profile dev
              airlock mcp client connect codex --url http://127.0.0.1:8811/mcp
              airlock mcp client ls
              airlock mcp client disconnect claude-code
            """,
        subcommands: [Connect.self, Disconnect.self, List.self])

    /// `--global` or `--project DIR`, shared by connect and disconnect.
    struct Where: ParsableArguments {
        @Flag(help: "The client's user-wide settings file (the default).")
        var global = false

        @Option(help: ArgumentHelp("The settings file of the project in DIR instead.", valueName: "dir"))
        var project: String?

        @Option(help: "The entry's name in the client's settings.")
        var name = "airlock"

        func validate() throws {
            if global && project != nil { throw ValidationError("--global and --project choose the file: give one") }
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
            if name.isEmpty || name.count > 64 || !name.allSatisfy(allowed.contains) {
                throw ValidationError("--name takes letters, digits and '-' (at most 64), not '\(name)'")
            }
        }

        func scope() throws -> WiringScope {
            guard let project else { return .global }
            let directory = Files.absolute(project)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw AirlockError(.notFound, "--project: \(project) is not a directory") }
            return .project(directory)
        }
    }

    static func client(_ name: String) throws -> MCPClientKind {
        guard let client = MCPClientKind(rawValue: name.lowercased()) else {
            throw ValidationError(
                "no client '\(name)': one of \(MCPClientKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return client
    }

    static func wiring() -> ClientWiring {
        ClientWiring(
            environment: ProcessInfo.processInfo.environment,
            ledgerPath: StateStore.default().root + "/mcp-clients.json")
    }

    static func failure(_ error: WiringError) -> AirlockError {
        switch error.code {
        case .malformed: AirlockError(.invalidConfiguration, error.message)
        case .unsupported: AirlockError(.unsupported, error.message)
        case .io: AirlockError(.failed, error.message)
        }
    }

    /// `~/x` for a path in the home directory: shorter lines.
    static func tilde(_ path: String) -> String {
        guard let home = ProcessInfo.processInfo.environment["HOME"], home != "/", path.hasPrefix(home + "/") else {
            return path
        }
        return "~" + path.dropFirst(home.count)
    }

    static func printJSON(_ value: JSONValue) {
        print(value.text())
    }
}

extension ClientCommand {
    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add the gateway to a client's MCP settings (or update the entry).",
            discussion: """
                Run it again to change the entry; `disconnect` takes it out. A settings file that \
                does not parse is named with the line and column, and left as it was.
                """)

        @Argument(help: ArgumentHelp("The client.", valueName: "client"))
        var client: String

        @OptionGroup var place: Where

        @Option(help: "The gateway starts with this saved profile's servers.")
        var profile: String?

        @Option(help: ArgumentHelp("The gateway offers exactly these servers (comma-separated).", valueName: "a,b"))
        var servers: String?

        @Option(
            help: ArgumentHelp(
                "Point the client at this running HTTP gateway instead of starting one (e.g. http://127.0.0.1:8811/mcp).",
                valueName: "url"))
        var url: String?

        @Flag(help: "Print what was done as JSON.")
        var json = false

        func validate() throws {
            if servers != nil && profile != nil {
                throw ValidationError("--servers and --profile both choose the servers: give one")
            }
            if let url {
                guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil
                else { throw ValidationError("--url takes an http:// or https:// URL, not '\(url)'") }
                if parsed.user != nil || parsed.password != nil {
                    throw ValidationError(
                        "--url must not hold credentials: the client sends the token from AIRLOCK_MCP_TOKEN")
                }
                if servers != nil || profile != nil {
                    throw ValidationError(
                        "--url points at a running gateway: its servers are chosen where it runs, not with --servers or --profile"
                    )
                }
            }
        }

        func run() throws {
            let kind = try ClientCommand.client(client)
            let scope = try place.scope()
            let target = try self.target()
            let change: ClientWiring.Change
            do {
                change = try ClientCommand.wiring().connect(kind, scope: scope, name: place.name, target: target)
            } catch {
                throw ClientCommand.failure(error)
            }
            let entry: String
            switch target {
            case .stdio(let command, let arguments): entry = ([command] + arguments).joined(separator: " ")
            case .url(let address, _): entry = address
            }
            if json {
                ClientCommand.printJSON(
                    .object([
                        "client": .string(kind.rawValue), "scope": .string(scope.label), "file": .string(change.file),
                        "action": .string(change.action.rawValue), "name": .string(place.name), "entry": .string(entry),
                        "fileCreated": .bool(change.fileCreatedOrRemoved),
                    ]))
                return
            }
            let verb =
                switch change.action {
                case .added: "added"
                case .replaced: "updated"
                default: "already had"
                }
            print(
                "\(kind.title) (\(scope.label)): \(verb) '\(place.name)' in \(ClientCommand.tilde(change.file)): \(entry)"
            )
            for line in hints(kind, target: target) { Context.progress(line) }
        }

        /// The gateway over stdio, or the URL with the token's variable.
        func target() throws -> GatewayTarget {
            if let url { return .url(url, tokenVariable: "AIRLOCK_MCP_TOKEN") }
            // Unknown servers or profiles fail here, not when the client first starts the gateway.
            let catalog = try ServerCatalog.load(extra: [])
            let pinned = servers.map(ServerCatalog.names)
            if let profile { _ = try MCPProfiles().starting(profile: profile, pinned: nil) }
            for name in pinned ?? [] { _ = try catalog.find(name) }
            var arguments = ["mcp", "gateway", "run"]
            if let servers { arguments += ["--servers", servers] }
            if let profile { arguments += ["--profile", profile] }
            return .stdio(command: Self.airlockCommand(), arguments: arguments)
        }

        /// `airlock` when that name on PATH is this binary, else this binary's path: the client
        /// starts it with its own PATH, which may not be the shell's.
        static func airlockCommand() -> String {
            let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "airlock"
            let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
            for directory in path.split(separator: ":") where directory.hasPrefix("/") {
                let candidate = String(directory) + "/airlock"
                if FileManager.default.isExecutableFile(atPath: candidate) {
                    let real = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
                    return real == me ? "airlock" : me
                }
            }
            return me
        }

        func hints(_ kind: MCPClientKind, target: GatewayTarget) -> [String] {
            guard case .url = target else {
                return kind == .claudeDesktop ? ["restart Claude Desktop to load it"] : []
            }
            switch kind {
            case .vscode:
                return [
                    "VS Code asks for the token (input '\(MCPClientKind.vscodeInput)') once and keeps it in its secret storage"
                ]
            case .kiro:
                return [
                    "Kiro sends the token from $AIRLOCK_MCP_TOKEN once that variable is approved (setting kiroAgent.mcpApprovedEnvVars)"
                ]
            default:
                return ["\(kind.title) sends the token from $AIRLOCK_MCP_TOKEN: set it where \(kind.title) starts"]
            }
        }
    }

    struct Disconnect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the gateway's entry from a client's MCP settings.",
            discussion: """
                Removes the entry, and the server map or the file too when the entry was all they \
                held. A client that was not connected is not an error.
                """)

        @Argument(help: ArgumentHelp("The client.", valueName: "client"))
        var client: String

        @OptionGroup var place: Where

        @Flag(help: "Print what was done as JSON.")
        var json = false

        func run() throws {
            let kind = try ClientCommand.client(client)
            let scope = try place.scope()
            let change: ClientWiring.Change
            do {
                change = try ClientCommand.wiring().disconnect(kind, scope: scope, name: place.name)
            } catch {
                throw ClientCommand.failure(error)
            }
            if json {
                ClientCommand.printJSON(
                    .object([
                        "client": .string(kind.rawValue), "scope": .string(scope.label), "file": .string(change.file),
                        "action": .string(change.action.rawValue), "name": .string(place.name),
                        "fileRemoved": .bool(change.fileCreatedOrRemoved),
                    ]))
                return
            }
            let file = ClientCommand.tilde(change.file)
            switch change.action {
            case .removed:
                print(
                    "\(kind.title) (\(scope.label)): removed '\(place.name)' from \(file)"
                        + (change.fileCreatedOrRemoved ? " (nothing else was in it: the file is gone)" : ""))
            default:
                print("\(kind.title) (\(scope.label)): was not connected (no '\(place.name)' in \(file))")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "Show which clients are connected to the gateway, and where.")

        @Option(help: ArgumentHelp("The project whose files to read too (default: here).", valueName: "dir"))
        var project: String?

        @Option(help: "The entry's name in the clients' settings.")
        var name = "airlock"

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let directory = Files.absolute(project ?? FileManager.default.currentDirectoryPath)
            if let project, !Files.isDirectory(directory) {
                throw AirlockError(.notFound, "--project: \(project) is not a directory")
            }
            let wiring = ClientCommand.wiring()
            var found: [ClientWiring.Status] = []
            for kind in MCPClientKind.allCases {
                for scope in [WiringScope.global, .project(directory)] {
                    if let status = wiring.status(kind, scope: scope, name: name) { found.append(status) }
                }
            }
            if json {
                ClientCommand.printJSON(
                    .array(
                        found.map { status in
                            .object([
                                "client": .string(status.client.rawValue), "scope": .string(status.scope.label),
                                "file": .string(status.file), "fileExists": .bool(status.fileExists),
                                "connected": .bool(status.entry != nil),
                                "entry": status.entry.map(JSONValue.string) ?? .null,
                                "problem": status.problem.map(JSONValue.string) ?? .null,
                            ])
                        }))
                return
            }
            let rows = found.map { status -> [String] in
                let state =
                    status.problem.map { "unreadable: " + $0 }
                    ?? status.entry.map { "connected: " + $0 }
                    ?? (status.fileExists ? "-" : "- (no file)")
                return [status.client.rawValue, status.scope.label, ClientCommand.tilde(status.file), state]
            }
            print(Table.render([["CLIENT", "SCOPE", "FILE", "GATEWAY"]] + rows), terminator: "")
        }
    }
}
