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
        try Self.run(name, request)
    }

    static func run(_ name: String, _ request: Sandboxes.ExecRequest) throws {
        let context = Context()
        let status = try GuardedSession(context: context, name: name, comparesFiles: request.tty).run {
            try context.sandboxes.exec(name, request)
        }
        throw ExitCode(status)
    }
}

/// `exec`'s everyday form, `exec [-i] [-t] [-u USER] [-w DIR] [-e KEY=VALUE]... NAME -- CMD...`,
/// read without the argument parser: building even `exec`'s part of the command tree makes
/// Swift's runtime look through this large binary's protocol conformances, a millisecond of a
/// command that otherwise takes a few. Anything else (help, another spelling, a mistake) is
/// nil and goes to ``Exec`` for the parser's own handling and messages.
struct QuickExec {
    let name: String
    let request: Sandboxes.ExecRequest

    init?(_ arguments: [String]) {
        guard arguments.count > 4, arguments[1] == "exec" else { return nil }
        var request = Sandboxes.ExecRequest(command: [])
        var index = 2
        // The parser takes no value that looks like an option: neither does this.
        func value() -> String? {
            index += 1
            return index < arguments.count && !arguments[index].hasPrefix("-") ? arguments[index] : nil
        }
        while index < arguments.count, arguments[index].hasPrefix("-") {
            let argument = arguments[index]
            switch argument {
            case "-i", "--interactive": request.interactive = true
            case "-t", "--tty": request.tty = true
            case "-it", "-ti":
                request.interactive = true
                request.tty = true
            case "-u", "--user":
                guard let user = value() else { return nil }
                request.user = user
            case "-w", "--workdir":
                guard let workdir = value() else { return nil }
                request.workdir = workdir
            case "-e", "--env":
                guard let entry = value() else { return nil }
                request.environment.append(entry)
            default: return nil
            }
            guard index < arguments.count else { return nil }
            index += 1
        }
        // NAME, then `--` and at least one word of the command.
        guard index + 2 < arguments.count, arguments[index + 1] == "--" else { return nil }
        name = arguments[index]
        request.command = Array(arguments[(index + 2)...])
        // As ``Exec/validate()`` leaves it: a second `--` is not part of the command.
        if request.command.first == "--" { request.command.removeFirst() }
        guard !request.command.isEmpty else { return nil }
        self.request = request
    }

    func run() throws { try Exec.run(name, request) }
}
