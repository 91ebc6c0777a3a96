import AirlockImages
import AirlockRuntime
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The `airlock` command line.
public struct AirlockCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "airlock",
        abstract: "Run AI coding agents in disposable, rootless Linux sandboxes.",
        discussion: """
            A sandbox holds one agent and one workspace (the current directory by default), \
            mounted at its host path. Nothing else of your machine is inside: not your home, \
            keys or sockets. State lives in $AIRLOCK_HOME (default ~/.local/share/airlock).

            Quick start:  cd myproject && airlock run shell

            \(ExitStatus.help)
            """,
        version: AirlockVersion.string,
        subcommands: [
            Run.self, Create.self, Exec.self, List.self, Inspect.self, Stop.self, Remove.self, Reset.self, Guard.self,
            Port.self, Copy.self, Fork.self, Save.self,
            NetworkCommand.self, SecretCommand.self, AgentCommand.self, TemplateCommand.self, ImageCommand.self,
            MCPCommand.self,
            Doctor.self,
        ])

    public init() {}

    /// Parses, runs, and turns any failure into one line on stderr and an exit status
    /// (``ExitStatus``).
    public static func main(_ arguments: [String]) {
        StepTiming.mark("\(arguments.dropFirst().first ?? "airlock"): started")
        if let status = InternalCommand.run(arguments) { Glibc.exit(status) }
        if let exec = QuickExec(arguments) {
            StepTiming.mark("arguments parsed")
            perform(runsCommand: true) { try exec.run() }
        }
        var command: any ParsableCommand
        do {
            command = try quicklyParsed(arguments) ?? parseAsRoot(Array(arguments.dropFirst()))
        } catch {
            failParsing(error)
        }
        StepTiming.mark("arguments parsed")
        perform(runsCommand: ExitStatus.runsCommand(command)) { try command.run() }
    }

    /// Runs a parsed command and turns any failure into one line on stderr and an exit status.
    static func perform(runsCommand: Bool, _ body: () throws -> Void) -> Never {
        do {
            try body()
            Glibc.exit(0)
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch let error as ExecFailure where error.printed {
            // The runtime has said why on stderr, in one line.
            Glibc.exit(ExitStatus.of(error, runsCommand: runsCommand))
        } catch let error as ExecFailure {
            fail(error.description, status: ExitStatus.of(error, runsCommand: runsCommand))
        } catch let error as AirlockError {
            fail(error.description, status: ExitStatus.of(error, runsCommand: runsCommand))
        } catch let error as SystemCallError {
            fail(error.description, status: ExitStatus.of(error, runsCommand: runsCommand))
        } catch {
            let code = exitCode(for: error).rawValue
            guard code != 0 else { failParsing(error) }
            fail(firstLine(of: error), status: runsCommand ? ExitStatus.airlockFailed : code)
        }
    }

    /// `exec` and `run`, which scripts, agents and the benchmarks start most, parsed on their
    /// own: the whole command tree costs more than an exec through the exec agent (building it
    /// makes Swift's runtime scan every protocol conformance of this large binary, about 7 ms).
    /// Help and anything that does not parse go the usual way, for the usual messages.
    static func quicklyParsed(_ arguments: [String]) -> (any ParsableCommand)? {
        guard arguments.count > 2 else { return nil }
        let rest = Array(arguments.dropFirst(2))
        guard !rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "-h" || $0 == "--help" }) else {
            return nil
        }
        switch arguments[1] {
        case "exec": return try? Exec.parseAsRoot(rest)
        case "run": return try? Run.parseAsRoot(rest)
        default: return nil
        }
    }

    /// Help and version print in full; usage errors are one line, with where to look for the rest.
    static func failParsing(_ error: any Error) -> Never {
        let code = exitCode(for: error).rawValue
        if code == 0 {
            print(fullMessage(for: error))
            Glibc.exit(0)
        }
        fail("\(firstLine(of: error)) (see 'airlock --help')", status: code)
    }

    static func firstLine(of error: any Error) -> String {
        let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
        return message.prefix(1).lowercased() + message.dropFirst()
    }

    static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("airlock: \(message)\n".utf8))
        Glibc.exit(status)
    }
}

/// What every command needs: the state store, the templates, and a progress printer.
struct Context {
    let store = StateStore.default()
    let templates = TemplateCatalog.default()
    let agents = AgentCatalog.default()

    var sandboxes: Sandboxes {
        Sandboxes(store: store, templates: templates, agents: agents, log: Context.progress)
    }

    /// Builds and removes images as the current user (fails without subordinate ids).
    func imageBuilder() throws -> ImageBuilder {
        ImageBuilder(store: store, identity: try SandboxIdentity.current())
    }

    /// Progress and notes go to stderr, so stdout stays for results.
    static let progress: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("airlock: \(line)\n".utf8))
    }
}
