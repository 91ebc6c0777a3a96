import AirlockMCP
import Foundation

/// The gateway's own tools, with which a client changes the set of servers while it runs.
enum DynamicTools {
    static let names: Set<String> = [
        "mcp-find", "mcp-add", "mcp-remove", "mcp-config-set", "mcp-exec", "mcp-create-profile",
        "mcp-activate-profile", "code-mode",
    ]

    /// The gateway's own tools, without `mcp-create-profile` when profiles may not be written.
    static func listing(profileWrites: Bool) -> [JSONValue] {
        profileWrites ? all : all.filter { $0["name"] != "mcp-create-profile" }
    }

    static let all: [JSONValue] = [
        tool(
            "mcp-find", "Search the catalog of MCP servers by name, description or tool.",
            properties: [
                "query": ["type": "string", "description": "words to look for"],
                "limit": ["type": "integer", "description": "most results (default 10)"],
            ], required: ["query"]),
        tool(
            "mcp-add",
            "Enable a catalog server: it starts in a sandbox of its own and its tools join this list (tools/list_changed).",
            properties: [
                "name": ["type": "string", "description": "the server's catalog name"],
                "activate": ["type": "boolean", "description": "wait until its tools are listed (default true)"],
            ], required: ["name"]),
        tool(
            "mcp-remove", "Disable a server: it stops and its tools leave this list.",
            properties: ["name": ["type": "string"]], required: ["name"]),
        tool(
            "mcp-config-set", "Set a server's settings, checked against the schema its catalog entry gives.",
            properties: ["server": ["type": "string"], "config": ["type": "object"]], required: ["server", "config"]),
        tool(
            "mcp-exec", "Call any tool of the enabled servers by name, even one this client has not listed.",
            properties: ["name": ["type": "string"], "arguments": ["type": "object"]], required: ["name"]),
        tool(
            "mcp-create-profile", "Save the enabled servers and their settings as a named profile.",
            properties: ["name": ["type": "string"]], required: ["name"]),
        tool(
            "mcp-activate-profile", "Enable the servers of a saved profile, with its settings.",
            properties: ["name": ["type": "string"]], required: ["name"]),
        tool(
            "code-mode",
            "Make a tool code-mode-NAME that runs a Python script (in a sandbox with no network) in which every tool of the given servers is a function: compose many calls in one.",
            properties: [
                "servers": ["type": "array", "items": ["type": "string"], "description": "enabled servers"],
                "name": ["type": "string", "description": "the new tool is code-mode-NAME"],
            ], required: ["servers", "name"]),
    ]

    static func tool(_ name: String, _ description: String, properties: JSONValue, required: [String]) -> JSONValue {
        [
            "name": .string(name), "description": .string(description),
            "inputSchema": [
                "type": "object", "properties": properties, "required": .array(required.map { .string($0) }),
            ],
        ]
    }

    static func call(_ name: String, arguments: ToolArguments, gateway: Gateway) async -> ToolResult {
        do {
            switch name {
            case "mcp-find":
                return .json(try await find(arguments, gateway: gateway))
            case "mcp-add":
                let server = try arguments.requiredString("name")
                if try arguments.bool("activate") == false {
                    Task { _ = try? await gateway.enable(server) }
                    return .json([
                        "added": .string(server), "tools": [], "note": "starting; tools/list_changed follows",
                    ])
                }
                _ = try await gateway.enable(server)
                let tools = await gateway.offeredTools(server)
                return .json(["added": .string(server), "tools": .array(tools.map { .string($0) })])
            case "mcp-remove":
                let server = try arguments.requiredString("name")
                guard await gateway.disable(server) else { return .error("server \(server) is not enabled") }
                return .json(["removed": .string(server)])
            case "mcp-config-set":
                let server = try arguments.requiredString("server")
                guard let config = arguments.values["config"]?.objectValue else {
                    return .error("'config' must be an object")
                }
                try await gateway.setConfig(server, config)
                return .json(["server": .string(server), "config": .object(config)])
            case "mcp-exec":
                let tool = try arguments.requiredString("name")
                guard !names.contains(tool) else { return .error("mcp-exec calls servers' tools, not \(tool)") }
                return await gateway.call(tool, arguments: arguments.values["arguments"]?.objectValue ?? [:])
            case "mcp-create-profile":
                guard gateway.options.profileWrites else {
                    return .error("this gateway serves a sandbox: it does not write profiles to the host")
                }
                let profileName = try arguments.requiredString("name")
                let servers = await gateway.enabledServers()
                var configs: [String: [String: JSONValue]] = [:]
                for server in servers { configs[server] = await gateway.config(of: server) }
                try gateway.profiles.save(profileName, .init(servers: servers, config: configs))
                return .json(["profile": .string(profileName), "servers": .array(servers.map { .string($0) })])
            case "mcp-activate-profile":
                let profileName = try arguments.requiredString("name")
                let profile = try gateway.profiles.load(profileName)
                for (server, config) in profile.config where !config.isEmpty {
                    try await gateway.setConfig(server, config)
                }
                for server in profile.servers { _ = try await gateway.enable(server) }
                return .json(["profile": .string(profileName), "servers": .array(profile.servers.map { .string($0) })])
            case "code-mode":
                let servers = (arguments.values["servers"]?.arrayValue ?? []).compactMap(\.stringValue)
                let tool = try await gateway.addCodeMode(name: try arguments.requiredString("name"), servers: servers)
                return .json(["tool": .string(tool)])
            default:
                return .error("unknown gateway tool \(name)")
            }
        } catch let error as ToolArgumentError {
            return .error(error.description)
        } catch {
            return .error("\(error)")
        }
    }

    static func find(_ arguments: ToolArguments, gateway: Gateway) async throws -> JSONValue {
        let query = try arguments.requiredString("query").lowercased()
        let limit = Int(try arguments.integer("limit") ?? 10)
        let words = query.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let enabled = Set(await gateway.enabledServers())
        var scored: [(score: Int, server: CatalogServer)] = []
        for server in await gateway.catalogServers() {
            let haystack = ([server.name, server.summary] + server.tools.flatMap { [$0.name, $0.description ?? ""] })
                .joined(separator: " ").lowercased()
            let score = words.filter { haystack.contains($0) }.count + (server.name == query ? 10 : 0)
            if score > 0 || words.isEmpty { scored.append((score, server)) }
        }
        let found = scored.sorted { ($0.score, $1.server.name) > ($1.score, $0.server.name) }.prefix(max(1, limit))
        return [
            "servers": .array(
                found.map { entry in
                    [
                        "name": .string(entry.server.name), "title": .string(entry.server.title ?? ""),
                        "description": .string(entry.server.description ?? ""),
                        "enabled": .bool(enabled.contains(entry.server.name)),
                        "tools": .array(entry.server.tools.map { .string($0.name) }),
                    ]
                })
        ]
    }
}
