import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTP request and its whole answer, for the OAuth steps (metadata, registration, tokens,
/// revocation). No redirects are followed; answers over 1 MiB or slower than 15 s fail; plain
/// http only to the loopback. TLS trusts the host's roots and `AIRLOCK_UPSTREAM_CA_FILE`.
public enum OAuthHTTP {
    public struct Answer: Sendable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: Data

        /// The body as JSON of type `T`, or a protocol error naming `what`.
        public func decoded<T: Decodable>(_ type: T.Type, what: String) throws(OAuthError) -> T {
            do {
                return try JSONDecoder().decode(type, from: body)
            } catch {
                throw OAuthError(.protocolViolation, "\(what): the answer is not the JSON expected (\(error))")
            }
        }

        /// The OAuth error code and description of a refusal (RFC 6749 §5.2), if it has one,
        /// made printable.
        public var oauthError: String? {
            guard let code = oauthErrorCode else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
                let description = object["error_description"] as? String
            else { return code }
            return code + ": " + OAuthError.printable(description)
        }

        /// The OAuth error code alone (`invalid_grant`, ...), made printable.
        public var oauthErrorCode: String? {
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
                let code = object["error"] as? String
            else { return nil }
            return OAuthError.printable(code)
        }
    }

    public static func get(_ url: String, accept: String = "application/json") async throws(OAuthError) -> Answer {
        try await send("GET", url, headers: [("Accept", accept)], body: nil)
    }

    /// A form POST (the token and revocation endpoints).
    public static func postForm(_ url: String, _ parameters: [(String, String)], headers: [(String, String)] = [])
        async throws(OAuthError) -> Answer
    {
        let body = Data(AuthorizationRequest.formEncoded(parameters).utf8)
        return try await send(
            "POST", url,
            headers: headers + [
                ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
            ], body: body)
    }

    public static func postJSON(_ url: String, _ body: Data, headers: [(String, String)] = []) async throws(OAuthError)
        -> Answer
    {
        try await send(
            "POST", url,
            headers: headers + [
                ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"),
            ],
            body: body)
    }

    static let limit = 1 << 20

    static func send(_ method: String, _ text: String, headers: [(String, String)], body: Data?)
        async throws(OAuthError)
        -> Answer
    {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host,
            scheme == "https" || (scheme == "http" && MetadataDiscovery.isAcceptableEndpoint(text))
        else { throw OAuthError(.protocolViolation, "\(text) is neither https nor on the loopback") }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let encodedPath = components?.percentEncodedPath ?? ""
        let path = (encodedPath.isEmpty ? "/" : encodedPath) + (components?.percentEncodedQuery.map { "?" + $0 } ?? "")
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        do {
            return try await withThrowingTaskGroup(of: Answer.self) { group in
                group.addTask {
                    try await exchange(
                        method, host: host, port: port, tls: scheme == "https", path: path,
                        hostHeader: hostHeader, headers: headers, body: body)
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(15))
                    throw OAuthError(.unreachable, "\(text) did not answer within 15 s")
                }
                defer { group.cancelAll() }
                guard let answer = try await group.next() else {
                    throw OAuthError(.unreachable, "\(text) did not answer")
                }
                return answer
            }
        } catch let error as OAuthError {
            throw error
        } catch {
            throw OAuthError(.unreachable, "cannot reach \(text): \(error)")
        }
    }

    static func exchange(
        _ method: String, host: String, port: Int, tls: Bool, path: String, hostHeader: String,
        headers: [(String, String)], body: Data?
    ) async throws -> Answer {
        let context: NIOSSLContext?
        if tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let extra = ProcessInfo.processInfo.environment["AIRLOCK_UPSTREAM_CA_FILE"], !extra.isEmpty {
                configuration.additionalTrustRoots = [.file(extra)]
            }
            context = try NIOSSLContext(configuration: configuration)
        } else {
            context = nil
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "User-Agent", value: "airlock-mcp-oauth")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.replaceOrAdd(name: name, value: value) }
            if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var answer = Answer(status: 0, headers: [:], body: Data())
            for try await part in inbound {
                switch part {
                case .head(let response):
                    answer.status = Int(response.status.code)
                    for (name, value) in response.headers {
                        let key = name.lowercased()
                        answer.headers[key] = answer.headers[key].map { $0 + ", " + value } ?? value
                    }
                case .body(let buffer):
                    guard answer.body.count + buffer.readableBytes <= limit else {
                        throw OAuthError(.protocolViolation, "the answer of \(hostHeader)\(path) is over 1 MiB")
                    }
                    answer.body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    return answer
                }
            }
            return answer
        }
    }
}
