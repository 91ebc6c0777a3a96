import AirlockEgress
import AirlockImages
import AirlockOCI
import AirlockPolicy
import AirlockState
import AirlockSystem
import AirlockTLS
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What `create` and `run` were asked for.
public struct CreateRequest: Sendable {
    public var agent: String
    public var workspace: String
    public var name: String?
    public var template: String?
    /// A container image to start from instead of a template (`run --image`): pulled if missing.
    public var image: String?
    public var environment: [String] = []
    public var volumes: [String] = []
    public var memory: String?
    public var cpus: Double?
    public var pids: Int64?
    /// The size of `/tmp` inside, e.g. `512m` (default: half the memory limit).
    public var tmpSize: String?
    public var runtime: String?
    /// `--isolation`: the tier (``Isolation``); nil leaves it to `runtime`, the environment and
    /// the user's settings.
    public var isolation: Isolation?
    public var network: SandboxRecord.NetworkMode?
    /// The sandbox's own policy layer (`--network-policy`, `--allow-host`, ...).
    public var policy = PolicySettings()
    /// Clone mode (`--clone`).
    public var clone = false
    /// Paths the host-persistence guard leaves writable (`--unprotect`).
    public var unprotected: [String] = []
    /// `--share-agent-state`: the agent's state is shared by all its sandboxes made this way.
    public var shareAgentState = false
    /// `--mcp`: an MCP gateway for the sandbox, and the agent configured to use it.
    public var mcp: SandboxRecord.MCPAttachment?
    /// `--no-host-ca` makes this false: the sandbox does not trust the host's CAs.
    public var trustHostCAs = true
    /// `--publish`: kept with the sandbox; given again to an existing one, added to it.
    public var ports: [PublishedPort] = []
    /// `--docker`: a private Docker engine in the sandbox.
    public var docker = false

    public init(agent: String, workspace: String) {
        self.agent = agent
        self.workspace = workspace
    }

    /// True when an option that only `create` can apply was given.
    public var hasCreateOptions: Bool {
        template != nil || image != nil || !environment.isEmpty || !volumes.isEmpty || memory != nil || cpus != nil
            || pids != nil
            || tmpSize != nil || runtime != nil || isolation != nil || network != nil || policy != PolicySettings()
            || clone
            || !unprotected.isEmpty
            || shareAgentState || mcp != nil || !trustHostCAs || docker
    }
}

/// Creates, starts, enters, stops and removes sandboxes.
public struct Sandboxes: Sendable {
    public let store: StateStore
    public let templates: TemplateCatalog
    public let agents: AgentCatalog
    public let log: @Sendable (String) -> Void

    public init(
        store: StateStore, templates: TemplateCatalog, agents: AgentCatalog = .default(),
        log: @escaping @Sendable (String) -> Void
    ) {
        self.store = store
        self.templates = templates
        self.agents = agents
        self.log = log
    }

    // MARK: create

    /// The command that starts this sandbox again: `run` finds it by its name, which must be
    /// given where it is not the one `run` would make from the agent and workspace.
    public static func startCommand(for record: SandboxRecord) -> String {
        let named = record.name == defaultName(agent: record.agent, workspace: record.workspace)
        return (["airlock", "run"] + (named ? [] : ["--name", record.name]) + [record.agent, record.workspace])
            .map(shellQuote).joined(separator: " ")
    }

    /// The sandbox name for an agent and workspace: `<agent>-<directory name>`.
    public static func defaultName(agent: String, workspace: String) -> String {
        let base = (workspace as NSString).lastPathComponent
        var name = "\(agent)-\(base)".lowercased().map { ch -> Character in
            ch.isASCII && (ch.isLetter || ch.isNumber || ch == "-" || ch == "_" || ch == ".") ? ch : "-"
        }
        while name.first == "-" || name.first == "." { name.removeFirst() }
        return String(String(name).prefix(63))
    }

    public static func validate(name: String) throws {
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9_.-]{0,62}/) != nil else {
            throw AirlockError(
                .invalidArgument,
                "invalid sandbox name '\(name)' (lower-case letters, digits, '.', '_', '-'; at most 63)")
        }
    }

    /// Creates the sandbox, or returns the existing one for the same agent and workspace.
    public func create(_ request: CreateRequest) throws -> (record: SandboxRecord, created: Bool) {
        let agent = try agents.find(request.agent).agent
        let workspace = Files.absolute(request.workspace)
        guard Files.isDirectory(workspace) else {
            throw AirlockError(.notFound, "workspace \(request.workspace) does not exist or is not a directory")
        }
        try Self.checkWorkspace(workspace)
        try checkOutsideStateStore(workspace, what: "workspace")
        let name = request.name ?? Self.defaultName(agent: agent.name, workspace: workspace)
        try Self.validate(name: name)
        // Checked even when the sandbox exists (and keeps its own image): a typo says so.
        if let reference = request.image { _ = try ImageSource.userInput(reference) }
        try store.prepare()
        let paths = store.sandbox(name)
        if Files.exists(paths.record) {
            let existing = try paths.loadRecord()
            guard existing.workspace == workspace else {
                throw AirlockError(
                    .conflict,
                    "sandbox name '\(name)' is taken by workspace \(existing.workspace) (choose another with --name)")
            }
            guard existing.agent == agent.name else {
                throw AirlockError(
                    .conflict, "sandbox name '\(name)' is taken by agent \(existing.agent) (choose another with --name)"
                )
            }
            try checkPolicy(of: existing)
            let ports = SandboxPorts(store: store)
            for spec in request.ports where !(existing.ports ?? []).contains(spec) {
                if let active = try ports.publish(name, spec) {
                    log("published \(active.hostEndpoint) -> \(spec.port)")
                }
            }
            // The engine is part of the image and the start: it cannot be added to a sandbox made without it.
            if request.docker && existing.docker != true {
                throw AirlockError(
                    .conflict,
                    "sandbox \(name) was created without --docker: remove it (`airlock rm \(name)`) and run again with --docker, or choose another name with --name"
                )
            }
            if request.hasCreateOptions {
                log(
                    "note: sandbox \(name) already exists; its options stay as created (`airlock rm \(name)` to change them)"
                )
            }
            return (existing, false)
        }
        // Before anything is made: a port the host already uses is one line, not a half-made sandbox.
        try SandboxPorts.checkAvailable(request.ports)

        let identity = try SandboxIdentity.current()
        let wantsDocker = request.docker || agent.docker
        // Before any image work: a tier that cannot run here, or cannot host what is asked, is one line.
        let runtime = try RuntimeChoice(store: store).choose(runtime: request.runtime, isolation: request.isolation)
        StepTiming.mark("create: runtime \(runtime.runtime.rawValue) chosen")
        if wantsDocker { try DockerEngine.checkRequest(runtime: runtime.runtime) }
        var template: Template
        var prepared: (image: Image, pulled: PulledImage)?
        if let reference = request.image {
            guard request.template == nil else {
                throw AirlockError(.invalidArgument, "--image and --template name two starting points: give one")
            }
            if wantsDocker {
                // The engine's packages go on the image with its own apt-get, as a template
                // `from` it with `docker: true` would put them.
                var recipe = Template(name: "image", packages: [])
                recipe.from = reference
                let built = try TemplateImages(sandboxes: self).ensure(recipe.withDocker(), log: log)
                guard let pulled = built.pulled else {
                    throw AirlockError(.failed, "image \(reference) was not pulled")
                }
                prepared = (built.image, pulled)
                template = Template(name: "image", description: reference, packages: [], user: built.user)
            } else {
                let (image, pulled, user) = try Self.prepareImage(
                    reference, store: store, identity: identity, log: log)
                try Self.checkShell(image, reference: reference, for: "an agent's sandbox", store: store)
                prepared = (image, pulled)
                template = Template(name: "image", description: reference, packages: [], user: user)
            }
        } else {
            template = try templates.find(request.template ?? agent.template).template
            if wantsDocker { template = template.withDocker() }
            if template.from != nil {
                let built = try TemplateImages(sandboxes: self).ensure(template, log: log)
                prepared = built.pulled.map { (built.image, $0) }
                template.user = built.user
            }
        }
        StepTiming.mark("create: image \(template.name) found")
        let limits = DefaultLimits.filling(
            SandboxRecord.Limits(
                memoryBytes: try request.memory.map(Self.parseBytes), cpus: try request.cpus.map(Self.checkCPUs),
                pids: try request.pids.map(Self.checkPids),
                tmpBytes: try request.tmpSize.map { try Self.parseSize($0, what: "--tmp-size", minimum: 1 << 20) }))
        if let tmp = limits.tmpBytes, let memory = limits.memoryBytes, tmp > memory {
            throw AirlockError(
                .invalidArgument,
                "--tmp-size \(request.tmpSize ?? "") is more than the sandbox's memory (\(memory >> 20)m): /tmp is kept in memory"
            )
        }
        let mounts = try request.volumes.map(Self.parseVolume)
        for mount in mounts {
            try Self.checkWorkspace(mount.source)
            try checkOutsideStateStore(mount.source, what: "mount source")
        }
        // The image's settings, then the agent's own, so the user's `-e` can override them.
        let environment =
            try (prepared?.pulled.run.env ?? [])
            + agent.environment(home: template.user.homeDirectory)
            + request.environment.map(Self.checkEnvironment)
        if request.shareAgentState && agent.state.isEmpty {
            throw AirlockError(
                .invalidArgument, "agent \(agent.name) keeps no state to share (its definition has no `state`)")
        }
        if request.clone { try GitClone.checkRepository(workspace) }
        if request.mcp != nil && request.network == SandboxRecord.NetworkMode.none {
            throw AirlockError(
                .invalidArgument, "--mcp needs the policy network: the gateway is reached through the proxy")
        }
        do {
            try request.policy.validate()
        } catch {
            throw AirlockError(.invalidArgument, error.description)
        }
        if (request.network ?? .policy) == .policy {
            _ = try PolicyStore(files: PolicyStore.Files(paths: paths, userNarrowsOnly: false)).check()
        }
        var policy = request.policy
        for note in Self.unreachableAddedHosts(policy) { log("note: " + note) }
        // The hosts the agent needs join the sandbox's own layer, where `network policy` shows them.
        for host in agent.hosts where !policy.allowHosts.contains(host) { policy.allowHosts.append(host) }
        let image: Image
        do {
            image = try prepared?.image ?? TemplateImages(sandboxes: self).ensure(template, log: log).image
        } catch let error as AirlockError where !agent.sources.isEmpty && request.template == nil {
            throw AirlockError(
                error.code,
                "\(error.message) (agent \(agent.name) installs from \(agent.sources.joined(separator: "; ")): this machine must reach it to build the image)",
                cause: error.cause)
        }

        StepTiming.mark("create: request checked")
        try Files.makeDirectory(store.sandboxesDirectory)
        guard mkdir(paths.directory, 0o700) == 0 else {
            if errno == EEXIST {
                // Another command is creating it (it holds the lock): once its record exists,
                // this is a reuse. A directory nobody holds is what a killed `create` left.
                let started = Monotonic.now()
                while !Files.exists(paths.record) && Files.isDirectory(paths.directory) {
                    if Monotonic.now() - started > 0.5 && !FileLock.isHeld(path: paths.lock) {
                        log("removing the remains of an interrupted create of \(name)")
                        Files.remove(paths.directory)
                        break
                    }
                    usleep(20_000)
                }
                return try create(request)
            }
            throw AirlockError(
                .failed, "cannot create \(paths.directory)", cause: SystemCallError("mkdir", errno: errno))
        }
        do {
            let lock = try FileLock(path: paths.lock)
            try lock.acquire(timeout: 30, what: "sandbox \(name)")
            defer { lock.release() }
            for dir in [paths.upper, paths.work, paths.home, paths.bundle, paths.etc] {
                try Files.makeDirectory(dir)
            }
            try Files.makeDirectory(paths.runtimeRoot, mode: 0o700)
            try seedHome(paths.home, imageRootfs: image.rootfs(in: store))
            StepTiming.mark("create: home seeded")
            var record = SandboxRecord(
                name: name, agent: agent.name, workspace: workspace,
                template: request.image == nil ? template.name : "image " + (template.description ?? ""),
                image: image.digest,
                user: template.user.name, sudo: template.user.sudo, runtime: runtime.runtime.rawValue,
                command: agent.fullCommand,
                environment: environment, mounts: mounts,
                limits: limits, created: Date(), network: request.network)
            if let home = template.user.home {
                record.account = .init(uid: SandboxIdentityIDs.agent, gid: SandboxIdentityIDs.agent, home: home)
            }
            record.gitIdentity = Self.hostGitIdentity()
            record.unprotected = request.unprotected.isEmpty ? nil : request.unprotected
            record.trustHostCAs = request.trustHostCAs ? nil : false
            record.ports = request.ports.isEmpty ? nil : request.ports
            record.gvisorPlatform = runtime.gvisorPlatform?.rawValue
            record.docker = template.docker == true || wantsDocker ? true : nil
            if record.docker == true { try DockerEngine.checkRequest(runtime: runtime.runtime) }
            if request.shareAgentState {
                record.sharedState = .init(directory: store.sharedAgentState(agent.name), paths: agent.state)
            }
            if let attachment = request.mcp {
                record.mcp = attachment
                record.command += try configureMCP(
                    agent, record: record, paths: paths, home: template.user.homeDirectory)
            }
            if request.clone {
                try GitClone(workspace: workspace, paths: paths, name: name).create()
                record.clone = true
            }
            try paths.save(record)
            if prepared != nil {
                // An `image rm` (or `template rm`) may have taken the tree meanwhile.
                try Self.confirmImage(image, of: record, store: store, identity: identity, log: log)
            }
            try Self.savePolicy(policy, to: paths)
            if record.networkMode == .policy {
                try SecretStore.captureEnvironment(into: paths)
                noteMissingCredentials(agent, paths: paths)
            }
            StepTiming.mark("create: record, policy and credentials saved")
            return (record, true)
        } catch {
            Files.remove(paths.directory)
            throw error
        }
    }

    /// Refuses a sandbox whose network policy cannot be used (a layer file that is not valid
    /// YAML, or names a bad rule): its supervisor would refuse every request, and say why only
    /// in the network log.
    func checkPolicy(of record: SandboxRecord) throws {
        guard record.networkMode == .policy else { return }
        let files = PolicyStore.Files(
            paths: store.sandbox(record.name), userNarrowsOnly: record.ownPolicyOnly ?? false)
        _ = try PolicyStore(files: files).check()
    }

    /// `--add-host` entries whose address the policy blocks (loopback, private, ...) with no
    /// `--allow-cidr` opening it: the agent would only see connections fail.
    static func unreachableAddedHosts(_ policy: PolicySettings) -> [String] {
        let opened = policy.allowCIDRs.compactMap(AddressRange.init)
        return policy.addHosts.compactMap { entry in
            guard let address = try? PolicySettings.staticHost(entry).address,
                let reason = BlockedRanges.reason(for: address), !opened.contains(where: { $0.contains(address) })
            else { return nil }
            return
                "--add-host \(entry): \(address) is a \(reason), which the policy blocks; add --allow-cidr \(address)/32 to reach it"
        }
    }

    /// The URL the agent inside uses for the sandbox's MCP gateway.
    public static let mcpGatewayURL = "http://\(MCPGatewayRoute.host)/mcp"

    /// Where `--mcp` puts the gateway's entry when the agent's settings are shared: a file of
    /// the sandbox's own home, given to the agent with its option.
    static let privateMCPConfig = ".airlock/mcp.json"

    /// Adds the gateway to the agent's own MCP settings in the sandbox's home, never in the
    /// workspace; returns arguments the agent's command needs for it. Settings shared with
    /// other sandboxes stay as they are when the agent can take a file of its own instead.
    func configureMCP(
        _ agent: AgentDefinition, record: SandboxRecord, paths: SandboxPaths, home: String
    ) throws -> [String] {
        guard let config = agent.mcp else {
            log(
                "note: airlock does not know where \(agent.name) keeps its MCP settings: point it at \(Self.mcpGatewayURL) yourself"
            )
            return []
        }
        var base = paths.home
        var file = config.file
        var arguments: [String] = []
        if let shared = record.sharedState, shared.paths.contains(where: { config.file.hasPrefix($0 + "/") }) {
            if let flag = config.flag {
                file = Self.privateMCPConfig
                arguments = [flag, home + "/" + file]
            } else {
                base = shared.directory
                log(
                    "note: \(agent.name)'s MCP settings are in its shared state: sandboxes that share it without --mcp will list the airlock server too"
                )
            }
        }
        let parent = (file as NSString).deletingLastPathComponent
        if !parent.isEmpty { try Files.makeDirectories(parent, under: base) }
        let path = base + "/" + file
        var settings: [String: Any] = [:]
        if let text = Files.readRegularFile(path, limit: 16 << 20), !text.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw AirlockError(.failed, "cannot add the MCP gateway to \(path): it is not a JSON object")
            }
            settings = object
        }
        var servers = settings["mcpServers"] as? [String: Any] ?? [:]
        servers["airlock"] = config.entry.mapValues { $0.replacingOccurrences(of: "$URL", with: Self.mcpGatewayURL) }
        settings["mcpServers"] = servers
        let data = try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys])
        try Files.writeAtomically(path, String(decoding: data, as: UTF8.self) + "\n", mode: 0o600)
        return arguments
    }

    /// The caller's `git config --global` name and email, if git and they are there.
    static func hostGitIdentity() -> SandboxRecord.GitIdentity? {
        guard Executables.find("git") != nil,
            let output = try? ChildProcess.run([
                "git", "config", "--global", "--null", "--get-regexp", "^user\\.(name|email)$",
            ]), output.status == 0
        else { return nil }
        // One git for both: `key\nvalue\0` each, the last of a key winning as git's own lookup.
        var values: [String: String] = [:]
        for entry in output.stdout.split(separator: "\0") {
            let parts = entry.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let value = parts[1].trimmingCharacters(in: .whitespacesAndNewlines)
            values[String(parts[0])] = value.isEmpty ? nil : value
        }
        let identity = SandboxRecord.GitIdentity(name: values["user.name"], email: values["user.email"])
        return identity.name == nil && identity.email == nil ? nil : identity
    }

    /// Says how to give the agent a key when none of the services it uses has one.
    private func noteMissingCredentials(_ agent: AgentDefinition, paths: SandboxPaths) {
        guard let first = agent.credentials.first else { return }
        let present = Set(SecretStore(store: store).credentials(for: paths).map(\.service.name))
        guard present.isDisjoint(with: agent.credentials) else { return }
        log(
            "note: \(agent.name) has no API key for \(agent.credentials.joined(separator: " or ")): give one with `airlock secret set \(first)` (the proxy injects it; it never enters the sandbox), or log in inside"
        )
    }

    /// What the long-lived supervisor keeps of the caller's environment: where things are,
    /// the host's proxy settings and Airlock's own; not the API keys and tokens a shell holds.
    static func supervisorEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        let kept: Set<String> = [
            "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
            "XDG_RUNTIME_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
        ]
        return environment.filter { kept.contains($0.key) || $0.key.hasPrefix("AIRLOCK_") }
    }

    /// Writes a sandbox's own policy layer, which the running supervisor picks up at once.
    public static func savePolicy(_ policy: PolicySettings, to paths: SandboxPaths) throws {
        try Files.writeAtomically(paths.policy, try JSONText.pretty(policy) + "\n", mode: 0o600)
    }

    /// Copies the image's skeleton files into a new private home.
    private func seedHome(_ home: String, imageRootfs: String) throws {
        let skel = imageRootfs + "/etc/skel"
        for file in (try? FileManager.default.contentsOfDirectory(atPath: skel)) ?? [] {
            try? FileManager.default.copyItem(atPath: skel + "/" + file, toPath: home + "/" + file)
        }
    }

    /// Refuses workspaces that would put what the sandbox exists to hide inside it: the root
    /// directory, the user's home, or a directory that contains the home.
    public static func checkWorkspace(_ workspace: String, home: String? = ProcessInfo.processInfo.environment["HOME"])
        throws
    {
        guard workspace != "/" else {
            throw AirlockError(.invalidArgument, "refusing to use / as a workspace (cd into a project directory)")
        }
        guard let home, !home.isEmpty, home != "/" else { return }
        let resolvedHome = Files.absolute(home)
        if Files.isWithin(resolvedHome, workspace) {
            throw AirlockError(
                .invalidArgument,
                "refusing to use \(workspace) as a workspace: it holds your home directory, and with it ~/.ssh and your keys (cd into a project directory)"
            )
        }
    }

    /// Refuses a host path that holds Airlock's state, or lies in it: from inside, a sandbox
    /// could otherwise rewrite its own record (and its mounts) or another sandbox's image.
    func checkOutsideStateStore(_ path: String, what: String) throws {
        let state = Files.absolute(store.root)
        if Files.isWithin(state, path) || Files.isWithin(path, state) {
            throw AirlockError(
                .invalidArgument, "refusing \(what) \(path): it overlaps airlock's state directory \(state)")
        }
    }

    /// Checks, at every start, that each host path still resolves to itself: a directory the
    /// sandbox replaced with a symlink since `create` would otherwise bind the link's target.
    static func checkMountSources(_ record: SandboxRecord) throws {
        let workspace = record.disposable == nil ? [record.workspace] : []
        for source in workspace + record.mounts.map(\.source) {
            let resolved = Files.absolute(source)
            guard resolved == source else {
                throw AirlockError(
                    .conflict,
                    "\(source) now resolves to \(resolved) (a symlink replaced it since the sandbox was created); refusing to start \(record.name)"
                )
            }
            guard Files.exists(source) else {
                throw AirlockError(.notFound, "mount source \(source) of sandbox \(record.name) no longer exists")
            }
        }
    }

    /// Parses a memory size: `512m`, `2g`, `1.5G`, `1048576`; at least 6 MiB.
    public static func parseBytes(_ text: String) throws -> Int64 {
        try parseSize(text, what: "memory size", minimum: 6 * 1024 * 1024)
    }

    /// Parses a size with an optional unit (k, m, g, t; powers of 1024).
    public static func parseSize(_ text: String, what: String, minimum: Int64) throws -> Int64 {
        let lower = text.lowercased().replacingOccurrences(of: "b", with: "")
        let units: [Character: Double] = [
            "k": 1024, "m": 1024 * 1024, "g": 1024 * 1024 * 1024, "t": 1024 * 1024 * 1024 * 1024,
        ]
        var number = Substring(lower)
        var factor = 1.0
        if let last = lower.last, let unit = units[last] {
            factor = unit
            number = number.dropLast()
        }
        guard let value = Double(number), value.isFinite, value > 0, value * factor >= Double(minimum),
            value * factor < Double(Int64.max / 2)
        else {
            throw AirlockError(
                .invalidArgument,
                "invalid \(what) '\(text)' (use e.g. 512m or 2g; at least \(minimum / 1024)k)")
        }
        return Int64(value * factor)
    }

    static func checkCPUs(_ value: Double) throws -> Double {
        guard value > 0, value <= 1024 else {
            throw AirlockError(.invalidArgument, "invalid --cpus \(value) (use e.g. 1.5)")
        }
        return value
    }

    static func checkPids(_ value: Int64) throws -> Int64 {
        guard value >= 8 else { throw AirlockError(.invalidArgument, "invalid --pids \(value) (at least 8)") }
        return value
    }

    static func checkEnvironment(_ entry: String) throws -> String {
        guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
            throw AirlockError(.invalidArgument, "invalid -e '\(entry)' (use KEY=VALUE)")
        }
        return entry
    }

    /// Parses `HOST[:PATH][:ro|rw]`.
    public static func parseVolume(_ spec: String) throws -> SandboxRecord.MountRequest {
        var parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count > 1, let last = parts.last, last == "ro" || last == "rw" {
            readOnly = last == "ro"
            parts.removeLast()
        }
        guard (1...2).contains(parts.count), !parts[0].isEmpty else {
            throw AirlockError(.invalidArgument, "invalid -v '\(spec)' (use HOST[:PATH][:ro])")
        }
        let source = Files.absolute(parts[0])
        guard Files.exists(source) else {
            throw AirlockError(.notFound, "mount source \(parts[0]) does not exist")
        }
        let destination = parts.count == 2 ? parts[1] : source
        guard destination.hasPrefix("/"), !destination.split(separator: "/").contains("..") else {
            throw AirlockError(.invalidArgument, "invalid -v '\(spec)': the sandbox path must be absolute")
        }
        return SandboxRecord.MountRequest(source: source, destination: destination, readOnly: readOnly)
    }

    /// A pulled image ready to start from (pulled first when missing), and its account.
    static func prepareImage(
        _ reference: String, store: StateStore, identity: SandboxIdentity, log: @escaping @Sendable (String) -> Void
    ) throws -> (Image, PulledImage, Template.UserSetup) {
        let images = ImageStore(store: store)
        let pulled: PulledImage
        if let found = images.find(reference) {
            pulled = found
        } else {
            let source = try ImageSource.userInput(reference)
            try RegistryAccess.check(source)
            log("image \(reference) is not pulled yet: pulling it")
            pulled = try ImagePuller(images: images, identity: identity).pull(source, log: log)
        }
        let (image, user) = try PulledImageRootfs(images: images, identity: identity).ensure(pulled, log: log)
        return (image, pulled, user)
    }

    /// Throws unless the image's tree has `/bin/sh`, which `what` runs its commands through
    /// (an MCP server's program needs none: distroless images serve those).
    static func checkShell(_ image: Image, reference: String, for what: String, store: StateStore) throws {
        guard PulledImageRootfs.hasShell(image.rootfs(in: store)) else {
            throw AirlockError(
                .unsupported,
                "image \(reference) has no /bin/sh, which \(what) runs its commands through (MCP servers run from such images)"
            )
        }
    }

    /// Throws if an `image rm` removed the pulled image's tree while `record` was being made
    /// on it (call once the record is saved).
    static func confirmImage(
        _ image: Image, of record: SandboxRecord, store: StateStore, identity: SandboxIdentity,
        log: @escaping @Sendable (String) -> Void
    ) throws {
        let prepared = PulledImageRootfs(images: ImageStore(store: store), identity: identity)
        guard try prepared.isStillThere(image.digest, log: log) else {
            throw AirlockError(
                .conflict,
                "image \(image.template) was removed while sandbox \(record.name) was made on it (try again)")
        }
    }

    // MARK: start

    public func record(_ name: String) throws -> SandboxRecord {
        let paths = store.sandbox(name)
        guard Files.exists(paths.record) else { throw AirlockError(.notFound, "no sandbox named '\(name)'") }
        return try paths.loadRecord()
    }

    /// The sandbox's spec; `cgroup` when the caller has already looked at the host's cgroups.
    func spec(for record: SandboxRecord, cgroup: SandboxCgroup? = nil) throws -> SandboxSpec {
        let imageRootfs = store.imageRootfs(record.image)
        guard Files.isDirectory(imageRootfs) else {
            throw AirlockError(
                .notFound, "the image of sandbox \(record.name) is gone (remove the sandbox: airlock rm \(record.name))"
            )
        }
        let cgroup = cgroup ?? SandboxCgroup(store.sandbox(record.name))
        var spec = SandboxSpec(
            record: record, paths: store.sandbox(record.name), imageRootfs: imageRootfs,
            user: Template.UserSetup(name: record.user, sudo: record.sudo),
            limitsBy: cgroup.support.mechanism)
        spec.containerCgroup = cgroup.containerGroup
        if record.networkMode == .policy {
            spec.credentialVariables = SecretStore(store: store).credentials(for: store.sandbox(record.name))
                .flatMap(\.service.variables)
        }
        return spec
    }

    /// The sandbox trusts what its image trusts, the user's Airlock CA (which signs the
    /// certificates the proxy presents where it injects credentials), and unless the sandbox
    /// was made with `--no-host-ca`, the CAs of the host's trust store (behind a TLS-inspecting
    /// proxy, only the host knows that proxy's CA).
    private func writeTrustStore(_ record: SandboxRecord, _ paths: SandboxPaths, imageRootfs: String) throws {
        let authority = try CertificateAuthority.loadOrCreate(directory: store.caDirectory)
        let host = record.trustHostCAs == false ? "" : SandboxTrustStore.hostBundle() ?? ""
        let trust = SandboxTrustStore(
            image: Files.readRegularFile(imageRootfs + SandboxSpec.trustBundle, limit: 8 << 20) ?? "", host: host,
            airlock: authority.certificatePEM)
        try Files.writeAtomically(paths.etc + "/airlock-ca.crt", trust.anchors)
        try Files.writeAtomically(paths.caBundle, trust.bundle)
    }

    /// Starts the sandbox's supervisor unless it is already running; returns its status.
    @discardableResult
    public func start(_ name: String) throws -> RunningStatus {
        let paths = store.sandbox(name)
        var record = try record(name)
        if paths.isRunning, let status = paths.loadStatus() { return status }
        let lock = try FileLock(path: paths.lock)
        try lock.acquire(timeout: 60, what: "sandbox \(name)")
        defer { lock.release() }
        if paths.isRunning, let status = paths.loadStatus() { return status }
        if record.limits.isEmpty {
            // Made before limits were on by default: it gets the defaults from now on.
            record.limits = DefaultLimits.current()
            try paths.save(record)
            log("note: sandbox \(name) now has the default limits (see `airlock inspect \(name)`)")
        }

        try checkPolicy(of: record)
        try Self.checkMountSources(record)
        if let shared = record.sharedState, record.disposable == nil {
            // Both ends of each shared state directory: its host copy and its mount point.
            try Files.makeDirectory(shared.directory, mode: 0o700)
            for path in shared.paths {
                try Files.makeDirectories(path, under: shared.directory)
                try Files.makeDirectories(path, under: paths.home)
            }
        }
        // Process files of execs whose airlock was killed: none can be in use while stopped.
        Files.remove(paths.execDirectory)
        // Looked at once: the spec's limits and the group made below agree.
        let cgroup = SandboxCgroup(paths)
        var spec = try spec(for: record, cgroup: cgroup)
        StepTiming.mark("start: checks and spec")
        Files.remove(paths.gitGuardPlan)
        if record.clone != true {
            // Disposable sandboxes too: the gateway's servers may have the workspace mounted.
            spec.gitGuard = GitGuardPlan.make(record: record, paths: paths)
            if let problem = spec.gitGuard.filterUnavailable, !spec.gitGuard.known.isEmpty, record.disposable == nil {
                log("note: .git is read-only in this sandbox: \(problem)")
            }
        }
        if record.disposable == nil && record.clone != true {
            let guarded = HostPersistenceGuard.protectedPaths(
                workspace: record.workspace, unprotected: record.unprotected ?? [])
            spec.protectedPaths = guarded.paths
            try HostRunFiles.snapshot(workspace: record.workspace).save(to: paths.hostRunSnapshot)
            // Appended: a start after a killed supervisor adds to what is still there.
            if !guarded.made.isEmpty {
                let earlier = (try? Files.read(paths.guardMade)) ?? ""
                try Files.writeAtomically(paths.guardMade, earlier + guarded.made.map { $0 + "\n" }.joined())
            }
        }
        StepTiming.mark("start: git guard plan and host persistence guard")
        let driver = RuntimeDriver(record: record, paths: paths)
        _ = try driver.requireInstalled()
        try spec.gitGuard.save(paths)
        for (file, contents) in spec.etcFiles() {
            try Files.writeAtomically(paths.etc + "/" + file, contents)
        }
        if let sudo = spec.gvisorSudo {
            try Files.writeAtomically(paths.etc + "/" + SandboxSpec.gvisorSudoFile, sudo, mode: 0o755)
        }
        if record.networkMode == .policy { try writeTrustStore(record, paths, imageRootfs: spec.imageRootfs) }
        StepTiming.mark("start: /etc files and trust store written")
        try Files.writeAtomically(paths.bundle + "/config.json", try JSONText.pretty(spec.runtimeSpec()))
        if record.docker == true { try DockerEngine(spec: spec).prepare() }

        // The limits are in place before the sandbox's first process.
        try cgroup.prepare(SandboxSpec.hostLimits(record))
        StepTiming.mark("start: runtime spec and cgroup")
        let ready = try Pipe2()
        let launcher = try ChildProcess.spawn(
            cgroup.launchPrefix() + [
                "setsid", "--fork", Executables.current, "_supervise", "--state", store.root, name,
            ],
            environment: Self.supervisorEnvironment(),
            stdin: .null, stdout: .file(paths.log), stderr: .file(paths.log), extraDescriptors: [3: ready.write])
        ready.closeWrite()
        let answer = readReadinessLine(ready.read).trimmingCharacters(in: .whitespacesAndNewlines)
        launcher.wait()
        guard answer == "ready" else {
            // What exited first says why in the log's last line (systemd-run, which starts the
            // supervisor on cgroup v2, among them).
            let last = ((try? Files.read(paths.log)) ?? "").split(separator: "\n").last.map(String.init)
            let message =
                answer.hasPrefix("error: ")
                ? String(answer.dropFirst(7))
                : "the supervisor exited early\(last.map { ": " + $0 } ?? "") (see \(paths.log))"
            throw AirlockError(.failed, "cannot start sandbox \(name): \(message)")
        }
        guard let status = paths.loadStatus() else {
            throw AirlockError(.failed, "sandbox \(name) started but wrote no status (see \(paths.log))")
        }
        return status
    }

    // MARK: exec

    /// How to run one command in a sandbox.
    public struct ExecRequest: Sendable {
        public var command: [String]
        public var user: String?
        public var workdir: String?
        public var environment: [String] = []
        public var tty = false
        public var interactive = false

        public init(command: [String]) {
            self.command = command
        }
    }

    /// Runs a command in the sandbox through the runtime's `exec` and returns its exit status.
    ///
    /// The runtime owns the TTY (window size changes reach it directly as the terminal's
    /// foreground process); signals sent to airlock are passed on to it, and it passes them
    /// to the command.
    public func exec(_ name: String, _ request: ExecRequest) throws -> Int32 {
        if let agent = ExecAgentClient.connect(store.sandbox(name)) {
            StepTiming.mark("exec: connected to the exec agent")
            do {
                let process = try execProcess(name, request).process
                StepTiming.mark("exec: the process described")
                return try agent.run(process, interactive: request.interactive)
            } catch let refusal as ExecAgentClient.Refusal where refusal.worthRetryingWithRuntime {
                // Below: the runtime's helper is not held to the sandbox's pids limit (on v2,
                // runc's chain starts in the reserve's leaf, and runc moves the command on).
            } catch let refusal as ExecAgentClient.Refusal {
                throw refusal.failure
            }
        }
        let prepared = try prepareExec(name, request)
        defer { prepared.removeFiles() }
        let forwarded = SignalSet.forwarded
        forwarded.block()
        let files = prepared.driver.kind == .runsc ? GVisorFileOutput.wrapping() : nil
        let child = try ChildProcess.spawn(
            prepared.argv, stdin: request.interactive || request.tty ? .inherit : .null,
            stdout: files?.stdout ?? .inherit, stderr: files?.stderr ?? .inherit)
        files?.started()
        while true {
            if let exited = child.poll() {
                files?.finish()
                if let failure = prepared.failure(status: exited) { throw failure }
                return exited
            }
            guard let signal = forwarded.wait(timeout: 0.05), signal != SIGCHLD else { continue }
            prepared.signal(signal, nsenter: child.pid)
        }
    }

    /// An exec ready to spawn: the command line that enters the sandbox and runs the runtime's
    /// `exec`, and the process file it reads (the caller removes it once the command ends).
    struct PreparedExec {
        var argv: [String]
        var processFile: String
        /// Where the runtime writes the command's pid, as the sandbox init's pid namespace numbers it.
        var pidFile: String
        /// The sandbox init, on the host: every process of the sandbox descends from it.
        var initPID: Int32
        var driver: RuntimeDriver
        /// Where the runtime writes its own errors (JSON lines).
        var logFile: String
        /// The container's id (the sandbox's name).
        var id: String

        /// The command's pid in the sandbox init's namespace, once the runtime has written it.
        func commandPID() -> Int32? {
            (try? Files.read(pidFile)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        /// Why the runtime did not start the command, when `status` is its failure, not the command's.
        func failure(status: Int32) -> ExecFailure? {
            driver.execFailure(status: status, log: Files.readRegularFile(logFile, limit: 1 << 20) ?? "")
        }

        func removeFiles() {
            Files.remove(processFile)
            Files.remove(pidFile)
            Files.remove(RuntimeDriver.guestPIDFile(pidFile))
            Files.remove(logFile)
        }

        /// Passes `signal` on to the command that `nsenter` (the exec's host process) runs.
        /// nsenter forks the runtime into the sandbox's pid namespace and does not pass signals
        /// on; the runtime is its only child, and signalling it is allowed because the sandbox's
        /// user namespace belongs to this user. runc and crun pass it to the command; runsc does
        /// not, so under gVisor it goes to the command by its pid in gVisor's kernel.
        func signal(_ signal: Int32, nsenter: pid_t) {
            guard driver.kind == .runsc else {
                if let runtime = try? Supervisor.onlyChild(of: nsenter) { kill(runtime, signal) }
                return
            }
            guard
                let guest = (try? Files.read(RuntimeDriver.guestPIDFile(pidFile))).flatMap({
                    Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }), let enter = try? Executables.require("nsenter")
            else { return }
            _ = try? ChildProcess.run(
                [enter, "-t", String(initPID), "-U", "-m", "-p", "-n", "--"]
                    + driver.signalArguments(id: id, guestPID: guest, signal: signal))
        }
    }

    /// The process an `exec` runs, as the runtime's `exec` and the exec agent read it, and the
    /// running sandbox's status.
    func execProcess(_ name: String, _ request: ExecRequest) throws -> (
        process: RuntimeSpec.Process, status: RunningStatus, record: SandboxRecord
    ) {
        let record = try record(name)
        let paths = store.sandbox(name)
        guard paths.isRunning, let status = paths.loadStatus() else {
            let hint = record.disposable == nil ? " (start it with: \(Self.startCommand(for: record)))" : ""
            throw AirlockError(.conflict, "sandbox \(name) is not running" + hint)
        }
        let spec = try spec(for: record)
        let account = try resolveUser(request.user ?? spec.user.name, spec: spec)
        if let workdir = request.workdir, !workdir.hasPrefix("/") {
            throw AirlockError(.invalidArgument, "the working directory must be absolute: \(workdir)")
        }
        let environment = try request.environment.map(Self.checkEnvironment)
        let process = spec.execProcess(
            args: request.command, uid: account.uid, gid: account.gid, userName: account.name, home: account.home,
            cwd: request.workdir, tty: request.tty, extraEnvironment: environment)
        return (process, status, record)
    }

    func prepareExec(_ name: String, _ request: ExecRequest) throws -> PreparedExec {
        let (process, status, record) = try execProcess(name, request)
        let paths = store.sandbox(name)
        let json = String(decoding: try JSONEncoder().encode(process), as: UTF8.self)
        // The runtime reads the process from a file; it lives only as long as the command
        // (a start clears any that a killed airlock left).
        try Files.makeDirectory(paths.execDirectory, mode: 0o700)
        let base = paths.execDirectory + "/\(getpid())-\(UUID().uuidString)"
        let processFile = base + ".json"
        try Files.writeAtomically(processFile, json, mode: 0o600)
        let driver = RuntimeDriver(record: record, paths: paths)
        // On v1 runc's exec puts the command in the container's cgroup (which runc made inside
        // the sandbox's): its limits hold for it, and nsenter and runc stay outside, so a
        // sandbox at its pids limit cannot stall them. crun manages no cgroup here and would
        // leave the command in its caller's: the chain joins the sandbox's group on the way in,
        // crun with it (at the pids limit it cannot fork there; the exec agent, which can, goes
        // first). On v2 both runtimes' chains join (see `execJoinPrefix`).
        let join = status.limitsEnforced ? SandboxCgroup(paths).execJoinPrefix(runtime: driver.kind) : []
        let argv =
            join + driver.execPrefix(oomScoreAdj: SandboxSpec.oomScoreAdjustment)
            + [try Executables.require("nsenter"), "-t", String(status.initPID), "-U", "-m", "-p", "-n", "--"]
            + driver.execArguments(
                id: name, processFile: processFile, tty: request.tty, pidFile: base + ".pid", logFile: base + ".log")
        return PreparedExec(
            argv: argv, processFile: processFile, pidFile: base + ".pid", initPID: status.initPID, driver: driver,
            logFile: base + ".log", id: name)
    }

    struct Account {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
    }

    /// Looks a user up in the sandbox's passwd (its upper layer first, where `useradd` writes).
    func resolveUser(_ user: String, spec: SandboxSpec) throws -> Account {
        if user == spec.record.user, let account = spec.record.account {
            return Account(name: user, uid: account.uid, gid: account.gid, home: account.home)
        }
        // The upper layer is the sandbox's to write: read its passwd only if it is a plain,
        // small file (not a symlink to a host file, a FIFO or /dev/zero).
        let passwd =
            Files.readRegularFile(spec.paths.upper + "/etc/passwd", limit: 1 << 20)
            ?? Files.readRegularFile(spec.imageRootfs + "/etc/passwd", limit: 1 << 20) ?? ""
        let numeric = UInt32(user)
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 7, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { continue }
            if fields[0] == user || uid == numeric {
                return Account(name: fields[0], uid: uid, gid: gid, home: fields[5])
            }
        }
        if let numeric { return Account(name: user, uid: numeric, gid: numeric, home: "/") }
        throw AirlockError(.notFound, "no user '\(user)' in sandbox \(spec.record.name)")
    }

    /// Holds a stopped sandbox's lock, which keeps `start`, `rm` and other readers out while
    /// its files are `what` (copied, saved); a running one is refused, its files being in use.
    func lockStopped(_ name: String, for what: String) throws -> FileLock {
        let paths = store.sandbox(name)
        let lock = try FileLock(path: paths.lock)
        try lock.acquire(timeout: 30, what: "sandbox \(name)")
        guard !paths.isRunning else {
            lock.release()
            throw AirlockError(
                .busy,
                "sandbox \(name) is running: stop it first (`airlock stop \(name)`), so its files are still while they are \(what)"
            )
        }
        return lock
    }

    // MARK: stop and remove

    /// Stops the sandbox: its processes end, its files stay. With `kill`, at once (SIGKILL to
    /// the supervisor, whose sandbox dies with it), as for a removal.
    public func stop(_ name: String, timeout: Double? = nil, kill immediately: Bool = false) throws {
        let record = try record(name)
        let paths = store.sandbox(name)
        guard paths.isRunning else { return }
        guard let status = paths.loadStatus() else {
            throw AirlockError(.busy, "sandbox \(name) is starting; try again")
        }
        // The supervisor's own deadline, and a little more.
        let timeout = timeout ?? SandboxInit.stopGrace(docker: record.docker == true) + 10
        kill(status.supervisorPID, immediately ? SIGKILL : SIGTERM)
        let deadline = Monotonic.now() + timeout
        while paths.isRunning {
            if Monotonic.now() > deadline {
                kill(status.supervisorPID, SIGKILL)
                usleep(200_000)
                break
            }
            usleep(20_000)
        }
        Files.remove(paths.status)
    }

    /// Removes the sandbox and everything it wrote outside the workspace.
    public func remove(_ name: String, force: Bool) throws {
        _ = try record(name)
        let paths = store.sandbox(name)
        // Holding the lock keeps `start` out between the running check and the removal.
        let lock = try FileLock(path: paths.lock)
        try lock.acquire(timeout: 60, what: "sandbox \(name)")
        if paths.isRunning {
            guard force else {
                throw AirlockError(.conflict, "sandbox \(name) is running (stop it first, or use rm -f)")
            }
            try stop(name, kill: true)
        }
        // What a killed supervisor could not remove: the guard's directories in the workspace
        // and the sandbox's cgroup.
        HostPersistenceGuard.removeMade(listedIn: paths.guardMade)
        SandboxCgroup(store.sandbox(name)).release()
        // The upper layer holds files owned by the sandbox's ids: delete from inside its namespace.
        let namespace = try UserNamespace(identity: try SandboxIdentity.current())
        defer { namespace.close() }
        if let record = try? paths.loadRecord(), record.clone == true {
            GitClone(workspace: record.workspace, paths: paths, name: name).removeRemote()
        }
        try store.removeSandboxFiles(name, namespace: namespace, along: abandonedRemovals())
    }

    /// What an `rm` that was killed half-way left: `.removing-NAME-PID` of a process now gone
    /// (see ``StateStore/removeSandboxFiles(_:namespace:along:)``).
    func abandonedRemovals() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: store.sandboxesDirectory)) ?? []
        return entries.filter { entry in
            guard entry.hasPrefix(".removing-"), let pid = entry.split(separator: "-").last.flatMap({ pid_t($0) })
            else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }.map { store.sandboxesDirectory + "/" + $0 }
    }
}

extension StateStore {
    /// Deletes a sandbox's directory from inside its user namespace (which owns the upper
    /// layer's files), with `along`. Moved aside to `.removing-NAME-PID` first, so a removal cut
    /// short never looks like a sandbox and the next `rm` or sweep finishes it.
    func removeSandboxFiles(_ name: String, namespace: UserNamespace, along: [String] = []) throws {
        let directory = sandbox(name).directory
        let doomed = sandboxesDirectory + "/.removing-" + name + "-\(getpid())"
        guard rename(directory, doomed) == 0 else { throw SystemCallError("rename \(directory)", errno: errno) }
        try namespace.removeTree([doomed] + along)
    }
}
