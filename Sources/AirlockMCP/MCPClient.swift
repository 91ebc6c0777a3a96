import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The client end of an MCP session over newline-delimited JSON-RPC: a server's standard
/// input and output. Requests may be in flight together; each waits for its own answer.
///
/// ```swift
/// let client = MCPClient(reading: serverStdout, writing: serverStdin) { note in ... }
/// let server = try await client.initialize(clientName: "airlock-gateway", version: "1")
/// let tools = try await client.listTools()
/// ```
///
/// When the server's output ends (it exited or crashed), every request waiting and every later
/// one fails with ``MCPClientError/closed(_:)``.
public final class MCPClient: @unchecked Sendable {
    public typealias NotificationHandler = @Sendable (JSONRPCMessage) -> Void

    private let transport: any MCPClientTransport
    private let lock = NSLock()
    private var nextID: Int64 = 1
    private var waiting: [Int64: CheckedContinuation<JSONValue, any Error>] = [:]
    private var closedReason: String?
    private let onNotification: NotificationHandler

    /// Over a server's standard input and output. The client owns both descriptors: it closes
    /// `output` at ``close(reason:)`` and `input` once the server's output ends.
    public convenience init(
        reading input: Int32, writing output: Int32, onNotification: @escaping NotificationHandler = { _ in }
    ) {
        self.init(transport: StdioClientTransport(reading: input, writing: output), onNotification: onNotification)
    }

    /// Over any transport; it starts delivering the server's messages at once.
    public init(transport: any MCPClientTransport, onNotification: @escaping NotificationHandler = { _ in }) {
        self.transport = transport
        self.onNotification = onNotification
        transport.start(
            receive: { [weak self] message in self?.receive(message) },
            ended: { [weak self] reason in self?.close(reason: reason) })
    }

    /// What `initialize` told about the server.
    public struct ServerInfo: Sendable {
        public var name: String
        public var version: String
        public var protocolVersion: String
        public var capabilities: JSONValue
        public var instructions: String?
    }

    /// The handshake: `initialize`, then `notifications/initialized`.
    public func initialize(clientName: String, version: String) async throws -> ServerInfo {
        let result = try await request(
            "initialize",
            params: [
                "protocolVersion": .string(MCPServer.protocolVersions.last ?? "2025-06-18"),
                "capabilities": [:],
                "clientInfo": ["name": .string(clientName), "version": .string(version)],
            ])
        notify("notifications/initialized")
        return ServerInfo(
            name: result["serverInfo"]?["name"]?.stringValue ?? "",
            version: result["serverInfo"]?["version"]?.stringValue ?? "",
            protocolVersion: result["protocolVersion"]?.stringValue ?? "",
            capabilities: result["capabilities"] ?? [:], instructions: result["instructions"]?.stringValue)
    }

    /// Every entry of a paginated list (`tools/list`, `prompts/list`, `resources/list`).
    public func list(_ method: String, key: String) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: String?
        repeat {
            let result = try await request(method, params: cursor.map { ["cursor": .string($0)] })
            items += result[key]?.arrayValue ?? []
            cursor = result["nextCursor"]?.stringValue
        } while cursor != nil
        return items
    }

    public func listTools() async throws -> [JSONValue] {
        try await list("tools/list", key: "tools")
    }

    /// A `tools/call`; the result as the server sent it (content, isError, structuredContent).
    public func callTool(_ name: String, arguments: [String: JSONValue]) async throws -> JSONValue {
        try await request("tools/call", params: ["name": .string(name), "arguments": .object(arguments)])
    }

    /// Sends a request and waits for its answer; a JSON-RPC error is thrown as ``JSONRPCError``.
    public func request(_ method: String, params: JSONValue? = nil) async throws -> JSONValue {
        try await withCheckedThrowingContinuation { continuation in
            let id: Int64? = lock.withLock {
                if let reason = closedReason {
                    continuation.resume(throwing: MCPClientError.closed(reason))
                    return nil
                }
                let id = nextID
                nextID += 1
                waiting[id] = continuation
                return id
            }
            guard let id else { return }
            if !transport.send(JSONRPCMessage(id: .int(id), method: method, params: params)) {
                close(reason: "the server's input is closed")
            }
        }
    }

    public func notify(_ method: String, params: JSONValue? = nil) {
        _ = transport.send(JSONRPCMessage(method: method, params: params))
    }

    /// Fails everything waiting and everything asked later.
    public func close(reason: String) {
        let failed = lock.withLock {
            if closedReason == nil { closedReason = reason }
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        transport.close()
        for continuation in failed { continuation.resume(throwing: MCPClientError.closed(reason)) }
    }

    public var isClosed: Bool { lock.withLock { closedReason != nil } }

    private func receive(_ message: JSONRPCMessage) {
        if let method = message.method {
            if let id = message.id {
                // The server asks something of the client: answer what a gateway can.
                _ = transport.send(
                    method == "ping" ? .response(id: id, result: [:]) : .failure(id: id, .methodNotFound(method)))
            } else {
                onNotification(message)
            }
            return
        }
        guard let id = message.id?.intValue else { return }
        let continuation = lock.withLock { waiting.removeValue(forKey: id) }
        if let error = message.error {
            continuation?.resume(throwing: error)
        } else {
            continuation?.resume(returning: message.result ?? .null)
        }
    }
}

public enum MCPClientError: Error, CustomStringConvertible, Sendable {
    case closed(String)

    public var description: String {
        switch self {
        case .closed(let reason): return "the MCP server is gone: \(reason)"
        }
    }
}

/// How an ``MCPClient``'s messages travel to a server and back.
public protocol MCPClientTransport: Sendable {
    /// Begins delivering the server's messages; `ended` once no more can come.
    func start(
        receive: @escaping @Sendable (JSONRPCMessage) -> Void, ended: @escaping @Sendable (String) -> Void)
    /// Sends one message; false when it cannot go (the server is gone).
    func send(_ message: JSONRPCMessage) -> Bool
    func close()
}

/// Newline-delimited JSON-RPC on a server's standard input and output.
final class StdioClientTransport: MCPClientTransport {
    let input: Int32
    let writer: LineWriter

    init(reading input: Int32, writing output: Int32) {
        self.input = input
        self.writer = LineWriter(fd: output)
    }

    func start(
        receive: @escaping @Sendable (JSONRPCMessage) -> Void, ended: @escaping @Sendable (String) -> Void
    ) {
        let lines = LineReader.lines(fd: input, closing: true)
        Task {
            for await line in lines {
                // Servers print stray lines; they are not the protocol.
                guard !line.allSatisfy(\.isWhitespace),
                    let message = try? JSONDecoder().decode(JSONRPCMessage.self, from: Data(line.utf8))
                else { continue }
                receive(message)
            }
            ended("the server closed its output")
        }
    }

    func send(_ message: JSONRPCMessage) -> Bool { writer.send(message) }
    func close() { writer.close() }
}
