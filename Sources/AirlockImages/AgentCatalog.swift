import AirlockState
import AirlockSystem
import Foundation

/// An agent Airlock knows how to run: the image it needs, the command that starts it
/// unattended, and what it needs from outside.
///
/// ```yaml
/// name: my-agent
/// description: our in-house agent
/// template: my-agent            # an image template (built-in or ~/.config/airlock/templates)
/// command: [my-agent]
/// unattended: [--no-confirm]    # appended, so it runs without asking
/// credentials: [openai]         # services whose keys the proxy injects
/// hosts: [api.example.com]      # added to the sandbox's allowed hosts
/// env: [MY_AGENT_HOME=$HOME/.my-agent]   # set inside ($HOME: the sandbox user's home)
/// state: [.my-agent]            # directories in the home, kept with the sandbox (or shared)
/// mcp: {file: .my-agent/config.json, entry: {url: $URL}}   # where `--mcp` adds the gateway
///                               # (flag: --mcp-config: the option that reads such a file)
/// sources: ["PyPI: my-agent"]   # where its install comes from, named when the build fails
/// ```
public struct AgentDefinition: Codable, Sendable, Equatable, CatalogItem {
    public static let kind = "agent"

    public var name: String
    public var description: String
    public var template: String
    public var command: [String]
    /// Flags that let it act without asking (`--dangerously-skip-permissions`, `--yolo`, ...).
    public var unattended: [String]
    /// Credential services (`airlock secret ls`) whose keys it uses.
    public var credentials: [String]
    /// Hosts it must reach, added to the sandbox's own policy.
    public var hosts: [String]
    /// Environment it runs with (`KEY=VALUE`; `$HOME` stands for the sandbox user's home).
    public var environment: [String]
    /// Directories under the home where it keeps its login, settings and history: kept with
    /// the sandbox, or shared by all sandboxes of the agent (`--share-agent-state`).
    public var state: [String]
    /// Where its installer fetches it from.
    public var sources: [String]
    /// How `--mcp` points it at the sandbox's gateway: an entry named `airlock` under
    /// `mcpServers` in a JSON file of its home (`$URL` in the entry's values is the gateway's).
    public var mcp: MCPClientConfig?
    /// Whether its sandboxes get a private Docker engine, as `--docker` gives one.
    public var docker: Bool

    public struct MCPClientConfig: Codable, Sendable, Equatable {
        /// Relative to the home.
        public var file: String
        public var entry: [String: String]
        /// The agent's option that reads MCP servers from a file of its own
        /// (`{"mcpServers": {...}}`). When `file` is in state shared with other sandboxes
        /// (`--share-agent-state`), the entry goes in a file of this sandbox's home, given
        /// with this option, so that sandboxes without `--mcp` do not list the gateway.
        public var flag: String?

        public init(file: String, entry: [String: String], flag: String? = nil) {
            self.file = file
            self.entry = entry
            self.flag = flag
        }
    }

    public init(
        name: String, description: String, template: String, command: [String], unattended: [String] = [],
        credentials: [String] = [], hosts: [String] = [], environment: [String] = [], state: [String] = [],
        sources: [String] = [], mcp: MCPClientConfig? = nil, docker: Bool = false
    ) {
        self.name = name
        self.description = description
        self.template = template
        self.command = command
        self.unattended = unattended
        self.credentials = credentials
        self.hosts = hosts
        self.environment = environment
        self.state = state
        self.sources = sources
        self.mcp = mcp
        self.docker = docker
    }

    enum CodingKeys: String, CodingKey {
        case name, description, template, command, unattended, credentials, hosts, state, sources, mcp, docker
        case environment = "env"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description) ?? ""
        template = try container.decode(String.self, forKey: .template)
        command = try container.decode([String].self, forKey: .command)
        unattended = try container.decodeIfPresent([String].self, forKey: .unattended) ?? []
        credentials = try container.decodeIfPresent([String].self, forKey: .credentials) ?? []
        hosts = try container.decodeIfPresent([String].self, forKey: .hosts) ?? []
        environment = try container.decodeIfPresent([String].self, forKey: .environment) ?? []
        state = try container.decodeIfPresent([String].self, forKey: .state) ?? []
        sources = try container.decodeIfPresent([String].self, forKey: .sources) ?? []
        mcp = try container.decodeIfPresent(MCPClientConfig.self, forKey: .mcp)
        docker = try container.decodeIfPresent(Bool.self, forKey: .docker) ?? false
    }

    /// What the sandbox runs: the command and its unattended flags (AGENT_ARGS follow).
    public var fullCommand: [String] { command + unattended }

    /// Its environment for a sandbox whose user's home is `home`.
    public func environment(home: String) -> [String] {
        environment.map { $0.replacingOccurrences(of: "$HOME", with: home) }
    }

    public func validate(source: String) throws {
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9._-]*/) != nil else {
            throw AirlockError(
                .invalidArgument, "agent \(source): name '\(name)' must be lower-case letters, digits, '.', '_' or '-'")
        }
        guard let program = command.first, !program.isEmpty else {
            throw AirlockError(.invalidArgument, "agent \(source): command must name a program")
        }
        for path in state where path.isEmpty || path.hasPrefix("/") || path.split(separator: "/").contains("..") {
            throw AirlockError(
                .invalidArgument, "agent \(source): state path '\(path)' must be relative to the home, without '..'")
        }
        for entry in environment where entry.firstIndex(of: "=").map({ $0 == entry.startIndex }) ?? true {
            throw AirlockError(.invalidArgument, "agent \(source): env entry '\(entry)' must be KEY=VALUE")
        }
        if let mcp, mcp.file.isEmpty || mcp.file.hasPrefix("/") || mcp.file.split(separator: "/").contains("..") {
            throw AirlockError(.invalidArgument, "agent \(source): mcp.file must be relative to the home, without '..'")
        }
        for host in hosts where host.isEmpty || host.contains("/") || host.contains(" ") {
            throw AirlockError(.invalidArgument, "agent \(source): '\(host)' is not a host name")
        }
    }
}

/// Built-in agents plus the user's, from `$XDG_CONFIG_HOME/airlock/agents/*.yaml`.
public struct AgentCatalog: Sendable {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The user's agent directory, from the environment.
    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment) -> AgentCatalog {
        AgentCatalog(directory: UserConfig.directory(environment: environment) + "/agents")
    }

    /// One entry of `agent ls`.
    public struct Entry: Sendable {
        public var agent: AgentDefinition
        public var source: String
    }

    /// Every agent; a user file with a built-in's name replaces it.
    public func all() throws -> [Entry] {
        try YAMLCatalog.load(builtIns: BuiltinAgents.all, directory: directory).map {
            Entry(agent: $0.item, source: $0.source)
        }
    }

    public func find(_ name: String) throws -> Entry {
        let entries = try all()
        guard let entry = entries.first(where: { $0.agent.name == name }) else {
            throw AirlockError(
                .notFound, "unknown agent '\(name)' (known: \(entries.map(\.agent.name).joined(separator: ", ")))")
        }
        return entry
    }
}
