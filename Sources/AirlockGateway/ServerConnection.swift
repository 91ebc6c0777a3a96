import AirlockEgress
import AirlockMCP
import AirlockMCPAuth
import AirlockPolicy
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// One catalog server, running: its sandbox, the command in it and the MCP session with it.
///
/// A `server` runs in a disposable sandbox of its own, owned by the gateway's process: when the
/// gateway ends in any way, the sandbox's supervisor removes it. An `airlock` server is one of
/// Airlock's own, run on the host, which sandboxes what it runs itself.
final class ServerConnection: Sendable {
    let server: CatalogServer
    let client: MCPClient
    let info: MCPClient.ServerInfo
    let tools: [JSONValue]
    let prompts: [JSONValue]
    let resources: [JSONValue]
    private let sandbox: String?
    private let process: BackgroundProcess?
    private let hostProcess: ChildProcess?
    private let sandboxes: Sandboxes

    static let handshakeTimeout: Double = 60

    /// What a server is started with, beyond its catalog entry.
    struct Launch: Sendable {
        var environment: [String]
        /// Secrets its proxy injects.
        var credentials: [Credential] = []
        var workspace: String?
        var owner: ProcessIdentity
        /// The server's own secrets, by name, for `{{secret:NAME}}` in a remote's headers.
        var secrets: [String: String] = [:]
        /// The gateway's `--isolation`.
        var isolation: Isolation?
        /// Where the servers' OAuth grants are.
        var oauth: OAuthTokens?
        var onNotification: MCPClient.NotificationHandler
    }

    /// Starts the server and completes the MCP handshake; blocks (call it off the actor).
    static func start(_ server: CatalogServer, launch: Launch, sandboxes: Sandboxes) async throws -> ServerConnection {
        switch server.type {
        case "airlock":
            let input = try Pipe2()
            let output = try Pipe2()
            let child = try ChildProcess.spawn(
                [Executables.current] + server.command, stdin: .fd(input.read), stdout: .fd(output.write),
                stderr: .null)
            input.closeRead()
            output.closeWrite()
            let client = MCPClient(
                reading: output.takeRead(), writing: input.takeWrite(), onNotification: launch.onNotification)
            return try await handshake(
                server, client: client, sandbox: nil, process: nil, hostProcess: child, sandboxes: sandboxes)
        case "server":
            // Making and starting the sandbox block: on a thread of their own.
            let request = try disposableRequest(server, launch: launch)
            let (name, process) = try await blocking {
                try sandboxes.startDisposableStdio(
                    request, command: server.command, environment: launch.environment, outputLimit: 64 << 10)
            }
            guard let stdio = process.stdio else { throw AirlockError(.failed, "no stdio for \(server.name)") }
            let client = MCPClient(reading: stdio.output, writing: stdio.input, onNotification: launch.onNotification)
            return try await handshake(
                server, client: client, sandbox: name, process: process, hostProcess: nil, sandboxes: sandboxes)
        case "remote":
            guard let remote = server.remote else {
                throw AirlockError(.invalidArgument, "server \(server.name) has no remote.url")
            }
            var headers: [String: String] = [:]
            for (name, value) in remote.headers ?? [:] {
                headers[name] = try Self.fillSecrets(value, server: server, secrets: launch.secrets)
            }
            // A server with an OAuth grant gets its token, renewed as needed, on every request.
            var source: RemoteTransport.TokenSource?
            if let tokens = launch.oauth, let grant = tokens.grant(server.name) {
                let name = server.name
                // A grant is for the URL it was issued for: a catalog that names another URL
                // for the server (a later file, an edit) does not get the token.
                let issuedFor = grant.resource ?? grant.serverURL ?? ""
                let matches =
                    URL(string: remote.url).map {
                        MetadataDiscovery.resourceMatches(advertised: issuedFor, server: $0)
                    } ?? false
                source = { @Sendable force in
                    guard matches else { return .failure(.otherResource(issuedFor)) }
                    return await tokens.current(name, force: force)
                }
            }
            let client = MCPClient(
                transport: try RemoteTransport(url: remote.url, headers: headers, server: server.name, token: source),
                onNotification: launch.onNotification)
            return try await handshake(
                server, client: client, sandbox: nil, process: nil, hostProcess: nil, sandboxes: sandboxes)
        default:
            throw AirlockError(
                .invalidArgument, "server \(server.name): type '\(server.type)' is not server, remote or airlock")
        }
    }

    /// `{{secret:NAME}}` in a remote server's header replaced by that secret (its own only).
    static func fillSecrets(_ text: String, server: CatalogServer, secrets: [String: String]) throws -> String {
        try Placeholders.replace(in: text, opening: "{{secret:") { name in
            guard let value = secrets[name] else {
                throw AirlockError(
                    .notFound,
                    "server \(server.name) needs the secret \(name): set it with `airlock mcp secret set \(name)`")
            }
            return value
        }
    }

    /// The sandbox a server runs in: its template, reach, limits and mounts.
    private static func disposableRequest(_ server: CatalogServer, launch: Launch) throws -> DisposableRequest {
        var limits = SandboxRecord.Limits(cpus: server.cpus ?? 1, pids: server.pids ?? 256)
        limits.memoryBytes = try server.memory.map(Sandboxes.parseBytes) ?? (1 << 30)
        var request = DisposableRequest(
            label: "mcp-" + server.name, template: server.template ?? "",
            network: server.disableNetwork ? .none : .policy,
            limits: limits, diskBytes: 256 << 20, owner: launch.owner)
        if server.template == nil {
            request.image = server.image
            request.imageUser = server.user
        }
        request.policy.allowCIDRs = server.allowCIDRs
        request.credentials = launch.credentials
        request.isolation = Isolation.stronger(server.isolation.flatMap(Isolation.init(rawValue:)), launch.isolation)
        if !server.allowHosts.isEmpty {
            // Exactly these hosts: the locked preset allows nothing else, and the user's policy
            // may narrow but not widen them.
            request.policy.preset = .locked
            request.policy.allowHosts = server.allowHosts
            request.ownPolicyOnly = true
        }
        if let mode = server.workspace {
            guard let workspace = launch.workspace else {
                throw AirlockError(.invalidArgument, "server \(server.name) mounts the workspace, and there is none")
            }
            request.mounts = [
                .init(source: workspace, destination: Sandboxes.disposableWorkspace, readOnly: mode != "rw")
            ]
        }
        return request
    }

    private static func handshake(
        _ server: CatalogServer, client: MCPClient, sandbox: String?, process: BackgroundProcess?,
        hostProcess: ChildProcess?, sandboxes: Sandboxes
    ) async throws -> ServerConnection {
        // A server that never answers must not hold the gateway's start or an mcp-add forever.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(Self.handshakeTimeout))
            client.close(reason: "no answer to initialize within \(Int(Self.handshakeTimeout)) s")
        }
        defer { watchdog.cancel() }
        do {
            let info = try await client.initialize(clientName: "airlock-gateway", version: AirlockVersion.string)
            let tools = info.capabilities["tools"] == nil ? [] : try await client.listTools()
            let prompts =
                info.capabilities["prompts"] == nil ? [] : try await client.list("prompts/list", key: "prompts")
            let resources =
                info.capabilities["resources"] == nil ? [] : try await client.list("resources/list", key: "resources")
            return ServerConnection(
                server: server, client: client, info: info, tools: tools, prompts: prompts, resources: resources,
                sandbox: sandbox, process: process, hostProcess: hostProcess, sandboxes: sandboxes)
        } catch let error as JSONRPCError where error.code == RemoteTransport.oauthRequiredCode {
            // The tool error names the fix itself: it reaches the agent as it is.
            client.close(reason: "the handshake failed")
            throw error
        } catch {
            client.close(reason: "the handshake failed")
            var detail = process.map { String(decoding: $0.logs().stderr.bytes.suffix(400), as: UTF8.self) } ?? ""
            // Its output may end before its last words are read (gVisor writes them through a
            // file): up to a second for them, on this failure path only.
            if let process {
                for _ in 0..<20 where detail.isEmpty {
                    try? await Task.sleep(for: .milliseconds(50))
                    detail = String(decoding: process.logs().stderr.bytes.suffix(400), as: UTF8.self)
                }
            }
            await blocking {
                process?.kill()
                if let hostProcess {
                    kill(hostProcess.pid, SIGKILL)
                    hostProcess.wait()
                }
                if let sandbox { try? sandboxes.remove(sandbox, force: true) }
            }
            let tail = detail.trimmingCharacters(in: .whitespacesAndNewlines)
            throw AirlockError(
                .failed,
                "server \(server.name) did not start: \(error)" + (tail.isEmpty ? "" : " (its stderr: \(tail))"))
        }
    }

    private init(
        server: CatalogServer, client: MCPClient, info: MCPClient.ServerInfo, tools: [JSONValue], prompts: [JSONValue],
        resources: [JSONValue], sandbox: String?, process: BackgroundProcess?, hostProcess: ChildProcess?,
        sandboxes: Sandboxes
    ) {
        self.server = server
        self.client = client
        self.info = info
        self.tools = tools
        self.prompts = prompts
        self.resources = resources
        self.sandbox = sandbox
        self.process = process
        self.hostProcess = hostProcess
        self.sandboxes = sandboxes
    }

    /// The last of what the server wrote to stderr, for an error message.
    var stderrTail: String {
        guard let process else { return "" }
        return String(decoding: process.logs().stderr.bytes.suffix(400), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Ends the server and removes its sandbox; blocks.
    func stop() {
        client.close(reason: "the gateway stopped the server")
        // The client closes the pipes: its input here, the server's output at its end.
        process?.kill()
        if let hostProcess {
            kill(hostProcess.pid, SIGTERM)
            hostProcess.wait()
        }
        if let sandbox { try? sandboxes.remove(sandbox, force: true) }
    }
}
