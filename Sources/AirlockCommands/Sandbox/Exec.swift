import AirlockRuntime
import ArgumentParser

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a running sandbox; its exit status is airlock's.",
        discussion: """
            Example: airlock exec -it shell-myproject -- bash

            \(ExitStatus.commandHelp)
            """)

    @Flag(name: [.customShort("i"), .long], help: "Keep standard input open.")
    var interactive = false

    @Flag(name: [.customShort("t"), .long], help: "Allocate a terminal.")
    var tty = false

    @Option(name: [.customShort("u"), .long], help: "User name or id inside (default: agent).")
    var user: String?

    @Option(name: [.customShort("w"), .long], help: "Working directory inside (default: the workspace).")
    var workdir: String?

    @Option(name: [.customShort("e"), .long], help: "Set an environment variable (KEY=VALUE; repeatable).")
    var env: [String] = []

    @Argument(help: "The sandbox name.")
    var name: String

    @Argument(parsing: .captureForPassthrough, help: "The command, after `--`.")
    var command: [String] = []

    mutating func validate() throws {
        if command.first == "--" { command.removeFirst() }
        guard !command.isEmpty else {
            throw ValidationError("give the command after the sandbox name: exec NAME -- CMD...")
        }
    }

    func run() throws {
        var request = Sandboxes.ExecRequest(command: command)
        request.user = user
        request.workdir = workdir
        request.environment = env
        request.tty = tty
        request.interactive = interactive
        let context = Context()
        let status = try GuardedSession(context: context, name: name, comparesFiles: tty).run {
            try context.sandboxes.exec(name, request)
        }
        throw ExitCode(status)
    }
}
