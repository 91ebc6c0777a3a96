import Foundation

/// One JSON-RPC 2.0 message as MCP sends them: a request, a notification or a response.
public struct JSONRPCMessage: Codable, Sendable, Equatable {
    public var jsonrpc = "2.0"
    /// Present on requests and responses; absent on notifications.
    public var id: JSONValue?
    public var method: String?
    public var params: JSONValue?
    public var result: JSONValue?
    public var error: JSONRPCError?

    public init(
        id: JSONValue? = nil, method: String? = nil, params: JSONValue? = nil, result: JSONValue? = nil,
        error: JSONRPCError? = nil
    ) {
        self.id = id
        self.method = method
        self.params = params
        self.result = result
        self.error = error
    }

    public static func response(id: JSONValue, result: JSONValue) -> JSONRPCMessage {
        JSONRPCMessage(id: id, result: result)
    }

    public static func failure(id: JSONValue?, _ error: JSONRPCError) -> JSONRPCMessage {
        JSONRPCMessage(id: id ?? .null, error: error)
    }

    /// The message as it goes on the wire: compact JSON, slashes unescaped.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public var isRequest: Bool { method != nil && id != nil }
    public var isNotification: Bool { method != nil && id == nil }
}

/// A JSON-RPC error object; the codes are the protocol's own.
public struct JSONRPCError: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { message }

    public static func parseError(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: -32700, message: "parse error: \(detail)")
    }
    public static func invalidRequest(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: -32600, message: "invalid request: \(detail)")
    }
    public static func methodNotFound(_ method: String) -> JSONRPCError {
        JSONRPCError(code: -32601, message: "method not found: \(method)")
    }
    public static func invalidParams(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: -32602, message: detail)
    }
    public static func internalError(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: -32603, message: detail)
    }
}
