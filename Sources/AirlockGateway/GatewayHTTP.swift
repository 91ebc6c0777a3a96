import AirlockMCP
import AirlockSystem
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The gateway over HTTP: MCP's streamable HTTP transport at `/mcp`, or the older SSE
/// transport at `/sse` (with `/message` for the client's requests), and `/health` for probes.
/// `/` redirects to the transport's endpoint, and `POST /sse?sessionid=` is taken as
/// `/message`, both as in Docker's gateway, so a client set up for it works unchanged.
///
/// Every request but `/health` needs `Authorization: Bearer TOKEN`. The Host header must name
/// the loopback (or the sandboxes' reserved gateway name) and an Origin, if sent, must be a
/// loopback one: a web page the user visits cannot reach the gateway by DNS rebinding.
public final class GatewayHTTPServer: Sendable {
    public enum Transport: String, Sendable, CaseIterable {
        case sse
        case streaming
    }

    /// The name sandboxes reach the gateway by, through their proxy.
    public static let reservedHost = "mcp.airlock.internal"
    static let maxBody = 16 << 20
    /// A client gone without saying so (no DELETE) has its session ended after this long.
    static let idleLimit: Double = 1800

    let gateway: Gateway
    public let transport: Transport
    let token: String
    let log: @Sendable (String) -> Void
    let sessions = Mutex<[String: ClientSession]>([:])

    public init(gateway: Gateway, transport: Transport, token: String, log: @escaping @Sendable (String) -> Void) {
        self.gateway = gateway
        self.transport = transport
        self.token = token
        self.log = log
    }

    /// One client: its gateway session and the messages waiting for its event stream.
    final class ClientSession: Sendable {
        let id: String
        let session: GatewaySession
        let events: AsyncStream<JSONRPCMessage>
        let continuation: AsyncStream<JSONRPCMessage>.Continuation
        /// When the client last asked something, and whether its event stream is open: a
        /// session with neither for ``GatewayHTTPServer/idleLimit`` is ended.
        let lastSeen = Mutex(Monotonic.now())
        let streaming = Mutex(false)

        func touch() { lastSeen.withLock { $0 = Monotonic.now() } }

        var isIdle: Bool {
            !streaming.withLock { $0 } && Monotonic.now() - lastSeen.withLock { $0 } > GatewayHTTPServer.idleLimit
        }

        init(id: String, gateway: Gateway) async {
            self.id = id
            let (events, continuation) = AsyncStream.makeStream(
                of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1000))
            self.events = events
            self.continuation = continuation
            self.session = await GatewaySession(gateway: gateway) { message in
                if case .enqueued = continuation.yield(message) { return true }
                return false
            }
        }

        func end() async {
            continuation.finish()
            await session.end()
        }
    }

    /// Binds and serves until the task is cancelled; `ready` gets the bound port.
    public func run(host: String, port: Int, ready: @escaping @Sendable (Int) -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        ready(server.channel.localAddress?.port ?? port)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(60))
                    await self.endIdleSessions()
                }
            }
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { await self.serve(connection) }
                }
            }
        }
    }

    /// Ends every client session (the gateway is stopping).
    public func endSessions() async {
        let all = sessions.withLock { sessions in
            defer { sessions.removeAll() }
            return Array(sessions.values)
        }
        for session in all { await session.end() }
    }

    func endIdleSessions() async {
        let idle = sessions.withLock { sessions in
            let idle = sessions.values.filter(\.isIdle)
            for session in idle { sessions[session.id] = nil }
            return idle
        }
        for session in idle {
            log("ending session \(session.id.prefix(8)): no request for \(Int(Self.idleLimit)) s")
            await session.end()
        }
    }

    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let received):
                    head = received
                    body.clear()
                case .body(var chunk):
                    if body.readableBytes + chunk.readableBytes <= Self.maxBody { body.writeBuffer(&chunk) }
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let oversized = request.headers.first(name: "content-length").flatMap(Int.init) ?? 0 > Self.maxBody
                    if oversized {
                        try await respond(outbound, .payloadTooLarge, text: "request body over 16 MiB")
                        continue
                    }
                    // An event stream holds the connection until it ends.
                    let closed = connection.channel.closeFuture
                    if try await handle(request, body: body, outbound: outbound, closed: closed) == .streamed {
                        return
                    }
                }
            }
        }
    }

    enum Outcome {
        case answered
        case streamed
    }

    /// `closed` completes when the connection closes: an event stream ends then, not at its
    /// next write.
    func handle(
        _ request: HTTPRequestHead, body: ByteBuffer, outbound: Outbound, closed: EventLoopFuture<Void>
    ) async throws -> Outcome {
        let path = String(request.uri.split(separator: "?", maxSplits: 1).first ?? "")
        if path == "/health" && request.method == .GET {
            let count = sessions.withLock(\.count)
            try await respond(outbound, .ok, json: ["status": "ok", "sessions": .int(Int64(count))])
            return .answered
        }
        if let refusal = refusal(request) {
            try await respond(outbound, refusal.status, text: refusal.reason)
            return .answered
        }
        switch (transport, path, request.method) {
        case (_, "/", _):
            // Docker's gateway answers at `/` by redirecting; 307 keeps a POST a POST.
            let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map { "?" + $0 } ?? ""
            let endpoint = transport == .streaming ? "/mcp" : "/sse"
            try await respond(outbound, .temporaryRedirect, text: "", location: endpoint + query)
            return .answered
        case (.streaming, "/mcp", .POST):
            try await streamablePost(request, body: body, outbound: outbound)
            return .answered
        case (.streaming, "/mcp", .GET):
            guard let session = try await knownSession(request, outbound: outbound) else { return .answered }
            try await stream(session, outbound: outbound, closed: closed, endsSession: false)
            return .streamed
        case (.streaming, "/mcp", .DELETE):
            guard let session = try await knownSession(request, outbound: outbound) else { return .answered }
            sessions.withLock { _ = $0.removeValue(forKey: session.id) }
            await session.end()
            try await respond(outbound, .ok, text: "")
            return .answered
        case (.sse, "/sse", .GET):
            let id = UUID().uuidString
            let session = await ClientSession(id: id, gateway: gateway)
            sessions.withLock { $0[id] = session }
            try await stream(
                session, outbound: outbound, closed: closed, endsSession: true, endpoint: "/message?sessionId=\(id)")
            return .streamed
        case (.sse, "/message", .POST), (.sse, "/sse", .POST):
            // `/message?sessionId=` is the endpoint this gateway announces; `/sse?sessionid=` is
            // where clients configured for Docker's gateway post.
            guard let id = Self.sessionParameter(request.uri), let session = sessions.withLock({ $0[id] }) else {
                try await respond(outbound, .notFound, text: "unknown session")
                return .answered
            }
            guard let message = decode(body) else {
                try await respond(outbound, .badRequest, text: "not a JSON-RPC message")
                return .answered
            }
            try await respond(outbound, .accepted, text: "")
            // Answered on the event stream, in a task: the client's next POST on this
            // connection must not wait for a slow call.
            Task { if let reply = await session.session.handle(message) { session.continuation.yield(reply) } }
            return .answered
        case (_, "/mcp", _), (_, "/sse", _), (_, "/message", _):
            try await respond(outbound, .methodNotAllowed, text: "not on this transport (--transport \(transport))")
            return .answered
        default:
            try await respond(outbound, .notFound, text: "no such endpoint")
            return .answered
        }
    }

    /// The session named in a URI's query, as `sessionId` (this gateway's) or `sessionid`
    /// (Docker's).
    static func sessionParameter(_ uri: String) -> String? {
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "sessionid" { return String(parts[1]) }
        }
        return nil
    }

    /// Why a request may not go on: a bad Host or Origin, or a missing or wrong token.
    func refusal(_ request: HTTPRequestHead) -> (status: HTTPResponseStatus, reason: String)? {
        guard let host = request.headers.first(name: "host"), Self.isLocal(host: host) else {
            return (.forbidden, "the Host header must name this machine's loopback")
        }
        if let origin = request.headers.first(name: "origin"), !Self.isLocal(origin: origin) {
            return (.forbidden, "requests from origin \(origin) are not allowed")
        }
        let given = request.headers.first(name: "authorization") ?? ""
        guard Self.constantTimeEqual(given, "Bearer " + token) else {
            return (.unauthorized, "a bearer token is required (Authorization: Bearer $AIRLOCK_MCP_TOKEN)")
        }
        return nil
    }

    static func isLocal(host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") {
            name = String(name.dropFirst().prefix { $0 != "]" })
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        return ["localhost", "127.0.0.1", "::1", reservedHost].contains(name)
    }

    static func isLocal(origin: String) -> Bool {
        guard let url = URL(string: origin), let host = url.host else { return false }
        return ["http", "https"].contains(url.scheme ?? "") && isLocal(host: host.contains(":") ? "[\(host)]" : host)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        var difference = UInt8(left.count == right.count ? 0 : 1)
        for index in 0..<min(left.count, right.count) { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// A POST of the streamable transport: an `initialize` opens a session (its id in the
    /// `Mcp-Session-Id` header); everything else names one. Requests are answered in the
    /// response body; notifications and responses get 202.
    func streamablePost(_ request: HTTPRequestHead, body: ByteBuffer, outbound: Outbound) async throws {
        guard let message = decode(body) else {
            try await respond(outbound, .badRequest, text: "the body must be one JSON-RPC message")
            return
        }
        let session: ClientSession
        if message.method == "initialize" {
            let id = UUID().uuidString
            session = await ClientSession(id: id, gateway: gateway)
            sessions.withLock { $0[id] = session }
        } else {
            guard let known = try await knownSession(request, outbound: outbound) else { return }
            session = known
        }
        guard let reply = await session.session.handle(message) else {
            try await respond(outbound, .accepted, data: Data(), contentType: "text/plain", session: session.id)
            return
        }
        try await respond(outbound, .ok, data: encode(reply), contentType: "application/json", session: session.id)
    }

    func knownSession(_ request: HTTPRequestHead, outbound: Outbound) async throws -> ClientSession? {
        guard let id = request.headers.first(name: "mcp-session-id") else {
            try await respond(outbound, .badRequest, text: "Mcp-Session-Id is required (initialize first)")
            return nil
        }
        guard let session = sessions.withLock({ $0[id] }) else {
            try await respond(outbound, .notFound, text: "unknown or ended session")
            return nil
        }
        session.touch()
        return session
    }

    /// An event stream of the session's messages until the client closes the connection, with a
    /// comment every 15 s so that a client gone without closing it is noticed too.
    func stream(
        _ session: ClientSession, outbound: Outbound, closed: EventLoopFuture<Void>, endsSession: Bool,
        endpoint: String? = nil
    ) async throws {
        var headers = HTTPHeaders([
            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Mcp-Session-Id", session.id),
        ])
        headers.add(name: "Connection", value: "keep-alive")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        session.streaming.withLock { $0 = true }
        defer {
            session.streaming.withLock { $0 = false }
            session.touch()
        }
        if let endpoint {
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "event: endpoint\ndata: \(endpoint)\n\n"))))
        }
        defer {
            if endsSession {
                sessions.withLock { _ = $0.removeValue(forKey: session.id) }
                Task { await session.end() }
            }
        }
        let keepAlive = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(15))
                session.continuation.yield(JSONRPCMessage(method: "$keepalive"))
            }
        }
        defer { keepAlive.cancel() }
        // The connection's end, told through the session's events (not by cancelling their
        // iteration, which would end them for the session's next stream too); marked with this
        // stream's id, so that a later stream of the session skips it.
        let streamID = JSONValue.string(UUID().uuidString)
        closed.whenComplete { _ in session.continuation.yield(JSONRPCMessage(id: streamID, method: "$closed")) }
        for await message in session.events {
            if message.method == "$closed" {
                if message.id == streamID { return }
                continue
            }
            let event =
                message.method == "$keepalive"
                ? ": keep-alive\n\n"
                : "event: message\ndata: " + String(decoding: encode(message), as: UTF8.self) + "\n\n"
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: event))))
        }
        try? await outbound.write(.end(nil))
    }

    func decode(_ body: ByteBuffer) -> JSONRPCMessage? {
        guard let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) else { return nil }
        return try? JSONDecoder().decode(JSONRPCMessage.self, from: Data(bytes))
    }

    func encode(_ message: JSONRPCMessage) -> Data {
        (try? message.encoded()) ?? Data()
    }

    func respond(_ outbound: Outbound, _ status: HTTPResponseStatus, json: JSONValue) async throws {
        try await respond(outbound, status, data: Data(json.text().utf8), contentType: "application/json")
    }

    func respond(
        _ outbound: Outbound, _ status: HTTPResponseStatus, text: String, location: String? = nil
    ) async throws {
        try await respond(
            outbound, status, data: Data(text.utf8), contentType: "text/plain; charset=utf-8", location: location)
    }

    func respond(
        _ outbound: Outbound, _ status: HTTPResponseStatus, data: Data, contentType: String, session: String? = nil,
        location: String? = nil
    ) async throws {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(data.count))])
        if let session { headers.add(name: "Mcp-Session-Id", value: session) }
        if let location { headers.add(name: "Location", value: location) }
        // One write, one flush: the reply leaves in one segment.
        var parts: [HTTPServerResponsePart] = [
            .head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))
        ]
        if !data.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: data)))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
    }
}
