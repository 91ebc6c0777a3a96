/// The agents that ship with Airlock, with the templates that install them.
///
/// Each recipe is the agent's real install. Those from PyPI build on this project's machines;
/// those whose only sources are npm or a vendor's installer fail to build where those cannot be
/// reached, and the error names the source (`sources`).
public enum BuiltinAgents {
    public static let shell = AgentDefinition(
        name: "shell", description: "an interactive bash shell (AGENT_ARGS go to bash)", template: "shell",
        command: ["bash"])

    public static let claude = AgentDefinition(
        name: "claude", description: "Claude Code (Anthropic), the binary the claude-agent-sdk wheel carries",
        template: "claude", command: ["claude"], unattended: ["--dangerously-skip-permissions"],
        // platform.claude.com: its start-up connectivity check; claude.ai and console: logging in.
        credentials: ["anthropic"],
        hosts: [
            "api.anthropic.com", "statsig.anthropic.com", "platform.claude.com", "claude.ai", "console.anthropic.com",
        ],
        // Its config dir holds .claude.json too when set, so all its state is one directory
        // (a single shared file could not be replaced by rename, as Claude Code saves it).
        environment: ["CLAUDE_CONFIG_DIR=$HOME/.claude"], state: [".claude"], sources: ["PyPI: claude-agent-sdk"],
        mcp: .init(file: ".claude/.claude.json", entry: ["type": "http", "url": "$URL"], flag: "--mcp-config"))

    public static let gemini = AgentDefinition(
        name: "gemini", description: "Gemini CLI (Google)", template: "gemini", command: ["gemini"],
        unattended: ["--yolo"], credentials: ["google"],
        hosts: ["generativelanguage.googleapis.com", "oauth2.googleapis.com", "cloudcode-pa.googleapis.com"],
        state: [".gemini"], sources: ["npm: @google/gemini-cli (registry.npmjs.org)"],
        mcp: .init(file: ".gemini/settings.json", entry: ["httpUrl": "$URL"]))

    public static let codex = AgentDefinition(
        name: "codex", description: "Codex CLI (OpenAI)", template: "codex", command: ["codex"],
        unattended: ["--dangerously-bypass-approvals-and-sandbox"], credentials: ["openai"],
        hosts: ["api.openai.com", "auth.openai.com", "chatgpt.com"], state: [".codex"],
        sources: ["npm: @openai/codex (registry.npmjs.org)"])

    public static let kiro = AgentDefinition(
        name: "kiro", description: "Kiro CLI (AWS)", template: "kiro", command: ["kiro-cli", "chat"],
        unattended: ["--trust-all-tools"], hosts: ["*.kiro.dev"], state: [".local/share/kiro-cli", ".kiro"],
        sources: ["vendor installer: https://cli.kiro.dev/install"])

    public static let opencode = AgentDefinition(
        name: "opencode", description: "OpenCode (sst)", template: "opencode", command: ["opencode"],
        unattended: ["--auto"], credentials: ["anthropic", "openai"],
        hosts: ["opencode.ai", "models.dev", "api.anthropic.com", "api.openai.com"],
        state: [".local/share/opencode", ".config/opencode"], sources: ["npm: opencode-ai (registry.npmjs.org)"])

    public static let copilot = AgentDefinition(
        name: "copilot", description: "GitHub Copilot CLI", template: "copilot", command: ["copilot"],
        unattended: ["--allow-all-tools"], credentials: ["github"],
        hosts: ["api.githubcopilot.com", "*.githubcopilot.com", "github.com", "api.github.com"], state: [".copilot"],
        sources: ["npm: @github/copilot (registry.npmjs.org)"])

    public static let aider = AgentDefinition(
        name: "aider", description: "aider (aider-chat from PyPI)", template: "aider", command: ["aider"],
        unattended: ["--yes-always"], credentials: ["openai", "anthropic"],
        hosts: ["api.openai.com", "api.anthropic.com"], state: [".aider"], sources: ["PyPI: aider-chat"])

    public static let miniSWEAgent = AgentDefinition(
        name: "mini-swe-agent", description: "mini-swe-agent (PyPI), the 100-line agent", template: "mini-swe-agent",
        command: ["mini"], unattended: ["--yolo", "--exit-immediately"], credentials: ["openai", "anthropic"],
        hosts: ["api.openai.com", "api.anthropic.com"],
        // Past its first-run setup prompt; litellm's price list from the package, not GitHub.
        environment: ["MSWEA_CONFIGURED=true", "LITELLM_LOCAL_MODEL_COST_MAP=True"], state: [".config/mini-swe-agent"],
        sources: ["PyPI: mini-swe-agent"])

    public static let mistralVibe = AgentDefinition(
        name: "mistral-vibe", description: "Mistral Vibe (PyPI; needs Python 3.12, which uv fetches)",
        template: "mistral-vibe", command: ["vibe"], unattended: ["--agent", "auto-approve"],
        credentials: ["mistral"], hosts: ["api.mistral.ai"], state: [".vibe"],
        sources: ["PyPI: mistral-vibe", "Python 3.12 from github.com (python-build-standalone, through uv)"])

    public static let all = [
        shell, claude, gemini, codex, kiro, opencode, copilot, aider, miniSWEAgent, mistralVibe,
    ]
}

extension BuiltinTemplates {
    /// What every agent image has: a shell, git, the usual tools, Python for venv installs.
    static let agentBase = [
        "bash", "bash-completion", "git", "curl", "ca-certificates", "procps", "less", "jq", "ripgrep",
        "openssh-client", "unzip", "xz-utils", "python3", "python3-venv", "python3-pip",
    ]

    /// A Python tool installed into its own venv under /opt, its commands linked into /usr/local/bin.
    static func venv(_ name: String, package: String, commands: [String], extra: [String] = []) -> [String] {
        ["python3 -m venv /opt/\(name)", "/opt/\(name)/bin/pip install --no-cache-dir \(package)"]
            + commands.map { "ln -sf /opt/\(name)/bin/\($0) /usr/local/bin/\($0)" } + extra
    }

    /// A Node.js tool installed globally with npm.
    static func npm(_ name: String, _ description: String, package: String) -> Template {
        Template(
            name: name, description: description, packages: agentBase + ["nodejs", "npm"],
            steps: ["npm install --global \(package)"])
    }

    static let agentTemplates: [Template] = [
        Template(
            name: "claude", description: "Claude Code from the claude-agent-sdk wheel (PyPI)", packages: agentBase,
            steps: venv("claude-agent-sdk", package: "claude-agent-sdk", commands: [])
                + [
                    "ln -sf \"$(/opt/claude-agent-sdk/bin/python -c 'import claude_agent_sdk, pathlib; print(pathlib.Path(claude_agent_sdk.__file__).parent / \"_bundled\" / \"claude\")')\" /usr/local/bin/claude",
                    "claude --version",
                ]),
        Template(
            name: "aider", description: "aider (aider-chat, PyPI)", packages: agentBase,
            steps: venv("aider", package: "aider-chat", commands: ["aider"]) + ["aider --version"]),
        Template(
            name: "mini-swe-agent", description: "mini-swe-agent (PyPI)", packages: agentBase,
            // litellm imports `mcp` for any request with tools but does not depend on it.
            steps: venv("mini-swe-agent", package: "mini-swe-agent mcp", commands: ["mini", "mini-extra"])),
        Template(
            name: "mistral-vibe", description: "Mistral Vibe (PyPI) on Python 3.12 from uv", packages: agentBase,
            steps: venv("uv", package: "uv", commands: ["uv"])
                + [
                    "UV_TOOL_DIR=/opt/uv-tools UV_TOOL_BIN_DIR=/usr/local/bin UV_PYTHON_INSTALL_DIR=/opt/uv-python uv tool install --python 3.12 mistral-vibe"
                ]),
        npm("gemini", "Gemini CLI (npm)", package: "@google/gemini-cli"),
        npm("codex", "Codex CLI (npm)", package: "@openai/codex"),
        npm("opencode", "OpenCode (npm)", package: "opencode-ai"),
        npm("copilot", "GitHub Copilot CLI (npm)", package: "@github/copilot"),
        Template(
            name: "kiro", description: "Kiro CLI (vendor installer)", packages: agentBase,
            steps: [
                "curl -fsSL https://cli.kiro.dev/install | bash",
                "ln -sf /root/.local/bin/kiro-cli /usr/local/bin/kiro-cli",
            ]),
    ]
}
