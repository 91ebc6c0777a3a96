import AirlockMCP
import AirlockMCPAuth
import AirlockSystem
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// MCP's streamable HTTP transport, client side, for `remote` catalog servers: each message is
/// a POST to the server's URL, answered with JSON or with an event stream of messages, in one
/// session (`Mcp-Session-Id`) the server names at `initialize`.
///
/// Remote servers run elsewhere: the gateway reaches them from this machine, with the host's
/// trust roots (plus `AIRLOCK_UPSTREAM_CA_FILE`, as the proxy uses them).
///
/// A server authorized with `airlock mcp oauth authorize` gets its token on every request, from
/// a source that renews it when due; a 401 renews it once and sends the request again. When no
/// token can be had, the request fails with the tool error that names the fixing command.
final class RemoteTransport: MCPClientTransport {
    typealias TokenSource = @Sendable (_ force: Bool) async -> Result<String, OAuthRequired>

    /// The JSON-RPC code of "needs OAuth authorization": the gateway passes its message on bare.
    static let oauthRequiredCode = -32001

    let server: String
    let token: TokenSource?
    let url: URL
    let scheme: String
    let host: String
    let port: Int
    let path: String
    let headers: [String: String]
    private let session = Mutex<String?>(nil)
    private let handlers = Mutex<(receive: @Sendable (JSONRPCMessage) -> Void, ended: @Sendable (String) -> Void)?>(nil)
    private let closed = Mutex(false)
    private let tls: NIOSSLContext?

    init(url text: String, headers: [String: String] = [:], server: String = "", token: TokenSource? = nil) throws {
        self.server = server
        self.token = token
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let host = url.host
        else { throw AirlockError(.invalidArgument, "remote server URL \(text) is not http:// or https://") }
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
        self.path = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        self.headers = headers
        if scheme == "https" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let extra = ProcessInfo.processInfo.environment["AIRLOCK_UPSTREAM_CA_FILE"], !extra.isEmpty {
                configuration.additionalTrustRoots = [.file(extra)]
            }
            tls = try NIOSSLContext(configuration: configuration)
        } else {
            tls = nil
        }
    }

    func start(
        receive: @escaping @Sendable (JSONRPCMessage) -> Void, ended: @escaping @Sendable (String) -> Void
    ) {
        handlers.withLock { $0 = (receive, ended) }
    }

    func send(_ message: JSONRPCMessage) -> Bool {
        guard !closed.withLock({ $0 }) else { return false }
        Task { await post(message) }
        return true
    }

    func close() {
        closed.withLock { $0 = true }
    }

    private func deliver(_ message: JSONRPCMessage) {
        handlers.withLock { $0 }?.receive(message)
    }

    /// Sends one message; what comes back is delivered, and a failure answers its request.
    private func post(_ message: JSONRPCMessage) async {
        do {
            var forced = false
            var authorization: String?
            var outcome = (status: 0, answered: false, challenge: String?.none)
            while true {
                if let token {
                    switch await token(forced) {
                    case .success(let value): authorization = "Bearer " + value
                    case .failure(let reason): return refuse(message, reason)
                    }
                }
                outcome = try await exchange(message, authorization: authorization)
                // A token the server no longer takes: renewed once, and the request sent again.
                guard outcome.status == 401, token != nil, !forced else { break }
                forced = true
            }
            let challenge = outcome.challenge.flatMap(BearerChallenge.parse)
            if outcome.status == 401 && (token != nil || challenge != nil) {
                return refuse(message, token == nil ? .neverAuthorized : .rejected(401))
            }
            if outcome.status == 403, let challenge, challenge.error == "insufficient_scope" {
                return refuse(message, .moreScopes(challenge.scope ?? "more"))
            }
            let (status, answered) = (outcome.status, outcome.answered)
            if status >= 400, let id = message.id {
                deliver(.failure(id: id, .internalError("\(url) answered HTTP \(status)")))
            } else if message.isRequest, !answered, let id = message.id {
                // Nothing else would ever answer it: the caller would wait forever.
                deliver(.failure(id: id, .internalError("\(url) answered HTTP \(status) without a response")))
            }
        } catch {
            if let id = message.id {
                deliver(.failure(id: id, .internalError("cannot reach \(url): \(error)")))
            }
        }
    }

    private func refuse(_ message: JSONRPCMessage, _ reason: OAuthRequired) {
        guard let id = message.id else { return }
        deliver(.failure(id: id, JSONRPCError(code: Self.oauthRequiredCode, message: reason.message(server: server))))
    }

    /// Posts one message; returns the HTTP status, whether a response to the message came, and
    /// the server's `WWW-Authenticate` challenge, if any.
    private func exchange(_ message: JSONRPCMessage, authorization: String?) async throws -> (
        status: Int, answered: Bool, challenge: String?
    ) {
        let body = try message.encoded()
        let tls = self.tls
        let host = self.host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
            let hostHeader = url.port.map { "\(host):\($0)" } ?? host
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Accept", value: "application/json, text/event-stream")
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "MCP-Protocol-Version", value: MCPServer.protocolVersions.last ?? "2025-06-18")
            if let id = session.withLock({ $0 }) { head.headers.add(name: "Mcp-Session-Id", value: id) }
            for (name, value) in headers { head.headers.replaceOrAdd(name: name, value: value) }
            if let authorization { head.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var status = 0
            var events: ServerSentEvents?
            var whole = Data()
            var answered = false
            var challenge: String?
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    challenge = response.headers.first(name: "www-authenticate")
                    if let id = response.headers.first(name: "mcp-session-id") { session.withLock { $0 = id } }
                    let type = response.headers.first(name: "content-type") ?? ""
                    events = type.hasPrefix("text/event-stream") ? ServerSentEvents() : nil
                case .body(let buffer):
                    if events != nil {
                        // Messages as they come: a long call may send notifications first.
                        for event in events?.feed(buffer.readableBytesView) ?? [] where event.type == "message" {
                            answered = deliverJSON(Data(event.data.utf8), answering: message) || answered
                        }
                    } else {
                        whole.append(contentsOf: buffer.readableBytesView)
                    }
                case .end:
                    if events == nil, (200..<300).contains(status), !whole.isEmpty {
                        answered = deliverJSON(whole, answering: message) || answered
                    }
                    return (status, answered, challenge)
                }
            }
            return (status, answered, challenge)
        }
    }

    /// Delivers the message or batch in `data`; returns whether one of them answers `request`.
    private func deliverJSON(_ data: Data, answering request: JSONRPCMessage) -> Bool {
        let messages: [JSONRPCMessage]
        if let message = try? JSONDecoder().decode(JSONRPCMessage.self, from: data) {
            messages = [message]
        } else if let batch = try? JSONDecoder().decode([JSONRPCMessage].self, from: data) {
            messages = batch
        } else {
            return false
        }
        messages.forEach(deliver)
        return messages.contains { $0.method == nil && $0.id != nil && $0.id == request.id }
    }
}
