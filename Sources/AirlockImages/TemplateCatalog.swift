import AirlockState
import AirlockSystem
import Foundation

/// Built-in templates plus the user's, from `$XDG_CONFIG_HOME/airlock/templates/*.yaml`.
public struct TemplateCatalog: Sendable {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The user's template directory, from the environment.
    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment) -> TemplateCatalog
    {
        TemplateCatalog(directory: UserConfig.directory(environment: environment) + "/templates")
    }

    /// One entry of `template ls`.
    public struct Entry: Sendable {
        public var template: Template
        public var source: String
    }

    /// Every template; a user file with a built-in's name replaces it.
    public func all() throws -> [Entry] {
        try YAMLCatalog.load(builtIns: BuiltinTemplates.all, directory: directory).map {
            Entry(template: $0.item, source: $0.source)
        }
    }

    public func find(_ name: String) throws -> Entry {
        guard let entry = try all().first(where: { $0.template.name == name }) else {
            let known = (try? all().map(\.template.name).joined(separator: ", ")) ?? "shell"
            throw AirlockError(.notFound, "unknown template '\(name)' (known: \(known))")
        }
        return entry
    }
}

/// Templates that ship with Airlock.
public enum BuiltinTemplates {
    /// A general development shell: bash, git, curl, Python with pip and venv, build tools, sudo.
    public static let shell = Template(
        name: "shell",
        description: "bash, git, curl, Python 3 with pip and venv, build tools, sudo",
        packages: [
            "bash", "bash-completion", "git", "curl", "ca-certificates", "python3", "python3-pip", "python3-venv",
            "build-essential", "procps", "less", "nano", "openssh-client", "jq", "unzip", "xz-utils",
        ])

    /// What the code-sandbox MCP server runs code in: Python, Node.js and bash, no sudo.
    public static let code = Template(
        name: "code",
        description: "Python 3, Node.js and bash for running code (no sudo, no package manager access)",
        packages: ["bash", "python3", "nodejs", "procps", "findutils", "coreutils", "ca-certificates", "curl"],
        user: Template.UserSetup(sudo: false))

    /// The reference MCP servers from PyPI that the gateway's built-in catalog runs.
    public static let mcpServers = Template(
        name: "mcp-servers",
        description: "MCP servers from PyPI: mcp-server-time, mcp-server-fetch, mcp-server-git (no sudo)",
        packages: ["python3", "python3-venv", "git", "ca-certificates", "tzdata"],
        steps: venv(
            "mcp-servers", package: "mcp-server-time mcp-server-fetch mcp-server-git",
            commands: ["mcp-server-time", "mcp-server-fetch", "mcp-server-git"]),
        user: Template.UserSetup(sudo: false))

    public static let all = [shell, code, mcpServers] + agentTemplates
}
