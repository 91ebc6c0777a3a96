import AirlockMCP
import AirlockSystem
import Foundation
import Synchronization

/// One client of the gateway, over any transport: it answers the client's requests from the
/// gateway and hears its list changes.
public final class GatewaySession: Sendable {
    let gateway: Gateway
    let id: UUID
    /// The client's name from `initialize`, and the session, for the call log.
    let client = Mutex("")

    /// Starts a session; `send` carries notifications to the client.
    public init(gateway: Gateway, send: @escaping MCPStdio.Send) async {
        self.gateway = gateway
        self.id = await gateway.attach(send)
    }

    /// Ends the session (servers that live per session stop with the last one).
    public func end() async {
        await gateway.detach(id)
    }

    /// The answer to one message; nil for notifications and responses.
    public func handle(_ message: JSONRPCMessage) async -> JSONRPCMessage? {
        guard let method = message.method, let id = message.id else { return nil }
        do {
            return .response(id: id, result: try await answer(method, params: message.params))
        } catch let error as JSONRPCError {
            return .failure(id: id, error)
        } catch {
            return .failure(id: id, .internalError("\(error)"))
        }
    }

    func answer(_ method: String, params: JSONValue?) async throws -> JSONValue {
        if method != "initialize" && method != "ping" { await gateway.waitUntilStarted() }
        switch method {
        case "initialize":
            let name = params?["clientInfo"]?["name"]?.stringValue ?? "client"
            client.withLock { $0 = "\(name)/\(id.uuidString.prefix(8).lowercased())" }
            let asked = params?["protocolVersion"]?.stringValue ?? ""
            let version = MCPServer.protocolVersions.contains(asked) ? asked : MCPServer.protocolVersions.last ?? asked
            return [
                "protocolVersion": .string(version),
                "capabilities": [
                    "tools": ["listChanged": true], "prompts": ["listChanged": false],
                    "resources": ["listChanged": false, "subscribe": false],
                ],
                "serverInfo": ["name": "airlock-gateway", "version": .string(AirlockVersion.string)],
                "instructions": .string(Self.instructions),
            ]
        case "ping":
            return [:]
        case "tools/list":
            return ["tools": .array(await gateway.tools())]
        case "tools/call":
            guard let name = params?["name"]?.stringValue else {
                throw JSONRPCError.invalidParams("tools/call needs a tool name")
            }
            let arguments = params?["arguments"]?.objectValue ?? [:]
            return await gateway.call(name, arguments: arguments, client: client.withLock { $0 }).json
        case "prompts/list":
            return ["prompts": .array(await gateway.prompts())]
        case "resources/list":
            return ["resources": .array(await gateway.resources())]
        case "resources/templates/list":
            return ["resourceTemplates": []]
        case "prompts/get", "resources/read":
            return try await gateway.forward(method, params: params)
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    static let instructions = """
        Airlock's MCP gateway: the tools of several MCP servers, each running in a sandbox of its own. \
        Use mcp-find to search the catalog and mcp-add to enable a server; its tools then join the list.
        """
}
