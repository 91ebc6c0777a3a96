import ArgumentParser

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a sandbox for an agent and a workspace without starting it.",
        discussion: "Builds the agent's image first if needed. Prints the sandbox name.")

    @OptionGroup var options: CreateOptions

    @Argument(help: "The agent (see `airlock run --help`); `shell` is a bash shell.")
    var agent: String

    @Argument(help: "The workspace directory (default: the current directory).")
    var workspace: String?

    func run() throws {
        let context = Context()
        let request = try options.request(agent: agent, workspace: workspace)
        try options.prepareMCP(request, context: context)
        let result = try context.sandboxes.create(request)
        print(result.record.name)
    }
}
