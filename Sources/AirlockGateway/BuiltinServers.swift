/// The servers of the built-in catalog: reference servers from PyPI that install on an
/// ordinary machine, each with no more reach than it needs, and Airlock's own code sandbox.
public enum BuiltinServers {
    public static let time = CatalogServer(
        name: "time", title: "Time", description: "Current time and time-zone conversion (mcp-server-time, PyPI)",
        template: "mcp-servers", command: ["mcp-server-time", "--local-timezone", "UTC"], disableNetwork: true,
        tools: [
            .init(name: "get_current_time", description: "Current time in a time zone"),
            .init(name: "convert_time", description: "Convert a time between time zones"),
        ])

    public static let fetch = CatalogServer(
        name: "fetch", title: "Fetch",
        description:
            "Fetch a URL and return it as markdown (mcp-server-fetch, PyPI); reaches what the network policy allows",
        template: "mcp-servers", command: ["mcp-server-fetch"],
        tools: [.init(name: "fetch", description: "Fetch a URL")])

    public static let git = CatalogServer(
        name: "git", title: "Git",
        description:
            "Read a git repository: status, log, diff, show, branches (mcp-server-git, PyPI); the workspace read-only",
        template: "mcp-servers", command: ["mcp-server-git", "--repository", "/workspace"], disableNetwork: true,
        tools: [
            .init(name: "git_status", description: "Working tree status"),
            .init(name: "git_log", description: "Commit log"),
            .init(name: "git_diff", description: "Differences between revisions"),
            .init(name: "git_show", description: "A commit's contents"),
        ], workspace: "ro")

    public static let codeSandbox = CatalogServer(
        name: "code-sandbox", title: "Code sandbox",
        description: "Run code in disposable sandboxes with no network (Airlock's own server)", type: "airlock",
        command: ["mcp", "serve", "code-sandbox"], longLived: true,
        tools: [
            .init(name: "sandbox_initialize", description: "Make a sandbox"),
            .init(name: "run_code", description: "Run Python, Node.js or bash code"),
        ])

    public static let all = [time, fetch, git, codeSandbox]
}
