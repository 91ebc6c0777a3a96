import AirlockPolicy
import AirlockSystem
import AirlockWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One connection from the sandbox: to the explicit proxy, or captured on its way to port 80
/// or 443 of some address. It reads what the program sends until it knows the destination,
/// asks the engine, and then either refuses (403 and close) or connects to exactly the address
/// that was checked and relays.
///
/// Plain HTTP stays parsed for the whole connection, so every request on a kept-alive
/// connection is checked again; a tunnel is checked once, by its CONNECT or SNI, and then
/// relayed byte for byte.
final class ProxyConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Entry {
        case proxy
        case captureHTTP
        case captureTLS
    }

    private enum State {
        /// Reading a request head.
        case head
        /// Waiting for the policy, the resolver or the upstream connection; input waits.
        case waiting
        /// Forwarding the body of the current request.
        case body(RequestBodyFramer)
        /// After CONNECT (or on captured TLS): waiting for the ClientHello to check its SNI.
        case hello(Authority?)
        /// Handed over to a relay, or closed.
        case done
    }

    private let entry: Entry
    private let engine: EgressEngine
    private var state = State.head
    private var buffer = ByteBuffer()
    private var upstream: Channel?
    private var upstreamAuthority: Authority?
    /// The request or tunnel being served, logged when it ends.
    private var current: NetworkLogEntry?
    private var currentStarted = Monotonic.now()
    private var bytesOut = 0
    private let bytesIn = Counter()
    /// A connection tied to one upstream, whose requests are parsed and checked one by one:
    /// TLS the proxy terminates to inject credentials, or plain HTTP sent through CONNECT.
    private var pinned: (authority: Authority, scheme: String, credentials: [Credential])?
    /// Input waiting for a decision is capped; a sandbox cannot fill the supervisor's memory.
    static let bufferLimit = 1 << 20

    /// The connection's deadlines, told the phase as it changes.
    private let timeouts: ConnectionTimeouts

    init(entry: Entry, engine: EgressEngine, timeouts: ConnectionTimeouts) {
        self.entry = entry
        self.engine = engine
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeouts.onExpiry = { expiry in
            let (handler, context) = loopBound.value
            return handler.expired(expiry, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeouts.onExpiry = nil
    }

    /// A deadline passed: a program that is sending HTTP is told so (408); anything else closes.
    private func expired(_ expiry: ConnectionTimeouts.Expiry, context: ChannelHandlerContext) -> Bool {
        let limits = engine.connectionLimits()
        switch (expiry, state) {
        case (.header, _) where buffer.readableBytes == 0:
            // Nothing was asked: nothing to answer.
            return false
        case (.header, .head) where entry != .captureTLS && pinned?.scheme != "https":
            refuse(
                context: context, status: "408 Request Timeout",
                message: "No complete request head within \(limits.headerTimeout) (connections.headerTimeout)")
            return true
        case (.body, .body):
            refuse(
                context: context, status: "408 Request Timeout",
                message: "The request body stopped for \(limits.bodyTimeout) (connections.bodyTimeout)", failed: true)
            return true
        default:
            return false
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if entry == .captureTLS { state = .hello(nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        guard buffer.readableBytes <= Self.bufferLimit else {
            refuse(context: context, status: "413 Content Too Large", message: "Too much input before a decision")
            return
        }
        process(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishCurrent()
        upstream?.close(promise: nil)
        state = .done
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Plain HTTP: read responses only as fast as the sandbox takes them.
        upstream?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Reading what the program sends

    private func process(context: ChannelHandlerContext) {
        while true {
            switch state {
            case .head:
                guard buffer.readableBytes > 0 else { return }
                switch HTTPRequestHead.parse(buffer.readableBytesView) {
                case .incomplete:
                    // A head has begun (perhaps with the end of the request before it): it has
                    // the header timeout from now, or from its first byte if it began earlier.
                    timeouts.expectHead()
                    return
                case .invalid(let reason):
                    refuse(context: context, status: "400 Bad Request", message: "Bad request: \(reason)")
                    return
                case .complete(let head, let length):
                    buffer.moveReaderIndex(forwardBy: length)
                    timeouts.requestRead(isHead: head.method == "HEAD", readable: pinned?.scheme != "https")
                    handle(head, context: context)
                }
            case .body(var framer):
                if framer.isComplete {
                    timeouts.awaitResponse()
                    state = .head
                    continue
                }
                guard buffer.readableBytes > 0 else {
                    timeouts.bodyProgress()
                    return
                }
                let taken: Int
                do {
                    taken = try buffer.withUnsafeReadableBytes { try framer.consume($0) }
                } catch {
                    refuse(context: context, status: "400 Bad Request", message: "Bad request body: \(error)")
                    return
                }
                var waitingForUpstream = false
                if taken > 0, let slice = buffer.readSlice(length: taken) {
                    bytesOut += taken
                    upstream?.writeAndFlush(slice, promise: nil)
                    // A body goes only as fast as the upstream takes it; while it waits, the
                    // sandbox is not the one holding it up.
                    if let upstream, !upstream.isWritable {
                        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                        waitingForUpstream = true
                    }
                }
                state = framer.isComplete ? .head : .body(framer)
                guard framer.isComplete else {
                    if waitingForUpstream { timeouts.awaitResponse() } else { timeouts.bodyProgress() }
                    return
                }
                timeouts.awaitResponse()
            case .hello(let authority):
                switch ClientHello.peek(buffer.readableBytesView) {
                case .needMore:
                    timeouts.expectHead()
                    return
                case .invalid(let reason):
                    deny(
                        context: context, host: authority?.host ?? "?", port: authority?.port ?? 443,
                        reason: "malformed TLS ClientHello: \(reason)", scheme: "https", connected: authority != nil)
                    return
                case .notTLS:
                    guard let authority, entry == .proxy else {
                        deny(
                            context: context, host: "?", port: 443, reason: "not a TLS ClientHello", scheme: "https")
                        return
                    }
                    // Plain HTTP through CONNECT is checked request by request like any other
                    // (its Host could name another site behind the same address).
                    switch HTTPRequestHead.parse(buffer.readableBytesView) {
                    case .incomplete, .complete:
                        finishCurrent()
                        pinned = (authority, "http", [])
                        upstreamAuthority = authority
                        state = .head
                        continue
                    case .invalid:
                        break
                    }
                    // Another protocol: only where a rule names this port (or under `open`).
                    guard engine.allowsOtherProtocols(host: authority.host, port: authority.port) else {
                        deny(
                            context: context, host: authority.host, port: authority.port,
                            reason:
                                "neither TLS nor HTTP; allow other protocols with --allow-host HOST:\(authority.port)",
                            scheme: "tcp", connected: true)
                        return
                    }
                    startRelay(context: context)
                    return
                case .hello(let serverName):
                    helloArrived(serverName: serverName, authority: authority, context: context)
                    return
                }
            case .waiting, .done:
                return
            }
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        finishCurrent()
        let target = RequestTarget.parse(method: head.method, target: head.target)
        if let pinned {
            guard case .origin(let path)? = target else {
                refuse(
                    context: context, status: "400 Bad Request",
                    message: "Bad request: \(head.method) \(head.target) inside a tunnel to \(pinned.authority)")
                return
            }
            forward(head, path: path, authority: pinned.authority, scheme: pinned.scheme, context: context)
            return
        }
        switch (entry, target) {
        case (.proxy, .authority(let authority)?):
            begin(method: "CONNECT", scheme: "https", authority: authority, path: nil)
            connect(to: authority, context: context) { [self] upstream in
                context.writeAndFlush(
                    wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                adopt(upstream, context: context)
                state = .hello(authority)
                timeouts.expectHead()
                process(context: context)
            }
        case (.proxy, .absolute(let scheme, let authority, let path)?):
            guard scheme == "http" || scheme == "ws" else {
                deny(
                    context: context, host: authority.host, port: authority.port,
                    reason: "the proxy forwards \(scheme):// only through CONNECT", scheme: scheme)
                return
            }
            forward(head, path: path, authority: authority, scheme: scheme, context: context)
        case (.captureHTTP, .origin(let path)?):
            guard let destination = capturedDestination(context: context) else { return }
            forward(head, path: path, authority: destination, scheme: "http", context: context)
        case (.captureHTTP, .absolute(_, let authority, let path)?):
            guard let destination = capturedDestination(context: context) else { return }
            guard authority == destination else {
                deny(
                    context: context, host: authority.host, port: authority.port,
                    reason: "the request names \(authority) but was sent to \(destination)", scheme: "http")
                return
            }
            forward(head, path: path, authority: destination, scheme: "http", context: context)
        default:
            refuse(
                context: context, status: "400 Bad Request",
                message: "Bad request: \(head.method) \(head.target) is not a proxy request")
        }
    }

    /// A plain HTTP request: the Host header must name the target; the head is rewritten to
    /// origin form and sent to the upstream for this target (a new one if it changed).
    private func forward(
        _ head: HTTPRequestHead, path: String, authority: Authority, scheme: String, context: ChannelHandlerContext
    ) {
        let defaultPort: UInt16 = scheme == "https" || scheme == "wss" ? 443 : 80
        if let host = head.first("Host"), !RequestTarget.hostMatches(host, authority, defaultPort: defaultPort) {
            deny(
                context: context, host: authority.host, port: authority.port,
                reason: "Host header '\(host)' does not match the request target \(authority)", scheme: scheme)
            return
        }
        let framer: RequestBodyFramer
        do {
            framer = try RequestBodyFramer(head: head)
        } catch {
            refuse(context: context, status: "400 Bad Request", message: "Bad request: \(error)")
            return
        }
        var outgoing = head
        outgoing.target = path
        outgoing.remove("Proxy-Connection")
        outgoing.remove("Proxy-Authorization")
        if outgoing.first("Host") == nil { outgoing.set("Host", authority.description) }
        // A request to switch protocols (WebSocket): after the server's 101, raw bytes.
        let upgrading = head.first("Upgrade") != nil
        begin(method: head.method, scheme: scheme, authority: authority, path: path)
        if let pinned {
            let services = pinned.credentials.filter { $0.inject(into: &outgoing.fields) }.map(\.service.name)
            if !services.isEmpty { current?.injected = services }
        }
        if HostName.normalize(authority.host) == MCPGatewayRoute.host, let route = engine.configuration.mcpGateway {
            // The gateway's token is added here: the sandbox never holds it.
            outgoing.set("Authorization", "Bearer " + route.token)
            current?.injected = ["mcp-gateway"]
        }
        let send = { [self] (upstream: Channel) in
            adopt(upstream, context: context)
            upstreamAuthority = authority
            let bytes = outgoing.serialized()
            bytesOut += bytes.count
            upstream.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            if upgrading {
                // Raw bytes only once the server agrees to switch (101); until then, HTTP.
                state = .waiting
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                relay(of: upstream)?.onFirstResponse = { switched in
                    let (handler, context) = loopBound.value
                    guard case .waiting = handler.state else { return }
                    if switched {
                        handler.startRelay(context: context)
                    } else {
                        handler.state = .body(framer)
                        handler.process(context: context)
                    }
                }
                return
            }
            state = .body(framer)
            process(context: context)
        }
        if let upstream, upstreamAuthority == authority, upstream.isActive {
            // The same target on a kept-alive connection: checked again all the same.
            state = .waiting
            recheck(authority, context: context) { send(upstream) }
            return
        }
        guard pinned == nil else {
            // A pinned connection never gets a new upstream: its TLS (and any key) belongs to
            // the one it was made for.
            finishCurrent()
            state = .done
            context.close(promise: nil)
            return
        }
        detachUpstream()
        connect(to: authority, context: context, then: send)
    }

    private func helloArrived(serverName: String?, authority: Authority?, context: ChannelHandlerContext) {
        if let authority {
            // CONNECT: the SNI must name the host the client asked for.
            let isLiteral = IPAddress(parsing: authority.host) != nil
            if let serverName, HostName.normalize(serverName) != authority.host {
                deny(
                    context: context, host: authority.host, port: authority.port,
                    reason: "TLS server name \(serverName) does not match CONNECT \(authority)", scheme: "https",
                    connected: true)
                return
            }
            if serverName == nil && !isLiteral {
                deny(
                    context: context, host: authority.host, port: authority.port,
                    reason: "TLS without a server name to CONNECT \(authority)", scheme: "https", connected: true)
                return
            }
            interceptOrRelay(authority, context: context)
            return
        }
        // Captured TLS: the destination is a name the DNS stub gave out, or a literal address.
        guard let destination = capturedDestination(context: context) else { return }
        if IPAddress(parsing: destination.host) == nil {
            guard let serverName, HostName.normalize(serverName) == destination.host else {
                deny(
                    context: context, host: destination.host, port: destination.port,
                    reason: "TLS server name \(serverName ?? "(none)") does not match \(destination.host)",
                    scheme: "https")
                return
            }
        }
        begin(method: "TLS", scheme: "https", authority: destination, path: nil)
        connect(to: destination, context: context) { [self] upstream in
            adopt(upstream, context: context)
            interceptOrRelay(destination, context: context)
        }
    }

    /// Where a captured connection was going: the name behind a synthetic address, or the
    /// address itself.
    private func capturedDestination(context: ChannelHandlerContext) -> Authority? {
        guard let local = context.channel.localAddress, let ip = local.ipAddress,
            let address = IPAddress(parsing: ip), let port = local.port
        else {
            context.close(promise: nil)
            return nil
        }
        let host = engine.synthetic.name(for: address) ?? ip
        if SyntheticAddresses.contains(address) && host == ip {
            // A synthetic address nobody was given (from an earlier run, or made up).
            deny(
                context: context, host: ip, port: UInt16(port), reason: "\(ip) was not given out by the DNS stub",
                scheme: entry == .captureTLS ? "https" : "http")
            return nil
        }
        return Authority(host: host, port: UInt16(port))
    }

    // MARK: - Deciding and connecting

    private func connect(
        to authority: Authority, context: ChannelHandlerContext, then body: @escaping (Channel) -> Void
    ) {
        state = .waiting
        let eventLoop = context.eventLoop
        let loopBound = NIOLoopBound((self, context, body), eventLoop: eventLoop)
        engine.authorize(host: authority.host, port: authority.port, on: eventLoop).flatMap {
            (grant: EgressEngine.Grant) -> EventLoopFuture<Channel> in
            let (handler, context, _) = loopBound.value
            handler.record(grant)
            let relay = NIOLoopBound(
                ResponseRelay(client: context.channel, counter: handler.bytesIn), eventLoop: eventLoop)
            return handler.engine.dial(grant, host: authority.host, port: authority.port, on: eventLoop) { channel in
                try channel.pipeline.syncOperations.addHandler(relay.value, name: ResponseRelay.name)
            }
        }.whenComplete { result in
            let (handler, context, body) = loopBound.value
            guard case .waiting = handler.state, context.channel.isActive else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                body(channel)
            case .failure(let error as EgressEngine.Refusal):
                if case .unresolved(let reason) = error {
                    handler.refuse(context: context, status: "502 Bad Gateway", message: reason, failed: true)
                } else {
                    handler.deny(
                        context: context, host: authority.host, port: authority.port, reason: error.reason,
                        scheme: handler.current?.scheme ?? "http")
                }
            case .failure(let error):
                handler.refuse(
                    context: context, status: "502 Bad Gateway", message: "Cannot reach \(authority): \(error)",
                    failed: true)
            }
        }
    }

    /// A further request to the same target: the policy may have changed since the last one.
    private func recheck(_ authority: Authority, context: ChannelHandlerContext, then body: @escaping () -> Void) {
        let loopBound = NIOLoopBound((self, context, body), eventLoop: context.eventLoop)
        engine.authorize(host: authority.host, port: authority.port, on: context.eventLoop).whenComplete { result in
            let (handler, context, body) = loopBound.value
            switch result {
            case .success(let grant):
                handler.record(grant)
                body()
            case .failure(let error):
                handler.deny(
                    context: context, host: authority.host, port: authority.port,
                    reason: (error as? EgressEngine.Refusal)?.reason ?? "\(error)", scheme: "http")
            }
        }
    }

    /// Tunnels the TLS connection as it is, unless a credential applies to the host: then
    /// the proxy terminates TLS with a leaf from the user's CA, speaks TLS to the upstream,
    /// and handles the requests inside like plain HTTP, injecting the key.
    private func interceptOrRelay(_ authority: Authority, context: ChannelHandlerContext) {
        let credentials = engine.credentials(for: authority.host)
        guard !credentials.isEmpty, let upstream else {
            startRelay(context: context, spliceable: true)
            return
        }
        do {
            let contexts = try engine.interceptionContexts()
            let serverName = IPAddress(parsing: authority.host) == nil ? authority.host : nil
            try upstream.pipeline.syncOperations.addHandler(
                try NIOSSLClientHandler(context: contexts.upstreamTLS, serverHostname: serverName), position: .first)
            let server = NIOSSLServerHandler(context: try contexts.authority.serverContext(for: authority.host))
            try context.pipeline.syncOperations.addHandler(server, position: .before(self))
        } catch {
            deny(
                context: context, host: authority.host, port: authority.port,
                reason: "cannot intercept TLS: \(error)", scheme: "https", connected: true)
            return
        }
        finishCurrent()
        pinned = (authority, "https", credentials)
        upstreamAuthority = authority
        state = .head
        // The ClientHello that was peeked goes through the TLS handler now.
        let hello = buffer
        buffer = ByteBuffer()
        context.pipeline.syncOperations.fireChannelRead(NIOAny(hello))
    }

    /// Relays the rest byte for byte. A `spliceable` stream is TLS the proxy checked: its client
    /// spoke first and the upstream has said nothing yet, so nothing waits in the channels'
    /// queues and it may leave the event loop (``splice(context:upstream:first:)``). Others
    /// (an upgrade after its 101, another protocol) stay.
    private func startRelay(context: ChannelHandlerContext, spliceable: Bool = false) {
        guard let upstream else {
            context.close(promise: nil)
            return
        }
        state = .done
        timeouts.tunnel()
        let pending = buffer
        buffer = ByteBuffer()
        if spliceable, splice(context: context, upstream: upstream, first: pending) { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let (clientSide, upstreamSide) = RelayHandler.pair { loopBound.value.finishCurrent() }
        do {
            let operations = upstream.pipeline.syncOperations
            operations.removeHandler(context: try operations.context(name: ResponseRelay.name), promise: nil)
            try operations.addHandler(upstreamSide)
        } catch {
            context.close(promise: nil)
            return
        }
        do {
            try context.pipeline.syncOperations.addHandler(clientSide, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        relays = (clientSide, upstreamSide)
        if pending.readableBytes > 0 {
            bytesOut += pending.readableBytes
            upstream.writeAndFlush(pending, promise: nil)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        _ = upstream.setOption(ChannelOptions.autoRead, value: true)
    }

    private var relays: (RelayHandler, RelayHandler)?

    /// Hands the tunnel to the kernel (``SpliceTunnels``): both sockets leave the event loop,
    /// `first` (the ClientHello that was looked at) goes ahead of the rest, and the log line is
    /// written when the tunnel ends. False, with nothing changed, where that cannot be done.
    private func splice(context: ChannelHandlerContext, upstream: Channel, first: ByteBuffer) -> Bool {
        guard let splicer = engine.splicer,
            (try? upstream.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)) == nil,
            let clientSocket = ChannelDescriptor.duplicate(context.channel)
        else { return false }
        guard let upstreamSocket = ChannelDescriptor.duplicate(upstream) else {
            close(clientSocket)
            return false
        }
        let entry = current
        let (started, sentBefore, receivedBefore) = (currentStarted, bytesOut, bytesIn.value)
        let (log, gate) = (engine.log, engine.gate)
        gate.hold(3)
        let taken = splicer.start(
            client: clientSocket, upstream: upstreamSocket, first: Array(first.readableBytesView),
            idle: engine.connectionLimits().tunnelIdleTimeout.value
        ) { totals in
            gate.release(3)
            guard var entry else { return }
            entry.bytesOut = sentBefore + totals.toUpstream
            entry.bytesIn = receivedBefore + totals.fromUpstream
            entry.durationMs = Self.milliseconds(since: started)
            log.append(entry)
        }
        guard taken else {
            gate.release(3)
            close(clientSocket)
            close(upstreamSocket)
            return false
        }
        // The tunnel's line is written at its end; the channels' copies of the sockets close
        // now (the sockets stay open in the tunnel).
        current = nil
        upstream.close(promise: nil)
        context.close(promise: nil)
        return true
    }

    /// Takes a new upstream; when it ends, so does the processing of this connection.
    private func adopt(_ upstream: Channel, context: ChannelHandlerContext) {
        self.upstream = upstream
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        relay(of: upstream)?.onUpstreamClosed = {
            let handler = loopBound.value
            guard handler.upstream === upstream else { return }
            handler.finishCurrent()
            handler.state = .done
        }
    }

    /// Lets go of the current upstream without its end closing the sandbox's connection.
    private func detachUpstream() {
        if let upstream {
            relay(of: upstream)?.detach()
            upstream.close(promise: nil)
        }
        upstream = nil
        upstreamAuthority = nil
    }

    private func relay(of upstream: Channel) -> ResponseRelay? {
        try? upstream.pipeline.syncOperations.handler(type: ResponseRelay.self)
    }

    // MARK: - Refusing and logging

    private func begin(method: String, scheme: String, authority: Authority, path: String?) {
        currentStarted = Monotonic.now()
        bytesOut = 0
        bytesIn.value = 0
        current = logEntry(method: method, scheme: scheme, host: authority.host, port: authority.port, path: path)
    }

    /// A log line for this connection, allowed until something says otherwise.
    private func logEntry(method: String, scheme: String, host: String, port: UInt16, path: String?)
        -> NetworkLogEntry
    {
        NetworkLogEntry(
            time: Date(), sandbox: engine.configuration.sandbox, method: method, scheme: scheme, host: host, port: port,
            path: path, address: nil, decision: "allow", rule: nil, reason: nil, bytesOut: 0, bytesIn: 0,
            durationMs: 0, via: entry == .proxy ? "proxy" : "capture")
    }

    /// What let the current request through, and where it goes.
    private func record(_ grant: EgressEngine.Grant) {
        current?.rule = grant.rule
        current?.address = grant.address.description
    }

    /// A log line's duration: milliseconds since `start`, to a tenth.
    static func milliseconds(since start: Double) -> Double {
        ((Monotonic.now() - start) * 1000 * 10).rounded() / 10
    }

    private func finishCurrent() {
        guard var entry = current else { return }
        current = nil
        entry.bytesOut = bytesOut + (relays?.0.received ?? 0)
        entry.bytesIn = bytesIn.value + (relays?.1.received ?? 0)
        entry.durationMs = Self.milliseconds(since: currentStarted)
        engine.log.append(entry)
    }

    /// Refuses a destination the policy does not allow: 403 with the reason (when the program
    /// still speaks HTTP to us), a log line, and the connection closes.
    private func deny(
        context: ChannelHandlerContext, host: String, port: UInt16, reason: String, scheme: String,
        connected: Bool = false
    ) {
        if current == nil || current?.host != host {
            current = logEntry(
                method: scheme == "https" ? "TLS" : "?", scheme: scheme, host: host, port: port, path: nil)
        }
        current?.decision = "deny"
        current?.rule = nil
        current?.reason = reason
        let speaksHTTP = !connected && (entry != .captureTLS)
        if speaksHTTP {
            let body = "Blocked by airlock network policy: \(Authority(host: host, port: port))\nReason: \(reason)\n"
            // The reason in the status line too: clients such as Docker's show only that.
            let phrase = reason.filter { $0 != "\r" && $0 != "\n" }.prefix(300)
            respond(context: context, status: "403 Forbidden by Airlock policy: \(phrase)", body: body)
        } else {
            finishCurrent()
            upstream?.close(promise: nil)
            state = .done
            context.close(promise: nil)
        }
    }

    /// Answers with an HTTP error and closes; `failed` marks an allowed request that could
    /// not be served (an error in the log, not a refusal).
    private func refuse(context: ChannelHandlerContext, status: String, message: String, failed: Bool = false) {
        if failed {
            current?.decision = "error"
            current?.reason = message
        }
        respond(context: context, status: status, body: message + "\n")
    }

    private func respond(context: ChannelHandlerContext, status: String, body: String) {
        finishCurrent()
        state = .done
        // The upstream closes after the answer is out: its relay closes the sandbox's side.
        let upstream = self.upstream
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + body))).whenComplete { _ in
            upstream?.close(promise: nil)
            channel.close(promise: nil)
        }
    }
}

/// A byte count shared between a connection and the upstream's relay (one event loop).
final class Counter {
    var value = 0
}

/// Passes an upstream's responses to the sandbox while plain HTTP is being parsed, closing
/// the sandbox's connection when the upstream ends it.
final class ResponseRelay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let name = "airlock.response-relay"
    private var client: Channel?
    private let counter: Counter

    init(client: Channel, counter: Counter) {
        self.client = client
        self.counter = counter
    }

    /// Told whether the first response switches protocols (101), for upgrade requests.
    var onFirstResponse: ((Bool) -> Void)?

    /// Stops passing anything on: the sandbox's connection moved to another upstream.
    func detach() {
        client = nil
        onFirstResponse = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let client else { return }
        let buffer = unwrapInboundIn(data)
        counter.value += buffer.readableBytes
        client.write(buffer, promise: nil)
        if let onFirstResponse {
            self.onFirstResponse = nil
            let statusLine = buffer.getString(at: buffer.readerIndex, length: min(12, buffer.readableBytes)) ?? ""
            client.flush()
            onFirstResponse(statusLine.hasSuffix(" 101"))
            return
        }
        if !client.isWritable {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The upstream takes more again: read the sandbox's request body again.
        if context.channel.isWritable { client?.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closing the sandbox's side also ends a pinned connection: nothing read after this
        // point is processed (a terminated TLS connection drains while it says goodbye).
        client?.close(promise: nil)
        onUpstreamClosed?()
        context.fireChannelInactive()
    }

    var onUpstreamClosed: (() -> Void)?

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
