import AirlockGateway
import AirlockPolicy
import AirlockRuntime
import AirlockState
import ArgumentParser

/// Options shared by `create` and `run`.
struct CreateOptions: ParsableArguments {
    @Option(name: .long, help: "Sandbox name (default: <agent>-<workspace directory name>).")
    var name: String?

    @Option(name: .long, help: "Image template (default: the agent's).")
    var template: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A container image to start from instead of a template (node:22, oci:DIR, docker-archive:FILE, …).",
            discussion:
                "Pulled first if missing (see `airlock image`); the agent runs as the image's uid-1000 user, or an added `agent`."
        ))
    var image: String?

    @Option(name: [.customShort("e"), .long], help: "Set an environment variable inside (KEY=VALUE; repeatable).")
    var env: [String] = []

    @Option(name: [.customShort("v"), .long], help: "Mount a host path: HOST[:PATH][:ro] (repeatable).")
    var volume: [String] = []

    @Option(
        name: .long, help: "Memory limit of the whole sandbox, e.g. 2g (default: half the host's memory, at most 32g).")
    var memory: String?

    @Option(
        name: .long,
        help: "Size of /tmp inside, e.g. 512m; it is kept in memory and counts against --memory (default: half of it)."
    )
    var tmpSize: String?

    @Option(name: .long, help: "CPU limit, e.g. 1.5 (default: all CPUs but one, at least 1).")
    var cpus: Double?

    @Option(
        name: .long,
        help:
            "Process and thread limit of the whole sandbox (default: 4096). `airlock doctor` says what enforces the limits here."
    )
    var pids: Int64?

    @Option(
        name: [.customShort("p"), .long],
        help: ArgumentHelp(
            "Publish a port of the sandbox on the host: [HOSTIP:]HOSTPORT:PORT (repeatable).",
            discussion:
                "HOSTIP defaults to 127.0.0.1 (this machine only); HOSTPORT 0 picks a free port each start. A server inside is reached whether it listens on 0.0.0.0, 127.0.0.1 or ::. Kept with the sandbox; see `airlock port`.",
            valueName: "spec"))
    var publish: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Isolation tier: container or gvisor. Default: `isolation:` in ~/.config/airlock/config.yaml, else container.",
            discussion:
                "container: namespaces, seccomp and cgroups around processes that call the host's kernel (crun or runc). gvisor: gVisor's runsc puts a kernel of its own, in user space, between the sandbox and the host's; slower to start and on system calls, and no --docker (see the README's table). `airlock doctor` says whether each works here.",
            valueName: "tier"))
    var isolation: String?

    @Option(
        name: .long,
        help:
            "OCI runtime: crun, runc or runsc (runsc is --isolation gvisor). Default: $AIRLOCK_RUNTIME, else the tier's: crun where `airlock doctor` finds it runs sandboxes (it starts them faster), else runc."
    )
    var runtime: String?

    @Flag(
        help: ArgumentHelp(
            "A private Docker engine in the sandbox: docker, compose and Testcontainers work inside, with images and containers of the sandbox's own.",
            discussion:
                "The engine runs beside the agent with more of the kernel than the agent gets (see `airlock inspect`); its pulls and its containers' traffic go through the sandbox's proxy and policy (Docker Hub is registry-1.docker.io, auth.docker.io and production.cloudflare.docker.com). Containers see the agent's home writable and the workspace and --mounts read-only, even with :rw (the git guard could not hold otherwise). They cannot publish ports 80, 443 or 3128. Not with --isolation gvisor. Never the host's Docker."
        ))
    var docker = false

    @Flag(help: ArgumentHelp("The same as --docker: the host's socket is never mounted.", visibility: .hidden))
    var mountDockerSocket = false

    @Flag(
        help:
            "Clone mode: the agent works in a private clone of the workspace (a git repository), which stays read-only; fetch its work with `git fetch airlock-<sandbox>`."
    )
    var clone = false

    @Option(
        help:
            "Leave a workspace path writable that the host-persistence guard makes read-only (.git/hooks, .git/config, .vscode, .idea, agent settings); repeatable."
    )
    var unprotect: [String] = []

    @Flag(
        help:
            "Share the agent's state (login, settings, history) with every sandbox of the same agent made with this flag, instead of keeping it in this sandbox alone; it lives in $AIRLOCK_HOME/agent-state/<agent> and outlives `rm`."
    )
    var shareAgentState = false

    @Flag(
        help:
            "Give the sandbox an MCP gateway (servers from the profile 'default', and the dynamic tools to add more) and configure the agent to use it at http://mcp.airlock.internal/mcp; the proxy adds the gateway's token, which the agent never sees."
    )
    var mcp = false

    @Flag(
        help:
            "Trust only the image's CAs and Airlock's inside, not the CA certificates of the host's trust store (which a TLS-inspecting company proxy needs)."
    )
    var noHostCa = false

    @Option(help: ArgumentHelp("With --mcp: exactly these catalog servers (implies --mcp).", valueName: "a,b"))
    var mcpServers: String?

    @Option(help: ArgumentHelp("With --mcp: the servers of this saved profile (implies --mcp).", valueName: "name"))
    var mcpProfile: String?

    @OptionGroup(title: "Network")
    var network: NetworkOptions

    func validate() throws {
        if mcpServers != nil && mcpProfile != nil {
            throw ValidationError("--mcp-servers and --mcp-profile both choose the gateway's servers: give one")
        }
    }

    /// With `--mcp`: checks the gateway's servers against the catalog and builds their images
    /// now, with progress, rather than while the agent waits for its tools.
    func prepareMCP(_ request: CreateRequest, context: Context) throws {
        guard let attachment = request.mcp else { return }
        let catalog = try ServerCatalog.load()
        let names =
            try attachment.servers ?? MCPProfiles().starting(profile: attachment.profile, pinned: nil)?.servers ?? []
        let images = TemplateImages(sandboxes: context.sandboxes)
        for name in names {
            let server = try catalog.find(name)
            guard let name = server.template else { continue }
            let template = try context.templates.find(name).template
            _ = try images.ensure(template, log: Context.progress)
        }
    }

    func request(agent: String, workspace: String?) throws -> CreateRequest {
        var request = CreateRequest(agent: agent, workspace: workspace ?? ".")
        request.ports = try publish.map(PublishedPort.init(spec:))
        request.name = name
        request.template = template
        request.image = image
        request.environment = env
        request.volumes = volume
        request.memory = memory
        request.cpus = cpus
        request.pids = pids
        request.tmpSize = tmpSize
        request.runtime = runtime
        request.isolation = try isolation.map(Isolation.init(parsing:))
        request.network = network.network
        request.policy = network.settings
        request.clone = clone
        request.unprotected = unprotect
        request.shareAgentState = shareAgentState
        request.trustHostCAs = !noHostCa
        request.docker = docker || mountDockerSocket
        if mountDockerSocket {
            Context.progress(
                "note: --mount-docker-socket gives the sandbox a Docker engine of its own, as --docker does; the host's socket is never mounted"
            )
        }
        if mcp || mcpServers != nil || mcpProfile != nil {
            request.mcp = SandboxRecord.MCPAttachment(
                servers: mcpServers.map(ServerCatalog.names),
                profile: mcpProfile)
        }
        return request
    }
}

/// The sandbox's way out and its own layer of network policy.
struct NetworkOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "policy (default): out through Airlock's proxy under the network policy; none: loopback only.",
            valueName: "policy|none"))
    var network: SandboxRecord.NetworkMode?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "balanced (default: registries, GitHub, model APIs), open (any public address) or locked (only hosts you allow).",
            valueName: "preset"))
    var networkPolicy: EgressPolicy.Preset?

    @OptionGroup
    var rules: NetworkCommand.RuleOptions

    var settings: PolicySettings { rules.settings(preset: networkPolicy) }
}

extension SandboxRecord.NetworkMode: ExpressibleByArgument {}
extension EgressPolicy.Preset: ExpressibleByArgument {}
