import Foundation

/// The MCP clients whose settings `airlock mcp client connect` edits, each with its files, the
/// key that holds its servers, and the entry shape its own documentation or source gives
/// (docs/mcp-clients.md lists the sources).
public enum MCPClientKind: String, CaseIterable, Sendable {
    case claudeCode = "claude-code"
    case claudeDesktop = "claude-desktop"
    case cursor
    case vscode
    case gemini
    case kiro
    case codex
    case opencode
    case zed

    public var title: String {
        switch self {
        case .claudeCode: "Claude Code"
        case .claudeDesktop: "Claude Desktop"
        case .cursor: "Cursor"
        case .vscode: "VS Code"
        case .gemini: "Gemini CLI"
        case .kiro: "Kiro"
        case .codex: "Codex"
        case .opencode: "OpenCode"
        case .zed: "Zed"
        }
    }

    public enum Format: Sendable {
        case json
        case toml
    }

    public var format: Format { self == .codex ? .toml : .json }

    /// The key (from the file's root) of the map of servers.
    public var serversKey: String {
        switch self {
        case .vscode: "servers"
        case .opencode: "mcp"
        case .zed: "context_servers"
        case .codex: "mcp_servers"
        default: "mcpServers"
        }
    }

    /// Whether the client reads servers from a file in the project.
    public var hasProjectFile: Bool { self != .claudeDesktop }

    /// The settings file of `scope`; `environment` gives HOME and the clients' own variables.
    public func file(_ scope: WiringScope, environment: [String: String]) throws(WiringError) -> String {
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw WiringError(.unsupported, "HOME is not set, so \(title)'s settings cannot be found")
        }
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? home + "/.config"
        switch scope {
        case .global:
            switch self {
            case .claudeCode: return (environment["CLAUDE_CONFIG_DIR"] ?? home) + "/.claude.json"
            case .claudeDesktop: return config + "/Claude/claude_desktop_config.json"
            case .cursor: return home + "/.cursor/mcp.json"
            case .vscode: return config + "/Code/User/mcp.json"
            case .gemini: return (environment["GEMINI_CLI_HOME"] ?? home) + "/.gemini/settings.json"
            case .kiro: return home + "/.kiro/settings/mcp.json"
            case .codex: return (environment["CODEX_HOME"] ?? home + "/.codex") + "/config.toml"
            case .opencode: return Self.jsonOrJSONC(config + "/opencode/opencode")
            case .zed: return config + "/zed/settings.json"
            }
        case .project(let directory):
            switch self {
            case .claudeCode: return directory + "/.mcp.json"
            case .claudeDesktop:
                throw WiringError(.unsupported, "Claude Desktop has no project settings: connect it with --global")
            case .cursor: return directory + "/.cursor/mcp.json"
            case .vscode: return directory + "/.vscode/mcp.json"
            case .gemini: return directory + "/.gemini/settings.json"
            case .kiro: return directory + "/.kiro/settings/mcp.json"
            case .codex: return directory + "/.codex/config.toml"
            case .opencode: return Self.jsonOrJSONC(directory + "/opencode")
            case .zed: return directory + "/.zed/settings.json"
            }
        }
    }

    /// OpenCode reads `opencode.jsonc` where there is one, else `opencode.json`.
    static func jsonOrJSONC(_ stem: String) -> String {
        SettingsFile.exists(stem + ".jsonc") ? stem + ".jsonc" : stem + ".json"
    }

    /// The entry that points this client at the gateway.
    public func entry(for target: GatewayTarget) throws(WiringError) -> [(key: String, value: SettingsValue)] {
        switch target {
        case .stdio(let command, let arguments):
            let args = SettingsValue.array(arguments.map(SettingsValue.string))
            switch self {
            case .claudeCode, .vscode:
                return [("type", .string("stdio")), ("command", .string(command)), ("args", args)]
            case .claudeDesktop, .cursor, .gemini, .codex, .zed: return [("command", .string(command)), ("args", args)]
            case .kiro: return [("command", .string(command)), ("args", args), ("disabled", .bool(false))]
            case .opencode:
                return [
                    ("type", .string("local")), ("command", .array(([command] + arguments).map(SettingsValue.string))),
                    ("enabled", .bool(true)),
                ]
            }
        case .url(let url, let variable):
            let sse = URL(string: url)?.path.hasSuffix("/sse") ?? false
            let kind = SettingsValue.string(sse ? "sse" : "http")
            func bearer(_ reference: String) -> SettingsValue {
                .object([("Authorization", .string("Bearer " + reference))])
            }
            switch self {
            case .claudeCode:
                return [("type", kind), ("url", .string(url)), ("headers", bearer("${\(variable)}"))]
            case .claudeDesktop:
                throw WiringError(
                    .unsupported,
                    "Claude Desktop takes only local (stdio) servers from its settings file: connect it without --url")
            case .cursor:
                return [("url", .string(url)), ("headers", bearer("${env:\(variable)}"))]
            case .vscode:
                return [("type", kind), ("url", .string(url)), ("headers", bearer("${input:\(Self.vscodeInput)}"))]
            case .gemini:
                return [("url", .string(url)), ("type", kind), ("headers", bearer("${\(variable)}"))]
            case .kiro:
                return [("url", .string(url)), ("headers", bearer("${\(variable)}")), ("disabled", .bool(false))]
            case .codex:
                guard !sse else {
                    throw WiringError(
                        .unsupported,
                        "Codex speaks streamable HTTP only: point it at a gateway run with --transport streaming (…/mcp)"
                    )
                }
                return [("url", .string(url)), ("bearer_token_env_var", .string(variable))]
            case .opencode:
                return [
                    ("type", .string("remote")), ("url", .string(url)), ("headers", bearer("{env:\(variable)}")),
                    ("oauth", .bool(false)), ("enabled", .bool(true)),
                ]
            case .zed:
                throw WiringError(
                    .unsupported,
                    "Zed reads no environment variables in its settings, so the token would sit in the file: connect it without --url (the gateway then runs over stdio)"
                )
            }
        }
    }

    /// The id of the input VS Code prompts for (and keeps in its secret storage) as the token.
    public static let vscodeInput = "airlock-mcp-token"

    /// VS Code's `inputs` entry for the token.
    static var vscodeTokenInput: SettingsValue {
        .object([
            ("type", .string("promptString")), ("id", .string(vscodeInput)),
            ("description", .string("Airlock MCP gateway token (AIRLOCK_MCP_TOKEN)")), ("password", .bool(true)),
        ])
    }
}

/// Which of a client's settings files: the user's own, or a project's.
public enum WiringScope: Sendable, Equatable {
    case global
    case project(String)

    public var label: String {
        switch self {
        case .global: "global"
        case .project: "project"
        }
    }
}

/// What a client's entry starts or reaches: the gateway over stdio, or a running HTTP gateway
/// whose token the client reads from an environment variable (never written to the file).
public enum GatewayTarget: Sendable, Equatable {
    case stdio(command: String, arguments: [String])
    case url(String, tokenVariable: String)
}
