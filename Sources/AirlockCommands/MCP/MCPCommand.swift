import AirlockCodeSandbox
import AirlockMCP
import AirlockRuntime
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "MCP: the gateway to sandboxed MCP servers, its catalog and secrets, and Airlock's own servers.",
        subcommands: [
            Serve.self, GatewayCommand.self, CatalogCommand.self, MCPSecretCommand.self, ToolsCommand.self,
            CallLogCommand.self, ClientCommand.self, OAuthCommand.self,
        ])
}

extension MCPCommand {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run one of Airlock's own MCP servers on standard input and output.",
            subcommands: [CodeSandbox.self])
    }

    struct CodeSandbox: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "code-sandbox",
            abstract: "An MCP server (stdio) that gives its client disposable sandboxes to run code in.",
            discussion: """
                Tools: sandbox_initialize, sandbox_exec, run_code, write_file, read_file, \
                list_files, exec_background, process_status, process_logs, process_kill, \
                sandbox_stop, sandbox_list. Sandboxes have no network unless a call asks for \
                "policy", keep their files in memory (/workspace), and are removed when the \
                client disconnects, when they idle past --idle-timeout, or when this server dies \
                in any way. Logs go to stderr; stdout carries the protocol.

                Example:  claude mcp add code-sandbox -- airlock mcp serve code-sandbox --pool 2
                """)

        @Option(help: "Sandboxes kept started for sandbox_initialize to hand out at once.")
        var pool = 2

        @Option(help: "Seconds a sandbox may go without a call before it is removed.")
        var idleTimeout: Double = 600

        @Option(help: "Sandboxes the client may hold at once.")
        var maxSandboxes = 16

        @Option(help: "Default image template of a sandbox.")
        var template = "code"

        @Option(help: "Default network: none (nothing leads out) or policy (Airlock's egress policy).")
        var network: SandboxRecord.NetworkMode = .none

        @Option(help: "Default memory limit of a sandbox.")
        var memory = "512m"

        @Option(help: "Default CPU limit of a sandbox.")
        var cpus: Double = 1

        @Option(help: "Default limit on the processes of a sandbox.")
        var pids: Int64 = 256

        @Option(help: "Default size of each writable place in a sandbox (/workspace, home, /tmp).")
        var disk = "256m"

        @Option(
            help: ArgumentHelp(
                "Isolation tier of the sandboxes: container or gvisor (default: the user's, see `airlock run --help`).",
                valueName: "tier"))
        var isolation: String?

        @Option(help: "Bytes kept of each output stream of a call.")
        var maxOutput = "1m"

        @Option(help: "Default seconds before a command is killed.")
        var timeout: Double = 30

        @Flag(
            help: """
                Let sandbox_initialize pull a registry image not pulled yet (within \
                allowedRegistries). Without it, clients start only from images you pulled.
                """)
        var pullImages = false

        func validate() throws {
            guard pool >= 0, pool <= 64 else { throw ValidationError("--pool must be between 0 and 64") }
            guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be above 0") }
            guard maxSandboxes >= 1 else { throw ValidationError("--max-sandboxes must be at least 1") }
            guard cpus > 0, cpus <= 1024 else { throw ValidationError("--cpus must be above 0") }
            guard pids >= 8 else { throw ValidationError("--pids must be at least 8") }
            guard timeout > 0 else { throw ValidationError("--timeout must be above 0") }
        }

        func run() throws {
            var settings = CodeSandboxSettings()
            settings.poolSize = pool
            settings.idleTimeout = idleTimeout
            settings.maxSandboxes = maxSandboxes
            settings.defaultTimeout = timeout
            settings.maxTimeout = max(timeout, settings.maxTimeout)
            settings.maxOutput = Int(try Sandboxes.parseSize(maxOutput, what: "--max-output", minimum: 1024))
            settings.pullImages = pullImages
            settings.shape.template = template
            settings.shape.network = network
            settings.shape.memoryBytes = try Sandboxes.parseBytes(memory)
            settings.shape.cpus = cpus
            settings.shape.pids = pids
            settings.shape.diskBytes = try Sandboxes.parseSize(disk, what: "--disk", minimum: 1 << 20)
            settings.shape.isolation = try isolation.map(Isolation.init(parsing:))
            let context = Context()
            _ = try context.templates.find(template)
            _ = try SandboxIdentity.current()

            let log: @Sendable (String) -> Void = { line in
                FileHandle.standardError.write(Data("airlock code-sandbox: \(line)\n".utf8))
            }
            let service = try CodeSandboxService(
                sandboxes: Sandboxes(store: context.store, templates: context.templates, log: log),
                settings: settings, log: log)
            let server = MCPServer(
                name: "airlock-code-sandbox", version: AirlockVersion.string,
                instructions: """
                    Sandboxes to run code in, isolated from the user's machine and (by default) \
                    from the network. Call sandbox_initialize, then write_file / sandbox_exec / \
                    run_code with its sandbox_id; sandbox_stop when done.
                    """,
                tools: CodeSandboxTools(service: service).all, log: log)
            ServiceLoop.run(
                log: log, what: "this client's sandboxes",
                serve: {
                    await service.start()
                    await server.serveStdio()
                    return true
                }, shutdown: { await service.shutdown() })
        }
    }
}

/// How a long-running MCP command lives: it serves until its client disconnects or a stop
/// signal (TERM, INT, HUP) arrives, then cleans up, whichever way it ends.
enum ServiceLoop {
    /// `serve` returns false when it failed rather than served (its caller reports why).
    static func run(
        log: @escaping @Sendable (String) -> Void, what: String, serve: @escaping @Sendable () async -> Bool,
        shutdown: @escaping @Sendable () async -> Void
    ) {
        // A client that goes away mid-reply must not kill the server before it cleans up.
        signal(SIGPIPE, SIG_IGN)
        // Taken one at a time on this thread: every thread started from here on has them
        // blocked, so a stop request always ends up here.
        let signals = SignalSet([SIGTERM, SIGINT, SIGHUP])
        signals.block()
        let finished = DoneSignal()
        let served = DoneSignal()
        Task {
            if await serve() { served.set() }
            finished.set()
        }
        var reason: String? = nil
        while !finished.isSet {
            if let signal = signals.wait(timeout: 0.2) {
                reason = "signal \(signal)"
                break
            }
        }
        if reason == nil && served.isSet { reason = "the client disconnected" }
        if let reason { log("\(reason): removing \(what)") }
        let done = DoneSignal()
        Task {
            await shutdown()
            done.set()
        }
        while !done.isSet { _ = signals.wait(timeout: 0.05) }
    }
}

/// A flag one task sets and a thread polls.
final class DoneSignal: Sendable {
    private let state = Mutex(false)
    var isSet: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }
}
