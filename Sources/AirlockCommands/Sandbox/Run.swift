import AirlockRuntime
import AirlockSystem
import ArgumentParser

#if canImport(Glibc)
    import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an agent in its sandbox for a workspace, creating and starting it as needed.",
        discussion: """
            The sandbox is named <agent>-<directory> and reused by later runs; it keeps running \
            after the session ends until `airlock stop`. Arguments after `--` go to the agent:

              airlock run shell . -- -c 'make test'
              airlock run claude -- -p "fix the failing tests"

            After the session, files in the workspace that run on this machine later (package.json \
            scripts, Makefile, .envrc, .github/workflows, .pre-commit-config.yaml, ...) and changed \
            are listed on stderr, for review before you run them.

            \(ExitStatus.commandHelp)
            """)

    @OptionGroup var options: CreateOptions

    @Flag(name: [.customShort("d"), .long], help: "Start the sandbox and return without attaching.")
    var detach = false

    @Argument(
        help:
            "The agent: claude, gemini, codex, kiro, opencode, copilot, aider, mini-swe-agent, mistral-vibe, shell, or your own (airlock agent ls)."
    )
    var agent: String

    @Argument(help: "The workspace directory (default: the current directory).")
    var workspace: String?

    @Argument(parsing: .postTerminator, help: "Arguments for the agent, after `--`.")
    var agentArguments: [String] = []

    func run() throws {
        let context = Context()
        let sandboxes = context.sandboxes
        let createRequest = try options.request(agent: agent, workspace: workspace)
        try options.prepareMCP(createRequest, context: context)
        let (record, _) = try sandboxes.create(createRequest)
        StepTiming.mark("run: sandbox \(record.name) made")
        try sandboxes.start(record.name)
        StepTiming.mark("run: sandbox running")
        if detach {
            print(record.name)
            return
        }
        var request = Sandboxes.ExecRequest(command: record.command + agentArguments)
        request.tty = isatty(0) == 1 && isatty(1) == 1
        request.interactive = true
        let status = try GuardedSession(context: context, name: record.name).run {
            try sandboxes.exec(record.name, request)
        }
        throw ExitCode(status)
    }
}
