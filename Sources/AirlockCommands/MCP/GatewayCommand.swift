import AirlockGateway
import AirlockMCP
import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation
import Synchronization
import Yams

/// What `gateway run` and `tools` share: which servers, from which catalogs.
struct GatewaySelection: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Exactly these servers (comma-separated); the dynamic tools (mcp-find, mcp-add, ...) are then off.",
            valueName: "a,b"))
    var servers: String?

    @Option(help: "A catalog file to add (repeatable); later ones replace servers of the same name.")
    var catalog: [String] = []

    @Option(help: "Start with the servers and settings of a saved profile (default: the profile 'default', if any).")
    var profile: String?

    @Option(help: ArgumentHelp("Offer only these tools (repeatable): SERVER:TOOL or SERVER:*.", valueName: "spec"))
    var tools: [String] = []

    @Flag(help: "Keep every server running for the gateway's whole life (not only those marked longLived).")
    var longLived = false

    @Option(help: "The directory mounted into servers whose catalog entry asks for the workspace (default: here).")
    var workspace: String?

    @Flag(
        help:
            "Log each tool call as a JSON line on stderr: time, client, server, tool, argument names (never values), duration, outcome."
    )
    var logCalls = false

    @Option(
        help: ArgumentHelp(
            "Also append each tool call's JSON line to FILE, rotated at 8 MiB with three older files kept (read it with `airlock mcp log --file FILE`).",
            valueName: "file"))
    var callLog: String?

    @Flag(
        help:
            "Refuse calls whose arguments hold the value of a stored secret (MCP or API key), and redact such values in results."
    )
    var blockSecrets = false

    @Option(
        help: ArgumentHelp(
            "Isolation tier of every server's sandbox: container or gvisor (default: each catalog entry's `isolation`, else the user's default).",
            valueName: "tier"))
    var isolation: String?

    /// Set by a sandbox's supervisor: the client is a sandboxed agent.
    @Flag(help: .hidden)
    var noProfileWrites = false

    func validate() throws {
        for spec in tools where spec.split(separator: ":").count != 2 {
            throw ValidationError("--tools takes SERVER:TOOL or SERVER:*, not '\(spec)'")
        }
        if servers != nil && profile != nil {
            throw ValidationError("--servers and --profile both choose the servers: give one")
        }
    }

    func makeGateway(log: @escaping @Sendable (String) -> Void) throws -> Gateway {
        let context = Context()
        let catalog = try ServerCatalog.load(extra: catalog)
        let profiles = MCPProfiles()
        var options = GatewayOptions()
        options.servers = servers.map(ServerCatalog.names)
        if let saved = try profiles.starting(profile: profile, pinned: options.servers) {
            options.initialServers = saved.servers
            options.initialConfig = saved.config
        }
        // Unknown names fail here, before anything starts.
        for name in options.servers ?? options.initialServers { _ = try catalog.find(name) }
        options.toolFilter = tools
        options.longLived = longLived
        options.blockSecrets = blockSecrets
        options.profileWrites = !noProfileWrites
        options.isolation = try isolation.map(Isolation.init(parsing:))
        let file = try callLog.map { try RotatingLog(path: Files.absolute($0)) }
        if logCalls || file != nil {
            let toStderr = logCalls
            options.callLog = { line in
                if toStderr { FileHandle.standardError.write(Data((line + "\n").utf8)) }
                file?.append(Array(line.utf8))
            }
        }
        options.workspace = Files.absolute(workspace ?? FileManager.default.currentDirectoryPath)
        return try Gateway(
            sandboxes: Sandboxes(store: context.store, templates: context.templates, log: log), catalog: catalog,
            options: options, secrets: MCPSecrets(store: context.store), profiles: profiles, log: log)
    }
}

struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway", abstract: "Run the MCP gateway: one MCP endpoint for sandboxed MCP servers.",
        subcommands: [Run.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the gateway: to one client on standard input and output, or to many over HTTP.",
            discussion: """
                Each server runs in a sandbox of its own from its catalog entry's image template: \
                no host files unless the entry mounts the workspace, no network with \
                disableNetwork, exactly its allowHosts with them (the user's policy.yaml may \
                narrow them, not widen them), the user's policy without, only its own secrets, \
                1 CPU, 1 GiB and 256 processes unless the entry says otherwise. Clients see \
                the servers' tools under one list; two tools with one name become SERVER__TOOL \
                (reported on stderr). Without --servers, the gateway's own tools let the client \
                find and add servers while it runs (mcp-find, mcp-add, mcp-remove, \
                mcp-config-set, mcp-exec, mcp-create-profile, mcp-activate-profile). When the \
                gateway ends, in any way, no server sandbox remains. Logs go to stderr.

                Over HTTP (--transport streaming or sse) every request but /health needs \
                Authorization: Bearer TOKEN, the token from AIRLOCK_MCP_TOKEN or one printed at \
                start; the Host must be the loopback and an Origin, if any, a loopback one.

                Examples:
                  claude mcp add airlock -- airlock mcp gateway run --servers time,git
                  AIRLOCK_MCP_TOKEN=... airlock mcp gateway run --transport streaming --port 8811
                """)

        @OptionGroup var selection: GatewaySelection

        @Option(
            help: ArgumentHelp(
                "stdio (default; one client on standard input and output), streaming (MCP's streamable HTTP at /mcp) or sse (the older transport at /sse).",
                valueName: "transport"))
        var transport: Transport = .stdio

        @Option(help: "Port of the HTTP transports (default 8811).")
        var port: Int?

        @Option(help: "Address of the HTTP transports.")
        var host = "127.0.0.1"

        enum Transport: String, ExpressibleByArgument, CaseIterable {
            case stdio, sse, streaming
        }

        func validate() throws {
            if transport == .stdio && port != nil {
                throw ValidationError("--port is for --transport sse or streaming; stdio has no port")
            }
            if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535") }
        }

        func run() throws {
            let log: @Sendable (String) -> Void = { line in
                FileHandle.standardError.write(Data("airlock gateway: \(line)\n".utf8))
            }
            let gateway = try selection.makeGateway(log: log)
            let failure = Mutex<String?>(nil)
            let http = try httpServer(gateway: gateway, log: log)
            let host = self.host
            let port = self.port ?? 8811
            ServiceLoop.run(
                log: log, what: "the server sandboxes",
                serve: {
                    do {
                        if let http {
                            // Listening at once; requests wait until the servers are up.
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    try await http.server.run(host: host, port: port) { bound in
                                        let endpoint = http.server.transport == .streaming ? "/mcp" : "/sse"
                                        log("listening on http://\(host):\(bound)\(endpoint)" + http.tokenNote)
                                    }
                                }
                                try await gateway.start()
                                try await group.next()
                            }
                            return true
                        }
                        try await gateway.start()
                    } catch {
                        failure.withLock { $0 = "\(error)" }
                        return false
                    }
                    let stdio = MCPStdio()
                    let session = await GatewaySession(gateway: gateway, send: { stdio.send($0) })
                    await stdio.serve { await session.handle($0) }
                    await session.end()
                    return true
                },
                shutdown: {
                    await http?.server.endSessions()
                    await gateway.shutdown()
                })
            if let message = failure.withLock({ $0 }) { throw AirlockError(.failed, message) }
        }

        /// The HTTP server for the HTTP transports, with its token: `AIRLOCK_MCP_TOKEN`, or one
        /// made now and printed once.
        func httpServer(gateway: Gateway, log: @escaping @Sendable (String) -> Void) throws -> (
            server: GatewayHTTPServer, tokenNote: String
        )? {
            let kind: GatewayHTTPServer.Transport
            switch transport {
            case .stdio: return nil
            case .sse: kind = .sse
            case .streaming: kind = .streaming
            }
            var note = " (token from AIRLOCK_MCP_TOKEN)"
            var token = ProcessInfo.processInfo.environment["AIRLOCK_MCP_TOKEN"] ?? ""
            if token.isEmpty {
                token = randomToken()
                note = "; clients send Authorization: Bearer \(token)"
            }
            return (GatewayHTTPServer(gateway: gateway, transport: kind, token: token, log: log), note)
        }
    }
}

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "The MCP servers the gateway can run: built-in and yours.",
        discussion: """
            Your catalogs are YAML files in $XDG_CONFIG_HOME/airlock/catalogs/, in the format of \
            docker/mcp-gateway's (a `registry:` of servers) with an Airlock image `template` in \
            place of `image`; see `airlock mcp catalog show time`.
            """,
        subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the catalog's servers.")

        @Option(help: "A catalog file to add (repeatable).")
        var catalog: [String] = []

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let loaded = try ServerCatalog.load(extra: catalog)
            let servers = loaded.servers.values.sorted { $0.name < $1.name }
            if json {
                print(try JSONText.pretty(servers))
                return
            }
            let rows = servers.map { server -> [String] in
                let network: String
                switch server.type {
                case "airlock": network = "own"
                case "remote": network = "remote"
                default: network = server.disableNetwork ? "none" : server.allowHosts.isEmpty ? "policy" : "allowHosts"
                }
                return [
                    server.name, server.type, server.template ?? server.image ?? "-", network,
                    loaded.sources[server.name] ?? "", server.description ?? "",
                ]
            }
            print(
                Table.render([["NAME", "TYPE", "FROM", "NETWORK", "SOURCE", "DESCRIPTION"]] + rows), terminator: "")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Print one server's catalog entry (YAML, or JSON with --json).")

        @Argument(help: "The server's name.")
        var name: String

        @Option(help: "A catalog file to add (repeatable).")
        var catalog: [String] = []

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let loaded = try ServerCatalog.load(extra: catalog)
            let server = try loaded.find(name)
            if json {
                print(try JSONText.pretty(server))
                return
            }
            print("# source: \(loaded.sources[name] ?? "")")
            print(try YAMLEncoder().encode(["registry": [name: server]]), terminator: "")
        }
    }
}

struct MCPSecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret", abstract: "Secrets of MCP servers: each server gets only its own.",
        subcommands: [Set.self, List.self, Remove.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store SERVER.KEY, read from standard input (never from the command line).")

        @Argument(help: "SERVER.KEY, as the server's catalog entry names it under `secrets`.")
        var name: String

        func run() throws {
            try MCPSecrets.validate(name: name)
            let data = FileHandle.standardInput.readDataToEndOfFile()
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            try MCPSecrets(store: Context().store).set(name, value: value)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List stored names (not values).")

        func run() throws {
            for name in MCPSecrets(store: Context().store).names() { print(name) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a stored secret.")

        @Argument(help: "SERVER.KEY")
        var name: String

        func run() throws {
            try MCPSecrets(store: Context().store).remove(name)
        }
    }
}

struct ToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools", abstract: "List and call the gateway's tools from the command line.",
        discussion: """
            Each command starts the chosen servers in their sandboxes, does its work, and removes \
            them again, as `gateway run` would for a client.

              airlock mcp tools ls --servers time
              airlock mcp tools call get_current_time --servers time --arg timezone=Europe/Paris
            """,
        subcommands: [List.self, Call.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the tools.")

        @OptionGroup var selection: GatewaySelection

        @Flag(help: "Print JSON (the tools/list entries).")
        var json = false

        func run() throws {
            let gateway = try selection.makeGateway(log: Context.progress)
            let tools = try runGateway(gateway) { gateway in
                try await gateway.start()
                return (await gateway.tools(), await gateway.collisions)
            }
            if json {
                print(JSONValue.array(tools.0).text())
                return
            }
            let rows = tools.0.map { tool -> [String] in
                let description = tool["description"]?.stringValue ?? ""
                let firstLine = description.split(separator: "\n").first.map(String.init) ?? ""
                return [tool["name"]?.stringValue ?? "", String(firstLine.prefix(100))]
            }
            print(Table.render([["TOOL", "DESCRIPTION"]] + rows), terminator: "")
            for collision in tools.1 { Context.progress("name clash: " + collision) }
        }
    }

    struct Call: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "call", abstract: "Call one tool and print its result.",
            discussion: "Exits 1 when the tool reports an error. `--json` prints the whole result.")

        @Argument(help: "The tool's name as `tools ls` shows it.")
        var tool: String

        @Option(
            name: .customLong("arg"),
            help: ArgumentHelp(
                "An argument, KEY=VALUE (repeatable); VALUE is read as JSON when it parses, else as a string.",
                valueName: "k=v"))
        var arguments: [String] = []

        @OptionGroup var selection: GatewaySelection

        @Flag(help: "Print the whole result as JSON.")
        var json = false

        func run() throws {
            var values: [String: JSONValue] = [:]
            for argument in arguments {
                guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                    throw ValidationError("--arg takes KEY=VALUE, not '\(argument)'")
                }
                let raw = String(argument[argument.index(after: equals)...])
                values[String(argument[..<equals])] =
                    (try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8))) ?? .string(raw)
            }
            let gateway = try selection.makeGateway(log: Context.progress)
            let tool = tool
            let arguments = values
            let result = try runGateway(gateway) { gateway in
                try await gateway.start()
                return await gateway.call(tool, arguments: arguments, client: "airlock mcp tools call")
            }
            if json {
                print(result.json.text())
            } else {
                for block in result.content {
                    print(block["text"]?.stringValue ?? block.text())
                }
            }
            if result.isError { throw ExitCode(1) }
        }
    }
}

/// Runs work against a gateway on this thread's behalf, and always shuts it down after.
func runGateway<T: Sendable>(_ gateway: Gateway, _ work: @escaping @Sendable (Gateway) async throws -> T) throws -> T {
    try runBlocking {
        let result: Result<T, any Error>
        do {
            result = .success(try await work(gateway))
        } catch {
            result = .failure(error)
        }
        await gateway.shutdown()
        return try result.get()
    }
}

/// Runs async work on this (synchronous) command's behalf and returns its result.
func runBlocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Mutex<Result<T, any Error>?>(nil)
    let finished = DoneSignal()
    Task {
        let result: Result<T, any Error>
        do {
            result = .success(try await work())
        } catch {
            result = .failure(error)
        }
        outcome.withLock { $0 = result }
        finished.set()
    }
    while !finished.isSet { usleep(5_000) }
    guard let result = outcome.withLock({ $0 }) else { throw AirlockError(.failed, "no result") }
    return try result.get()
}
