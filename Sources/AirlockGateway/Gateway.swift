import AirlockEgress
import AirlockMCP
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// How the gateway was started (`airlock mcp gateway run` flags).
public struct GatewayOptions: Sendable {
    /// `--servers`: exactly these, and no dynamic tools. Nil: the dynamic tools manage the set.
    public var servers: [String]?
    /// Servers enabled at start when `servers` is nil (`--profile`), and their settings.
    public var initialServers: [String] = []
    public var initialConfig: [String: [String: JSONValue]] = [:]
    /// `--tools SERVER:TOOL|SERVER:*`: only these tools are offered (empty: all).
    public var toolFilter: [String] = []
    /// `--long-lived`: every server stays up for the gateway's whole life.
    public var longLived = false
    /// Mounted into servers whose catalog entry asks for the workspace.
    public var workspace: String?
    /// `--log-calls`: one JSON line per tool call goes here.
    public var callLog: (@Sendable (String) -> Void)?
    /// `--block-secrets`: calls whose arguments hold a stored secret are refused, and results
    /// that hold one have it replaced.
    public var blockSecrets = false
    /// False for a sandbox's own gateway (`--mcp`): its client, the sandboxed agent, may not
    /// write profiles to the host (`mcp-create-profile`), which later gateways would start from.
    public var profileWrites = true
    /// `--isolation`: the tier of every server's sandbox (a catalog entry may ask for gVisor on
    /// its own); nil: each entry's, else the user's default.
    public var isolation: Isolation?

    public init() {}

    public var dynamic: Bool { servers == nil }
}

/// The MCP gateway: one MCP endpoint for many servers, each in a sandbox of its own.
///
/// It offers the union of the enabled servers' tools, prompts and resources, renaming where
/// two would clash (and saying so), and routes each call to its server, starting the server
/// when it is not running: after a crash the next call gets a fresh one. Unless `--servers`
/// pins the set, its own dynamic tools (`mcp-find`, `mcp-add`, ...) let the client change it,
/// and every client hears `notifications/tools/list_changed`.
public actor Gateway {
    let sandboxes: Sandboxes
    var catalog: ServerCatalog
    let options: GatewayOptions
    let secrets: MCPSecrets
    let profiles: MCPProfiles
    let log: @Sendable (String) -> Void
    let owner: ProcessIdentity

    /// Enabled servers, in the order they were enabled.
    var enabled: [String] = []
    /// Settings given with `mcp-config-set`, per server.
    var configs: [String: [String: JSONValue]] = [:]
    var running: [String: ServerConnection] = [:]
    var starting: [String: Task<ServerConnection, any Error>] = [:]
    /// What each server offered when it last ran (kept while it is stopped).
    var offered: [String: Offer] = [:]
    /// Exposed tool name to its server and the server's own name for it.
    var toolRoutes: [String: (server: String, tool: String)] = [:]
    var promptRoutes: [String: (server: String, prompt: String)] = [:]
    var resourceRoutes: [String: String] = [:]
    var toolListing: [JSONValue] = []
    /// Name clashes found the last time the listing was built, as sentences.
    public private(set) var collisions: [String] = []
    /// Tools made by `code-mode`, by their exposed name.
    var codeModes: [String: CodeMode] = [:]
    /// Clients to notify, by session.
    var clients: [UUID: MCPStdio.Send] = [:]
    var stopped = false
    var started = false
    /// `--block-secrets`: the stored values, and the files' stamps when they were read.
    var secretCache: (stamp: [String: FileStamp?], values: [(name: String, value: String)])?
    var startWaiters: [CheckedContinuation<Void, Never>] = []

    struct Offer {
        var tools: [JSONValue]
        var prompts: [JSONValue]
        var resources: [JSONValue]
    }

    public init(
        sandboxes: Sandboxes, catalog: ServerCatalog, options: GatewayOptions, secrets: MCPSecrets,
        profiles: MCPProfiles, log: @escaping @Sendable (String) -> Void
    ) throws {
        self.sandboxes = sandboxes
        self.catalog = catalog
        self.options = options
        self.secrets = secrets
        self.profiles = profiles
        self.log = log
        self.owner = try ProcessIdentity.current()
    }

    // MARK: lifecycle

    /// Enables the starting set and starts each server (together) to learn what it offers; they
    /// keep running for the first client, and those not long-lived stop when the last leaves.
    public func start() async throws {
        defer {
            started = true
            for waiter in startWaiters { waiter.resume() }
            startWaiters.removeAll()
        }
        let names = options.servers ?? options.initialServers
        for name in names { _ = try catalog.find(name) }
        for (name, config) in options.initialConfig where !config.isEmpty {
            try checkConfig(config, of: try catalog.find(name))
            configs[name] = config
        }
        enabled = names
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask {
                    do {
                        _ = try await self.connection(name)
                    } catch let error as JSONRPCError where error.code == RemoteTransport.oauthRequiredCode {
                        // The others start; this one's calls give the error that names the fix.
                        self.log(error.message)
                    }
                }
            }
            try await group.waitForAll()
        }
        rebuildListing()
    }

    /// Returns once ``start()`` has finished (at once if it has): a client that connects while
    /// the servers start gets the whole list.
    public func waitUntilStarted() async {
        guard !started else { return }
        await withCheckedContinuation { startWaiters.append($0) }
    }

    /// Stops every server and removes its sandbox.
    public func shutdown() async {
        stopped = true
        for task in starting.values { _ = try? await task.value }
        for name in Array(running.keys) { await stopServer(name) }
    }

    func keepsRunning(_ name: String) -> Bool {
        options.longLived || catalog.servers[name]?.longLived == true || !clients.isEmpty
    }

    /// The running server, starting it if needed; concurrent callers share one start.
    func connection(_ name: String) async throws -> ServerConnection {
        if let connection = running[name], !connection.client.isClosed { return connection }
        if let task = starting[name] { return try await task.value }
        if let dead = running.removeValue(forKey: name) { await blocking { dead.stop() } }
        guard !stopped else { throw AirlockError(.conflict, "the gateway is stopping") }
        let server = try catalog.find(name)
        if server.oauthSecret != nil {
            // Its token, renewed first if due; none: the tool error that names the fix.
            if case .failure(let reason) = await OAuthTokens(secrets: secrets).current(name) {
                throw JSONRPCError(code: RemoteTransport.oauthRequiredCode, message: reason.message(server: name))
            }
        }
        var ownSecrets: [String: String] = [:]
        for name in secrets.names() where Self.owns(server.name, secret: name, servers: Array(catalog.servers.keys)) {
            ownSecrets[name] = try secrets.value(name)
        }
        let launch = ServerConnection.Launch(
            environment: try environment(for: server, secrets: ownSecrets),
            credentials: credentials(for: server, secrets: ownSecrets),
            workspace: options.workspace, owner: owner, secrets: ownSecrets, isolation: options.isolation,
            oauth: OAuthTokens(secrets: secrets),
            onNotification: { [weak self] message in
                guard let self else { return }
                Task { await self.serverNotified(name, message) }
            })
        let sandboxes = self.sandboxes
        let log = self.log
        let task = Task {
            log("starting \(name)")
            let started = Monotonic.now()
            let connection = try await ServerConnection.start(server, launch: launch, sandboxes: sandboxes)
            log(
                String(
                    format: "%@ ready: %d tools (%.0f ms)", name, connection.tools.count,
                    (Monotonic.now() - started) * 1000))
            return connection
        }
        starting[name] = task
        defer { starting[name] = nil }
        let connection = try await task.value
        guard !stopped, enabled.contains(name) else {
            await blocking { connection.stop() }
            throw AirlockError(.conflict, "server \(name) was removed while it started")
        }
        running[name] = connection
        record(Offer(tools: connection.tools, prompts: connection.prompts, resources: connection.resources), of: name)
        return connection
    }

    /// Keeps what a server offers; a restarted server that offers something else now makes
    /// clients list again.
    func record(_ offer: Offer, of name: String) {
        let previous = offered.updateValue(offer, forKey: name)
        if let previous, previous.tools != offer.tools || previous.prompts != offer.prompts { listChanged() }
    }

    func stopServer(_ name: String) async {
        guard let connection = running.removeValue(forKey: name) else { return }
        await blocking { connection.stop() }
        log("stopped \(name)")
    }

    /// The server's environment: its catalog `env` (with `{{server.key}}` filled from its
    /// config) and its own secrets (`secrets`: theirs, read once per start), no other server's.
    func environment(for server: CatalogServer, secrets: [String: String]) throws -> [String] {
        var environment: [String] = []
        let config = configs[server.name] ?? [:]
        for entry in server.env {
            environment.append(entry.name + "=" + Self.fill(entry.value, server: server.name, config: config))
        }
        for secret in server.runSecrets {
            guard let value = secrets[secret.name] else {
                throw AirlockError(
                    .notFound,
                    "server \(server.name) needs the secret \(secret.name): set it with `airlock mcp secret set \(secret.name)`"
                )
            }
            environment.append(secret.env + "=" + (secret.inject == nil ? value : credentialSentinel))
        }
        return environment
    }

    /// The secrets the server's proxy injects, with their values.
    func credentials(for server: CatalogServer, secrets: [String: String]) -> [Credential] {
        server.runSecrets.compactMap { secret in
            guard let inject = secret.inject, let value = secrets[secret.name] else { return nil }
            let service = CredentialService(
                name: secret.name, variables: [secret.env], hosts: server.injectionHosts(secret), header: inject.header)
            return Credential(service: service, value: value)
        }
    }

    /// `{{server.key}}` placeholders replaced by config values (empty when unset).
    static func fill(_ text: String, server: String, config: [String: JSONValue]) -> String {
        Placeholders.replace(in: text, opening: "{{") { inner in
            let key = inner.trimmingCharacters(in: .whitespaces)
            let field = key.hasPrefix(server + ".") ? String(key.dropFirst(server.count + 1)) : key
            return config[field].map { $0.stringValue ?? $0.text() } ?? ""
        }
    }

    // MARK: clients

    /// A client session begins: it hears list changes until it ends.
    public func attach(_ send: @escaping MCPStdio.Send) -> UUID {
        let id = UUID()
        clients[id] = send
        return id
    }

    public func detach(_ id: UUID) async {
        clients[id] = nil
        guard clients.isEmpty else { return }
        // Servers that live for a client session end with the last one.
        for name in Array(running.keys) where !keepsRunning(name) { await stopServer(name) }
    }

    func listChanged() {
        rebuildListing()
        let note = JSONRPCMessage(method: "notifications/tools/list_changed")
        for send in clients.values { _ = send(note) }
    }

    func serverNotified(_ name: String, _ message: JSONRPCMessage) async {
        guard message.method == "notifications/tools/list_changed", let connection = running[name] else { return }
        // Ask again: the list the server now has replaces the one it gave at start.
        guard let tools = try? await connection.client.listTools() else { return }
        offered[name]?.tools = tools
        listChanged()
    }

    // MARK: the listing

    /// Recomputes what clients see: tool and prompt names (see ``exposedNames``), the resources
    /// each server serves, and the clashes, which are reported.
    func rebuildListing() {
        var tools: [(server: String, name: String, item: JSONValue)] = []
        var prompts: [(server: String, name: String, item: JSONValue)] = []
        for server in enabled {
            for tool in offered[server]?.tools ?? [] {
                guard let name = tool["name"]?.stringValue, allowed(server: server, tool: name) else { continue }
                tools.append((server, name, tool))
            }
            for prompt in offered[server]?.prompts ?? [] {
                guard let name = prompt["name"]?.stringValue else { continue }
                prompts.append((server, name, prompt))
            }
        }
        let reserved = Set(options.dynamic ? DynamicTools.names : [])
        let toolNames = exposedNames(tools.map { ($0.server, $0.name) }, kind: "tool", reserved: reserved)
        let promptNames = exposedNames(prompts.map { ($0.server, $0.name) }, kind: "prompt", reserved: [])
        toolRoutes = [:]
        toolListing = options.dynamic ? DynamicTools.listing(profileWrites: options.profileWrites) : []
        for (tool, exposed) in zip(tools, toolNames.names) {
            toolRoutes[exposed] = (tool.server, tool.name)
            guard case .object(var object) = tool.item else { continue }
            object["name"] = .string(exposed)
            toolListing.append(.object(object))
        }
        for mode in codeModes.values.sorted(by: { $0.name < $1.name }) {
            let tools = toolListing.filter { tool in
                tool["name"]?.stringValue.flatMap { toolRoutes[$0] }.map { mode.servers.contains($0.server) } ?? false
            }
            toolListing.append(mode.listing(tools: tools))
        }
        promptRoutes = [:]
        for (prompt, exposed) in zip(prompts, promptNames.names) {
            promptRoutes[exposed] = (prompt.server, prompt.name)
        }
        // A URI names one thing: the first server to offer it serves it, and a clash is reported.
        resourceRoutes = [:]
        var resourceClashes: [String] = []
        for server in enabled {
            for resource in offered[server]?.resources ?? [] {
                guard let uri = resource["uri"]?.stringValue else { continue }
                if let first = resourceRoutes[uri] {
                    resourceClashes.append("resource '\(uri)' is offered by \(first) and \(server): \(first) serves it")
                } else {
                    resourceRoutes[uri] = server
                }
            }
        }
        collisions = toolNames.clashes + promptNames.clashes + resourceClashes
        for collision in collisions { log("name clash: " + collision) }
    }

    /// The names clients see for one kind of item, in order: the server's catalog `prefix`
    /// (`prefix__name`) when it has one, and `server__name` on every side of a name offered
    /// more than once or reserved by the gateway; each clash as a sentence.
    private func exposedNames(
        _ items: [(server: String, name: String)], kind: String, reserved: Set<String>
    ) -> (names: [String], clashes: [String]) {
        var names = items.map { item in catalog.servers[item.server]?.prefix.map { "\($0)__\(item.name)" } ?? item.name
        }
        var counts: [String: Int] = [:]
        for name in names { counts[name, default: 0] += 1 }
        var clashing: [String: [(server: String, renamed: String)]] = [:]
        for index in names.indices where counts[names[index], default: 0] > 1 || reserved.contains(names[index]) {
            let renamed = items[index].server + "__" + items[index].name
            clashing[names[index], default: []].append((items[index].server, renamed))
            names[index] = renamed
        }
        let clashes = clashing.keys.sorted().map { name in
            let servers = clashing[name, default: []].map(\.server)
            let renamed = clashing[name, default: []].map(\.renamed).joined(separator: ", ")
            return reserved.contains(name)
                ? "\(kind) '\(name)' of \(servers.joined(separator: ", ")) is the name of a gateway tool: offered as \(renamed)"
                : "\(kind) '\(name)' is offered by \(servers.joined(separator: " and ")): offered as \(renamed)"
        }
        return (names, clashes)
    }

    func allowed(server: String, tool: String) -> Bool {
        options.toolFilter.isEmpty
            || options.toolFilter.contains { $0 == "\(server):\(tool)" || $0 == "\(server):*" }
    }

    public func tools() -> [JSONValue] { toolListing }

    public func prompts() -> [JSONValue] {
        promptRoutes.keys.sorted().compactMap { exposed in
            guard let route = promptRoutes[exposed],
                case .object(var object)? = offered[route.server]?.prompts.first(where: {
                    $0["name"]?.stringValue == route.prompt
                })
            else { return nil }
            object["name"] = .string(exposed)
            return .object(object)
        }
    }

    public func resources() -> [JSONValue] {
        enabled.flatMap { server in
            (offered[server]?.resources ?? []).filter {
                $0["uri"]?.stringValue.flatMap { resourceRoutes[$0] } == server
            }
        }
    }

    // MARK: calls

    /// A `tools/call` from a client: a gateway tool, or a server's tool by its exposed name;
    /// checked for secrets and logged as the options say.
    public func call(_ name: String, arguments: [String: JSONValue], client: String = "") async -> ToolResult {
        let started = Monotonic.now()
        var result: ToolResult
        var outcome = "ok"
        let secrets = options.blockSecrets ? SecretScreen(values: storedSecrets()) : nil
        if let secrets, let found = secrets.firstMatch(in: .object(arguments)) {
            result = .error("blocked: the arguments hold the value of the stored secret \(found)")
            outcome = "blocked"
        } else {
            result = await dispatch(name, arguments: arguments)
            if result.isError { outcome = "error" }
            if let secrets, secrets.redact(&result) { outcome += ",redacted" }
        }
        if let callLog = options.callLog {
            let duration = Monotonic.now() - started
            let entry: JSONValue = [
                "time": .string(Date().formatted(.iso8601)), "client": .string(client),
                "server": .string(
                    toolRoutes[name]?.server ?? (name.hasPrefix(CodeMode.prefix) ? "code-mode" : "gateway")),
                "tool": .string(toolRoutes[name]?.tool ?? name),
                "arguments": .array(arguments.keys.sorted().map { .string($0) }),
                "duration_ms": .double((duration * 10_000).rounded() / 10),
                "outcome": .string(outcome),
            ]
            callLog(entry.text())
        }
        return result
    }

    /// Values of the MCP servers' secrets and of Airlock's stored API keys.
    /// Read again only when a secret was set or removed: each is written by rename, so a
    /// file's stamp (its inode) changes even within one tick of the clock.
    func storedSecrets() -> [(name: String, value: String)] {
        let store = SecretStore(store: sandboxes.store)
        let stamp = FileStamp.contents(of: [secrets.directory, store.directory])
        if let cached = secretCache, cached.stamp == stamp { return cached.values }
        let mcp = secrets.names().compactMap { name in (try? secrets.value(name)).flatMap { $0 }.map { (name, $0) } }
        let keys = store.names().compactMap { name in (try? store.load(name)).map { (name, $0.value) } }
        secretCache = (stamp, mcp + keys)
        return mcp + keys
    }

    func dispatch(_ name: String, arguments: [String: JSONValue]) async -> ToolResult {
        if options.dynamic, DynamicTools.names.contains(name) {
            return await DynamicTools.call(name, arguments: ToolArguments(arguments), gateway: self)
        }
        if let mode = codeModes[name] {
            guard let script = arguments["script"]?.stringValue else { return .error("missing argument 'script'") }
            let allowed = toolRoutes.filter { mode.servers.contains($0.value.server) }.map(\.key).sorted()
            return await mode.run(
                script: script, allowed: allowed, sandboxes: sandboxes, owner: owner,
                call: { tool, arguments in await self.call(tool, arguments: arguments, client: name) })
        }
        guard let route = toolRoutes[name] else {
            return .error("unknown tool '\(name)'; tools/list has the current set")
        }
        return await callServer(route.server, tool: route.tool, arguments: arguments)
    }

    func callServer(_ server: String, tool: String, arguments: [String: JSONValue]) async -> ToolResult {
        await restartForOAuth(server)
        let connection: ServerConnection
        do {
            connection = try await self.connection(server)
        } catch let error as JSONRPCError where error.code == RemoteTransport.oauthRequiredCode {
            return .error(error.message)
        } catch {
            return .error("server \(server) could not start: \(error)")
        }
        do {
            let result = try await connection.client.callTool(tool, arguments: arguments)
            return ToolResult(
                content: result["content"]?.arrayValue ?? [], structuredContent: result["structuredContent"],
                isError: result["isError"]?.boolValue ?? false)
        } catch let error as JSONRPCError where error.code == RemoteTransport.oauthRequiredCode {
            return .error(error.message)
        } catch let error as JSONRPCError {
            return .error("\(server) refused the call: \(error.message)")
        } catch {
            // The server died under the call: drop it, so the next call starts a fresh one.
            let tail = connection.stderrTail
            if running[server] === connection { running[server] = nil }
            await blocking { connection.stop() }
            log("\(server) ended during a call to \(tool)")
            return .error(
                "server \(server) ended during the call (\(error)); it is started again on the next call"
                    + (tail.isEmpty ? "" : ". Its last output: \(tail)"))
        }
    }

    /// Whether secret `name` is `server`'s: named `SERVER.KEY`, and not the secret of another
    /// server whose name is longer (`ev.sub.KEY` is `ev.sub`'s, not `ev`'s), nor another's token.
    static func owns(_ server: String, secret name: String, servers: [String]) -> Bool {
        guard name.hasPrefix(server + ".") else { return false }
        if name.hasSuffix(".oauth_token") && name != server + ".oauth_token" { return false }
        return !servers.contains { $0 != server && $0.hasPrefix(server + ".") && name.hasPrefix($0 + ".") }
    }

    /// A sandboxed server's proxy holds the token it started with: when that token is due for
    /// renewal, or was revoked, the server stops, so that the call starts it again with the
    /// renewed token (or gets the tool error).
    func restartForOAuth(_ name: String) async {
        guard running[name] != nil, catalog.servers[name]?.oauthSecret != nil else { return }
        let grant = OAuthTokens(secrets: secrets).grant(name)
        let now = Date()
        guard grant?.status != .ok || grant?.needsRenewal(at: now) == true || grant?.expired(at: now) == true else {
            return
        }
        log("\(name): its OAuth token is due or gone: the server starts again for this call")
        await stopServer(name)
    }

    /// `prompts/get` and `resources/read`, passed to the server that offered them.
    public func forward(_ method: String, params: JSONValue?) async throws -> JSONValue {
        var params = params?.objectValue ?? [:]
        let server: String
        switch method {
        case "prompts/get":
            guard let name = params["name"]?.stringValue, let route = promptRoutes[name] else {
                throw JSONRPCError.invalidParams("unknown prompt")
            }
            server = route.server
            params["name"] = .string(route.prompt)
        default:
            guard let uri = params["uri"]?.stringValue, let owner = resourceRoutes[uri] else {
                throw JSONRPCError.invalidParams("unknown resource")
            }
            server = owner
        }
        return try await connection(server).client.request(method, params: .object(params))
    }

    // MARK: changing the set (the dynamic tools)

    func enable(_ name: String) async throws -> ServerConnection {
        let server = try catalog.find(name)
        if !enabled.contains(name) { enabled.append(name) }
        do {
            let connection = try await self.connection(server.name)
            listChanged()
            if !keepsRunning(name) { await stopServer(name) }
            return connection
        } catch {
            enabled.removeAll { $0 == name }
            throw error
        }
    }

    func disable(_ name: String) async -> Bool {
        guard enabled.contains(name) else { return false }
        enabled.removeAll { $0 == name }
        offered[name] = nil
        await stopServer(name)
        listChanged()
        return true
    }

    func setConfig(_ name: String, _ config: [String: JSONValue]) async throws {
        try checkConfig(config, of: try catalog.find(name))
        configs[name] = config
        // A running server restarts with the new settings at its next call.
        await stopServer(name)
    }

    /// Makes (or remakes) the tool `code-mode-NAME` over the tools of `servers`.
    func addCodeMode(name: String, servers: [String]) throws -> String {
        guard name.wholeMatch(of: /[A-Za-z0-9_-]{1,48}/) != nil else {
            throw AirlockError(.invalidArgument, "the name must be 1 to 48 letters, digits, '_' or '-'")
        }
        guard !servers.isEmpty else { throw AirlockError(.invalidArgument, "name at least one server") }
        for server in servers where !enabled.contains(server) {
            throw AirlockError(.invalidArgument, "server \(server) is not enabled (mcp-add it first)")
        }
        let mode = CodeMode(name: name, servers: servers)
        codeModes[mode.toolName] = mode
        listChanged()
        return mode.toolName
    }

    /// Enables a server with what it offers, without starting it (a catalog's static list).
    func enableForListing(_ name: String, offer: Offer) {
        if !enabled.contains(name) { enabled.append(name) }
        offered[name] = offer
        rebuildListing()
    }

    func checkConfig(_ config: [String: JSONValue], of server: CatalogServer) throws {
        guard let schema = server.configSchema else { return }
        let problems = JSONSchemaCheck.problems(.object(config), against: schema)
        guard problems.isEmpty else {
            throw AirlockError(
                .invalidArgument,
                "config for \(server.name) does not match its schema: \(problems.joined(separator: "; "))")
        }
    }

    func enabledServers() -> [String] { enabled }
    func config(of name: String) -> [String: JSONValue] { configs[name] ?? [:] }
    func catalogServers() -> [CatalogServer] { catalog.servers.values.sorted { $0.name < $1.name } }
    func offeredTools(_ name: String) -> [String] {
        toolRoutes.filter { $0.value.server == name }.map(\.key).sorted()
    }
}

/// Runs blocking work (process and sandbox handling) on a thread of its own.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

func blocking(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            work()
            continuation.resume()
        }
    }
}

/// `{{...}}` placeholders in catalog values. The text is read once, front to back: what a
/// placeholder is replaced with is never read again, so a value that holds `{{...}}` itself
/// (a setting a client chose) stays as it is.
enum Placeholders {
    static func replace(
        in text: String, opening: String, with value: (String) throws -> String
    ) rethrows -> String {
        var result = ""
        var rest = text[...]
        while let open = rest.range(of: opening),
            let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            result += rest[..<open.lowerBound]
            result += try value(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}
