import AirlockPolicy
import AirlockState
import AirlockSystem
import AirlockTLS
import AirlockWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What the supervisor needs to serve a sandbox's way out.
public struct EgressConfiguration: Sendable {
    public var sandbox: String
    public var policyFiles: PolicyStore.Files
    public var logPath: String
    public var resolver: Resolver
    public var secrets: SecretStore
    public var sandboxPaths: SandboxPaths
    public var caDirectory: String
    /// Extra roots for upstream TLS (a corporate TLS-inspecting proxy; tests).
    public var upstreamCAFile: String?
    public var upstreamProxy: UpstreamProxy?
    /// Where `mcp.airlock.internal` leads when the sandbox has an MCP gateway (`--mcp`).
    public var mcpGateway: MCPGatewayRoute?

    public init(store: StateStore, name: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws
    {
        let paths = store.sandbox(name)
        sandbox = name
        policyFiles = PolicyStore.Files(
            paths: paths, userNarrowsOnly: (try? paths.loadRecord())?.ownPolicyOnly ?? false, environment: environment)
        logPath = paths.networkLog
        resolver = Resolver(environment: environment)
        secrets = SecretStore(store: store)
        sandboxPaths = paths
        caDirectory = store.caDirectory
        upstreamCAFile = environment["AIRLOCK_UPSTREAM_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        upstreamProxy = UpstreamProxy(environment: environment)
    }
}

/// The sandbox's own MCP gateway, on the host's loopback: the proxy sends requests for
/// ``host`` there, on port 80 only, and adds the gateway's bearer token, which the sandbox
/// never holds.
public struct MCPGatewayRoute: Sendable {
    public static let host = "mcp.airlock.internal"
    public var port: UInt16
    public var token: String

    public init(port: UInt16, token: String) {
        self.port = port
        self.token = token
    }
}

/// The egress decisions shared by the proxy, transparent capture and the DNS stub: the
/// policy on the name, resolution on the host, the policy on each address, and the log.
final class EgressEngine: Sendable {
    let configuration: EgressConfiguration
    let policy: PolicyStore
    let log: NetworkLog
    let synthetic = SyntheticAddresses()
    let gate = ConnectionGate()
    let threadPool: NIOThreadPool
    /// Where tunnels the proxy does not look into move their bytes, with `AIRLOCK_SPLICE=1`;
    /// else (and where it cannot start) they stay on the event loop, which measured faster on
    /// loopback here (`bench/egress.sh` compares the two).
    let splicer: SpliceTunnels? =
        ProcessInfo.processInfo.environment["AIRLOCK_SPLICE"] == "1" ? try? SpliceTunnels() : nil
    /// The CA and the upstream TLS context, made on the first interception rather than at
    /// start: most sandboxes' starts never need them.
    private let interception = Mutex<(authority: CertificateAuthority, upstreamTLS: NIOSSLContext)?>(nil)
    private let credentialCache = Mutex<(stamp: [String: FileStamp?], credentials: [Credential])?>(nil)
    private let refusedNames = Mutex<Set<String>>([])
    /// DNS refusals logged in the current second, and those left out since the last line.
    private let dnsLines = Mutex<(second: Int, logged: Int, leftOut: Int)>((0, 0, 0))
    /// Lines of DNS refusals a second: a flood of made-up names cannot push the log's other
    /// entries out through its rotation in a minute.
    static let dnsLinesPerSecond = 20

    init(configuration: EgressConfiguration, threadPool: NIOThreadPool) throws {
        self.configuration = configuration
        self.policy = PolicyStore(files: configuration.policyFiles)
        self.log = try NetworkLog(path: configuration.logPath)
        self.threadPool = threadPool
    }

    /// The caps and timeouts in effect (the defaults while a policy file is broken: then
    /// every request is refused anyway).
    func connectionLimits() -> ConnectionLimits {
        (try? policy.current().get())?.connections ?? .defaults
    }

    /// Admits a new connection from the sandbox and sets up its pipeline: the timeouts first,
    /// then `handler`; past the cap, a refusal (logged at most once a second).
    func accept(_ channel: Channel, via listener: EgressListener, handler: (ConnectionTimeouts) -> ChannelHandler)
        throws
    {
        let limits = connectionLimits()
        let operations = channel.pipeline.syncOperations
        guard gate.admit(cap: limits.max) else {
            let cap = min(limits.max, gate.descriptorBudget)
            try operations.addHandler(OverCapacity(speaksHTTP: listener == .proxy || listener == .http, cap: cap))
            if let refused = gate.refused() {
                log.append(
                    NetworkLogEntry(
                        time: Date(), sandbox: configuration.sandbox, method: "LIMIT",
                        scheme: listener == .dnsTCP ? "dns" : listener == .https ? "https" : "http", host: "-",
                        port: listener.port, path: nil, address: nil, decision: "error", rule: nil,
                        reason:
                            "\(refused) connection(s) refused since the last such line: the sandbox has \(cap) open (connections.max)",
                        bytesOut: 0, bytesIn: 0, durationMs: 0, via: listener == .proxy ? "proxy" : "capture"))
            }
            return
        }
        let gate = self.gate
        channel.closeFuture.whenComplete { _ in gate.release() }
        let timeouts = ConnectionTimeouts(limits: limits)
        try operations.addHandler(timeouts)
        try operations.addHandler(handler(timeouts))
    }

    /// What TLS interception needs: the user's CA, and a client context that trusts the
    /// system's roots plus `AIRLOCK_UPSTREAM_CA_FILE`.
    func interceptionContexts() throws -> (authority: CertificateAuthority, upstreamTLS: NIOSSLContext) {
        try interception.withLock { made in
            if let made { return made }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.applicationProtocols = ["http/1.1"]
            if let file = configuration.upstreamCAFile {
                tls.additionalTrustRoots = [.file(file)]
            }
            let contexts = (
                authority: try CertificateAuthority.loadOrCreate(directory: configuration.caDirectory),
                upstreamTLS: try NIOSSLContext(configuration: tls)
            )
            made = contexts
            return contexts
        }
    }

    /// The credentials to inject for `host` (re-read when a secret is set or removed), or
    /// none when the host is tunnelled as it is (`--bypass-host`).
    func credentials(for host: String) -> [Credential] {
        if case .success(let effective) = policy.current(),
            effective.bypassHosts.contains(where: { $0.matches(host: host, port: 443) })
        {
            return []
        }
        var stamp = FileStamp.contents(of: [configuration.secrets.directory])
        stamp[configuration.sandboxPaths.credentials] = FileStamp(path: configuration.sandboxPaths.credentials)
        let all: [Credential]
        if let cached = credentialCache.withLock({ $0 }), cached.stamp == stamp {
            all = cached.credentials
        } else {
            all = configuration.secrets.credentials(for: configuration.sandboxPaths)
            credentialCache.withLock { $0 = (stamp, all) }
        }
        return all.filter { $0.applies(to: host) }
    }

    /// An allowed destination: the one address to connect to and the rule that allowed it.
    struct Grant: Sendable {
        var address: IPAddress
        var rule: String
        /// For the MCP gateway: the loopback port to dial instead of the one asked for.
        var localPort: UInt16?
    }

    enum Refusal: Error {
        case denied(String)
        /// Allowed, but the name did not resolve.
        case unresolved(String)

        var reason: String {
            switch self {
            case .denied(let reason), .unresolved(let reason): reason
            }
        }
    }

    /// Checks a destination named by host (a name or an IP literal in any spelling) and
    /// resolves it on the host; the grant names exactly the address that passed.
    func authorize(host: String, port: UInt16, on eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        let effective: EffectivePolicy
        switch policy.current() {
        case .success(let value): effective = value
        case .failure(let error): return eventLoop.makeFailedFuture(Refusal.denied(error.description))
        }
        let name = HostName.normalize(host)
        if name == MCPGatewayRoute.host, let route = configuration.mcpGateway {
            guard port == 80 else {
                return eventLoop.makeFailedFuture(Refusal.denied("the MCP gateway is reached over http, on port 80"))
            }
            return eventLoop.makeSucceededFuture(
                Grant(address: .v4(0x7F00_0001), rule: "the sandbox's MCP gateway", localPort: route.port))
        }
        if case .deny(let reason) = effective.egress.decide(host: name, port: port) {
            return eventLoop.makeFailedFuture(Refusal.denied(reason))
        }
        if let literal = IPAddress(parsing: name) {
            return authorize(address: literal, port: port, on: eventLoop)
        }
        let resolver = configuration.resolver
        let staticHosts = effective.staticHosts
        return threadPool.runIfActive(eventLoop: eventLoop) {
            try resolver.resolve(name, staticHosts: staticHosts)
        }.flatMapErrorThrowing { error in
            throw Refusal.unresolved("\(error)")
        }.flatMapThrowing { addresses in
            var firstReason: String?
            for address in addresses {
                switch effective.egress.decide(address: address, port: port, host: name) {
                case .allow:
                    let rule = effective.egress.allowingRule(host: name, address: address, port: port)
                    return Grant(address: address, rule: rule)
                case .deny(let reason):
                    firstReason = firstReason ?? "\(name): \(reason)"
                }
            }
            throw Refusal.denied(firstReason ?? "\(name) has no address")
        }
    }

    /// Connects to exactly the granted address: directly, or through the host's upstream
    /// proxy with a CONNECT to that address. `setUp` adds the handlers that use the channel.
    func dial(
        _ grant: Grant, host: String, port: UInt16, on eventLoop: EventLoop,
        setUp: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let target: SocketAddress
        let viaProxy = configuration.upstreamProxy.flatMap {
            grant.localPort != nil || $0.isBypassed(host: host, address: grant.address) ? nil : $0
        }
        let port = grant.localPort ?? port
        let destination = Authority(host: grant.address.description, port: port)
        do {
            if let viaProxy {
                target = try SocketAddress.makeAddressResolvingHost(
                    viaProxy.authority.host, port: Int(viaProxy.authority.port))
            } else {
                target = try SocketAddress(ipAddress: grant.address.description, port: Int(port))
            }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let established = eventLoop.makePromise(of: Void.self)
        let connected = ClientBootstrap(group: eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: Self.receiveBuffers)
            .channelOption(.writeBufferWaterMark, value: Self.writeBuffers)
            // One read at a time: the relay stops reading once the sandbox's side is full, and
            // several reads a turn would queue a megabyte past that first.
            .channelOption(.maxMessagesPerRead, value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if viaProxy != nil {
                        try channel.pipeline.syncOperations.addHandler(
                            UpstreamConnectHandler(
                                target: destination.description, authorization: viaProxy?.login?.authorization,
                                established: established))
                    }
                    try setUp(channel)
                }
            }
            .connect(to: target)
        guard viaProxy != nil else {
            established.succeed()
            return connected
        }
        connected.whenFailure { established.fail($0) }
        return connected.flatMap { channel in established.futureResult.map { channel } }
    }

    /// Checks an address the sandbox connected to directly (no name known).
    func authorize(address: IPAddress, port: UInt16, on eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        switch policy.current() {
        case .success(let effective):
            switch effective.egress.decide(address: address, port: port, host: nil) {
            case .allow:
                let rule = effective.egress.allowingRule(host: nil, address: address, port: port)
                return eventLoop.makeSucceededFuture(Grant(address: address, rule: rule))
            case .deny(let reason):
                return eventLoop.makeFailedFuture(Refusal.denied(reason))
            }
        case .failure(let error):
            return eventLoop.makeFailedFuture(Refusal.denied(error.description))
        }
    }

    /// Large reads when there is much to read: a bulk download costs fewer trips through the
    /// event loop. Together with the write buffers, this bounds what one connection whose
    /// reader never reads can make the supervisor hold (about 0.5 MiB each way).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 65_536, maximum: 256 << 10)
    /// How much may wait to be written before reading from the other side pauses.
    static let writeBuffers = ChannelOptions.Types.WriteBufferWaterMark(low: 64 << 10, high: 256 << 10)

    /// Whether a refused DNS name is new enough to log, or refused for a new reason (a policy
    /// file that broke since); the set is bounded.
    func firstRefusal(of name: String, reason: String) -> Bool {
        refusedNames.withLock { names in
            if names.count > 4096 { names.removeAll() }
            return names.insert(name + "\n" + reason).inserted
        }
    }

    /// Whether a new DNS refusal may have its line, and how many were left out before it.
    func dnsLineAllowed(now: Double = Monotonic.now()) -> (allowed: Bool, leftOut: Int) {
        dnsLines.withLock { state in
            let second = Int(now)
            if second != state.second { state = (second, 0, state.leftOut) }
            guard state.logged < Self.dnsLinesPerSecond else {
                state.leftOut += 1
                return (false, 0)
            }
            state.logged += 1
            let leftOut = state.leftOut
            state.leftOut = 0
            return (true, leftOut)
        }
    }

    /// Whether a tunnel may carry something other than TLS or HTTP (ssh, a database): only
    /// where a rule names the port explicitly, or under `open`.
    func allowsOtherProtocols(host: String, port: UInt16) -> Bool {
        guard case .success(let effective) = policy.current() else { return false }
        if effective.egress.preset == .open { return true }
        let name = HostName.normalize(host)
        return effective.egress.allowHosts.contains { $0.port == port && $0.matches(host: name, port: port) }
    }

    /// Why the DNS stub may not answer `name` (it never resolves it for real); nil if it may.
    func dnsRefusal(of name: String) -> String? {
        if name == MCPGatewayRoute.host && configuration.mcpGateway != nil { return nil }
        let effective: EffectivePolicy
        switch policy.current() {
        case .success(let value): effective = value
        case .failure(let error): return error.description
        }
        if effective.staticHosts[name] != nil { return nil }
        // Any port: the stub does not know which one the program will use.
        let allowed =
            effective.egress.decide(host: name, port: 443).isAllowed
            || effective.egress.decide(host: name, port: 80).isAllowed
            || effective.egress.allowedHostRules.contains { rule in
                rule.port.map { effective.egress.decide(host: name, port: $0).isAllowed } ?? false
            }
        return allowed ? nil : "\(name) is not allowed by the policy (NXDOMAIN, not resolved)"
    }
}

/// Serves a sandbox's egress listeners: the explicit proxy, transparent capture and the DNS
/// stub, on a small event loop group inside the supervisor.
public final class EgressServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let channels: [EgressListener: Channel]

    private init(group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool, channels: [EgressListener: Channel]) {
        self.group = group
        self.threadPool = threadPool
        self.channels = channels
    }

    /// Starts serving `listeners` (``EgressListener/serving(publishing:)``, in its order), one
    /// descriptor each.
    public static func start(
        listeners kinds: [EgressListener], descriptors listeners: [Int32], configuration: EgressConfiguration
    ) throws -> EgressServer {
        guard listeners.count == kinds.count else {
            throw AirlockError(
                .failed, "the sandbox init passed \(listeners.count) egress listeners, not \(kinds.count)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: 4)
        threadPool.start()
        var channels: [EgressListener: Channel] = [:]
        do {
            let engine = try EgressEngine(configuration: configuration, threadPool: threadPool)
            for (listener, fd) in zip(kinds, listeners) {
                switch listener {
                case .proxy, .http, .https:
                    let entry: ProxyConnection.Entry =
                        listener == .proxy ? .proxy : listener == .http ? .captureHTTP : .captureTLS
                    let bootstrap = ServerBootstrap(group: group)
                        .serverChannelInitializer(Self.backOffWhenOutOfDescriptors)
                        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .childChannelOption(.autoRead, value: true)
                        .childChannelOption(.recvAllocator, value: EgressEngine.receiveBuffers)
                        .childChannelOption(.writeBufferWaterMark, value: EgressEngine.writeBuffers)
                        .childChannelOption(.maxMessagesPerRead, value: 1)
                        .childChannelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try engine.accept(channel, via: listener) { timeouts in
                                    ProxyConnection(entry: entry, engine: engine, timeouts: timeouts)
                                }
                            }
                        }
                    channels[listener] = try bootstrap.withBoundSocket(fd).wait()
                    Self.lengthenQueue(fd)
                case .dnsUDP, .engineDNSUDP:
                    let bootstrap = DatagramBootstrap(group: group).channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(DNSStub.DatagramHandler(engine: engine))
                        }
                    }
                    channels[listener] = try bootstrap.withBoundSocket(fd).wait()
                case .dnsTCP, .engineDNSTCP:
                    let bootstrap = ServerBootstrap(group: group)
                        .serverChannelInitializer(Self.backOffWhenOutOfDescriptors)
                        .childChannelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                // A DNS connection has the header timeout to live, all of it.
                                try engine.accept(channel, via: listener) { _ in DNSStub.StreamHandler(engine: engine) }
                            }
                        }
                    channels[listener] = try bootstrap.withBoundSocket(fd).wait()
                    Self.lengthenQueue(fd)
                }
            }
        } catch {
            for channel in channels.values { try? channel.close().wait() }
            try? group.syncShutdownGracefully()
            try? threadPool.syncShutdownGracefully()
            throw AirlockError(.failed, "cannot serve the sandbox's egress listeners: \(error)")
        }
        return EgressServer(group: group, threadPool: threadPool, channels: channels)
    }

    /// NIO listens again on an inherited socket with a queue of 128, whatever its options say;
    /// a burst of connections past that would be dropped by the kernel and then reset. Listening
    /// once more sets the length (the kernel caps it at the namespace's `somaxconn`).
    private static func lengthenQueue(_ fd: Int32) {
        _ = listen(fd, 4096)
    }

    /// Out of descriptors (`EMFILE`), a listener stops accepting for a moment instead of
    /// spinning on the same error: NIO adds this for `bind` but not for an inherited socket.
    @Sendable private static func backOffWhenOutOfDescriptors(_ channel: Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler())
        }
    }

    /// Closes transparent capture of `port` (80 or 443) for good, so that a server inside can
    /// listen there: the port was just published.
    public func releaseCapture(of port: UInt16) {
        for (listener, channel) in channels where listener.isCapture && listener.port == port {
            try? channel.close().wait()
        }
    }

    public func stop() {
        for channel in channels.values { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
        try? threadPool.syncShutdownGracefully()
    }
}
