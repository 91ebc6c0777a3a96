import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The redirect target of the authorization flow (RFC 8252 §7.3): a listener on 127.0.0.1 that
/// takes one `GET /callback` with the expected `state`, answers the browser with a short page,
/// and gives the code to the flow. A request with another state is answered 400 and the wait
/// goes on (a stale tab, a probe), so only the browser that was sent can finish it.
public final class LoopbackReceiver: Sendable {
    public struct Callback: Sendable, Equatable {
        public var code: String
        public var issuer: String?
    }

    let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    public let port: Int

    public var redirectURI: String { "http://127.0.0.1:\(port)/callback" }

    /// Binds 127.0.0.1:`port` (0: any free port).
    public init(port: Int = 0) async throws(OAuthError) {
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw OAuthError(.unreachable, "cannot listen on 127.0.0.1:\(port) for the browser's redirect: \(error)")
        }
        self.port = server.channel.localAddress?.port ?? port
    }

    /// Waits for the callback with `state`; an `error` from the authorization server ends the wait.
    public func wait(state: String, timeout: Duration) async throws(OAuthError) -> Callback {
        do {
            return try await withThrowingTaskGroup(of: Callback.self) { group in
                group.addTask { try await self.accept(state: state) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw OAuthError(.unreachable, "no answer from the browser within \(timeout.components.seconds) s")
                }
                defer {
                    group.cancelAll()
                    server.channel.close(promise: nil)
                }
                guard let callback = try await group.next() else { throw OAuthError(.unreachable, "no callback") }
                return callback
            }
        } catch let error as OAuthError {
            throw error
        } catch {
            throw OAuthError(.unreachable, "the redirect listener failed: \(error)")
        }
    }

    private func accept(state: String) async throws -> Callback {
        try await server.executeThenClose { connections in
            for try await connection in connections {
                if let outcome = try? await answer(connection, state: state) {
                    switch outcome {
                    case .success(let callback): return callback
                    case .failure(let error): throw error
                    }
                }
            }
            throw OAuthError(.unreachable, "the redirect listener closed")
        }
    }

    /// nil: not the callback (answered, keep waiting).
    private func answer(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, state: String)
        async throws -> Result<Callback, OAuthError>?
    {
        try await connection.executeThenClose { inbound, outbound in
            var target: String?
            for try await part in inbound {
                if case .head(let head) = part { target = head.uri }
                if case .end = part { break }
            }
            let components = URLComponents(string: target ?? "")
            var query: [String: String] = [:]
            for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
            func reply(_ status: HTTPResponseStatus, _ text: String) async throws {
                let page = "<!doctype html><title>Airlock</title><p>\(text)</p>\n"
                var headers = HTTPHeaders([("Content-Type", "text/html; charset=utf-8"), ("Connection", "close")])
                headers.add(name: "Content-Length", value: String(page.utf8.count))
                try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
                try await outbound.write(.body(.byteBuffer(ByteBuffer(string: page))))
                try await outbound.write(.end(nil))
            }
            guard components?.path == "/callback", query["state"] == state else {
                try await reply(.badRequest, "This is not the authorization Airlock is waiting for.")
                return nil
            }
            if let error = query["error"] {
                try await reply(.ok, "Authorization was refused. You may close this page.")
                let detail = query["error_description"].map { "\(error): \($0)" } ?? error
                return .failure(OAuthError(.refused, "the authorization server refused: \(detail)"))
            }
            guard let code = query["code"], !code.isEmpty else {
                try await reply(.badRequest, "The redirect holds no code.")
                return nil
            }
            try await reply(.ok, "Airlock is authorized. You may close this page.")
            return .success(Callback(code: code, issuer: query["iss"]))
        }
    }
}
