import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A tool an MCP server offers: its schema and what runs when it is called.
public struct MCPTool: Sendable {
    public var name: String
    public var description: String
    /// A JSON Schema object for the arguments.
    public var inputSchema: JSONValue
    public var handler: @Sendable (ToolArguments) async -> ToolResult

    public init(
        name: String, description: String, inputSchema: JSONValue,
        handler: @escaping @Sendable (ToolArguments) async -> ToolResult
    ) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.handler = handler
    }

    /// The entry of `tools/list`.
    public var listing: JSONValue {
        ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
    }
}

/// The result of a tool call: text for the model, the same data structured for programs.
public struct ToolResult: Sendable, Equatable {
    public var content: [JSONValue]
    public var structuredContent: JSONValue?
    public var isError: Bool

    public init(content: [JSONValue], structuredContent: JSONValue? = nil, isError: Bool = false) {
        self.content = content
        self.structuredContent = structuredContent
        self.isError = isError
    }

    /// A result whose text is the JSON of `value`, also given as structured content.
    public static func json(_ value: JSONValue) -> ToolResult {
        ToolResult(content: [["type": "text", "text": .string(value.text())]], structuredContent: value)
    }

    /// A failed call: the model sees the message and can correct itself.
    public static func error(_ message: String) -> ToolResult {
        ToolResult(content: [["type": "text", "text": .string(message)]], isError: true)
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = ["content": .array(content), "isError": .bool(isError)]
        if let structuredContent { object["structuredContent"] = structuredContent }
        return .object(object)
    }
}

/// A tool call's arguments, read with errors that say which argument is wrong.
public struct ToolArguments: Sendable {
    public var values: [String: JSONValue]

    public init(_ values: [String: JSONValue]) {
        self.values = values
    }

    public func string(_ key: String) throws(ToolArgumentError) -> String? {
        guard let value = values[key], value != .null else { return nil }
        guard let text = value.stringValue else { throw ToolArgumentError("'\(key)' must be a string") }
        return text
    }

    public func requiredString(_ key: String) throws(ToolArgumentError) -> String {
        guard let text = try string(key) else { throw ToolArgumentError("missing argument '\(key)'") }
        return text
    }

    public func number(_ key: String) throws(ToolArgumentError) -> Double? {
        guard let value = values[key], value != .null else { return nil }
        guard let number = value.doubleValue else { throw ToolArgumentError("'\(key)' must be a number") }
        return number
    }

    public func integer(_ key: String) throws(ToolArgumentError) -> Int64? {
        guard let value = values[key], value != .null else { return nil }
        guard let number = value.intValue else { throw ToolArgumentError("'\(key)' must be an integer") }
        return number
    }

    public func bool(_ key: String) throws(ToolArgumentError) -> Bool? {
        guard let value = values[key], value != .null else { return nil }
        guard let flag = value.boolValue else { throw ToolArgumentError("'\(key)' must be true or false") }
        return flag
    }

    /// An object whose values are all strings (environment variables).
    public func stringMap(_ key: String) throws(ToolArgumentError) -> [String: String] {
        guard let value = values[key], value != .null else { return [:] }
        guard let object = value.objectValue else { throw ToolArgumentError("'\(key)' must be an object") }
        var result: [String: String] = [:]
        for (name, entry) in object {
            guard let text = entry.stringValue else { throw ToolArgumentError("'\(key).\(name)' must be a string") }
            result[name] = text
        }
        return result
    }
}

/// A tool argument of the wrong type or missing.
public struct ToolArgumentError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An MCP server over newline-delimited JSON-RPC: it answers `initialize`, `ping`,
/// `tools/list` and `tools/call`, each call in a task of its own so a slow tool never holds
/// up the others.
///
/// ```swift
/// let server = MCPServer(name: "clock", version: "1.0", tools: [clockTool])
/// await server.serveStdio()   // returns when the client closes standard input
/// ```
public final class MCPServer: Sendable {
    public let name: String
    public let version: String
    public let instructions: String?
    public let tools: [MCPTool]
    private let log: @Sendable (String) -> Void

    /// Protocol revisions this server speaks; it answers a client's own if listed, else the latest.
    public static let protocolVersions = ["2024-11-05", "2025-03-26", "2025-06-18"]

    public init(
        name: String, version: String, instructions: String? = nil, tools: [MCPTool],
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.name = name
        self.version = version
        self.instructions = instructions
        self.tools = tools
        self.log = log
    }

    /// The answer to one message; nil for notifications and responses.
    public func handle(_ message: JSONRPCMessage) async -> JSONRPCMessage? {
        guard let method = message.method else { return nil }
        guard let id = message.id else { return nil }  // notifications need no answer
        do {
            return .response(id: id, result: try await answer(method: method, params: message.params))
        } catch let error as JSONRPCError {
            return .failure(id: id, error)
        } catch {
            return .failure(id: id, .internalError("\(error)"))
        }
    }

    private func answer(method: String, params: JSONValue?) async throws -> JSONValue {
        switch method {
        case "initialize":
            let asked = params?["protocolVersion"]?.stringValue ?? ""
            let version = Self.protocolVersions.contains(asked) ? asked : Self.protocolVersions.last ?? asked
            var result: JSONValue = [
                "protocolVersion": .string(version),
                "capabilities": ["tools": ["listChanged": false]],
                "serverInfo": ["name": .string(name), "version": .string(self.version)],
            ]
            if let instructions, case .object(var object) = result {
                object["instructions"] = .string(instructions)
                result = .object(object)
            }
            return result
        case "ping":
            return [:]
        case "tools/list":
            return ["tools": .array(tools.map(\.listing))]
        case "tools/call":
            guard let name = params?["name"]?.stringValue else {
                throw JSONRPCError.invalidParams("tools/call needs a tool name")
            }
            guard let tool = tools.first(where: { $0.name == name }) else {
                throw JSONRPCError.invalidParams("unknown tool: \(name)")
            }
            let arguments = params?["arguments"]?.objectValue ?? [:]
            let started = Date()
            let result = await tool.handler(ToolArguments(arguments))
            log(
                String(
                    format: "%@ %@ in %.0f ms", name, result.isError ? "failed" : "done",
                    Date().timeIntervalSince(started) * 1000))
            return result.json
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    /// Serves one client on standard input and output until it closes its end; calls still
    /// running then are left to the caller, who ends what they wait for.
    public func serveStdio(input: Int32 = 0, output: Int32 = 1) async {
        await MCPStdio(input: input, output: output).serve { await self.handle($0) }
    }
}

/// Newline-delimited JSON-RPC on two descriptors, for any server: each request is answered in
/// a task of its own, and the server may send notifications to the client at any time.
public final class MCPStdio: Sendable {
    /// Sends one message to the client; false once it is gone.
    public typealias Send = @Sendable (JSONRPCMessage) -> Bool

    private let input: Int32
    private let writer: LineWriter

    public init(input: Int32 = 0, output: Int32 = 1) {
        self.input = input
        self.writer = LineWriter(fd: output)
    }

    /// Writes one message whole, between replies.
    @discardableResult
    public func send(_ message: JSONRPCMessage) -> Bool {
        writer.send(message)
    }

    /// Reads requests until the client closes its end.
    public func serve(handle: @escaping @Sendable (JSONRPCMessage) async -> JSONRPCMessage?) async {
        for await line in LineReader.lines(fd: input) {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let message: JSONRPCMessage
            do {
                message = try JSONDecoder().decode(JSONRPCMessage.self, from: Data(line.utf8))
            } catch {
                writer.send(.failure(id: nil, .parseError("not a JSON-RPC message")))
                continue
            }
            guard message.method != nil else { continue }  // a response: these servers ask nothing
            Task {
                if let reply = await handle(message) { self.writer.send(reply) }
            }
        }
    }
}

/// Writes whole messages, one line each, from any task.
final class LineWriter: @unchecked Sendable {
    private var fd: Int32
    private let lock = NSLock()

    init(fd: Int32) {
        self.fd = fd
    }

    /// Closes the descriptor once no message is being written; later sends fail.
    func close() {
        lock.withLock {
            if fd >= 0 { _ = Glibc.close(fd) }
            fd = -1
        }
    }

    /// False when the message could not be written whole (the reader is gone).
    @discardableResult
    func send(_ message: JSONRPCMessage) -> Bool {
        guard var data = try? message.encoded() else { return false }
        data.append(UInt8(ascii: "\n"))
        return lock.withLock {
            guard fd >= 0 else { return false }
            return data.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return false }
                var offset = 0
                while offset < buffer.count {
                    let written = write(fd, base + offset, buffer.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return false }
                    offset += written
                }
                return true
            }
        }
    }
}

/// Lines from a descriptor, read on a thread of their own (reads block).
enum LineReader {
    /// The longest line kept; a longer one is cut to this and fails to parse.
    static let maxLine = 64 << 20

    /// With `closing`, the descriptor is closed once its end is read.
    static func lines(fd: Int32, closing: Bool = false) -> AsyncStream<String> {
        AsyncStream { continuation in
            Thread.detachNewThread {
                var pending: [UInt8] = []
                var scanned = 0
                var discarding = false
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    pending += buffer[0..<count]
                    // Only the new bytes are searched: a long line costs one pass, not one per read.
                    while let newline = pending[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                        if !discarding { continuation.yield(String(decoding: pending[..<newline], as: UTF8.self)) }
                        discarding = false
                        pending.removeSubrange(...newline)
                        scanned = 0
                    }
                    scanned = pending.count
                    if pending.count > maxLine {
                        continuation.yield(String(decoding: pending.prefix(64), as: UTF8.self))
                        pending.removeAll()
                        scanned = 0
                        discarding = true
                    }
                }
                if !pending.isEmpty && !discarding {
                    continuation.yield(String(decoding: pending, as: UTF8.self))
                }
                if closing { _ = Glibc.close(fd) }
                continuation.finish()
            }
        }
    }
}
