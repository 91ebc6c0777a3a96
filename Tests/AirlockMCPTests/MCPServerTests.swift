import Foundation
import Testing

@testable import AirlockMCP

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct MCPServerTests {
    let server = MCPServer(
        name: "test", version: "1.0",
        tools: [
            MCPTool(name: "echo", description: "echoes", inputSchema: ["type": "object"]) { arguments in
                do {
                    return .json(["said": .string(try arguments.requiredString("text"))])
                } catch {
                    return .error("\(error)")
                }
            },
            MCPTool(name: "slow", description: "sleeps", inputSchema: ["type": "object"]) { _ in
                try? await Task.sleep(for: .milliseconds(300))
                return .json(["slept": true])
            },
        ])

    func request(_ method: String, _ params: JSONValue? = nil, id: Int64 = 1) -> JSONRPCMessage {
        JSONRPCMessage(id: .int(id), method: method, params: params)
    }

    @Test func initializeAnswersTheClientsVersionWhenItKnowsIt() async throws {
        let known = await server.handle(request("initialize", ["protocolVersion": "2025-03-26"]))
        #expect(known?.result?["protocolVersion"] == "2025-03-26")
        #expect(known?.result?["serverInfo"]?["name"] == "test")
        #expect(known?.result?["capabilities"]?["tools"] != nil)
        let unknown = await server.handle(request("initialize", ["protocolVersion": "1999-01-01"]))
        let latest = JSONValue.string(MCPServer.protocolVersions.last ?? "")
        #expect(unknown?.result?["protocolVersion"] == latest)
    }

    @Test func listsAndCallsTools() async throws {
        let list = await server.handle(request("tools/list"))
        let names: JSONValue = ["echo", "slow"]
        let listed: JSONValue? = list?.result?["tools"].map { tools -> JSONValue in
            guard case .array(let entries) = tools else { return .null }
            return .array(entries.map { $0["name"] ?? .null })
        }
        #expect(listed == names)
        let call = await server.handle(request("tools/call", ["name": "echo", "arguments": ["text": "hi"]]))
        #expect(call?.result?["structuredContent"] == ["said": "hi"])
        #expect(call?.result?["isError"] == false)
        #expect(call?.result?["content"] == [["type": "text", "text": "{\"said\":\"hi\"}"]])
    }

    @Test func aBadArgumentIsAToolErrorTheModelCanRead() async {
        let call = await server.handle(request("tools/call", ["name": "echo", "arguments": ["text": 3]]))
        #expect(call?.result?["isError"] == true)
        #expect(call?.result?["content"] == [["type": "text", "text": "'text' must be a string"]])
    }

    @Test func protocolErrorsUseJSONRPCCodes() async {
        let unknownTool = await server.handle(request("tools/call", ["name": "nope"]))
        #expect(unknownTool?.error?.code == -32602)
        let unknownMethod = await server.handle(request("resources/list"))
        #expect(unknownMethod?.error?.code == -32601)
        let notification = await server.handle(JSONRPCMessage(method: "notifications/initialized"))
        #expect(notification == nil)
    }

    @Test func stdioAnswersCallsAsTheyFinishAndEndsWithItsInput() async throws {
        var toServer: [Int32] = [0, 0]
        var fromServer: [Int32] = [0, 0]
        #expect(pipe(&toServer) == 0)
        #expect(pipe(&fromServer) == 0)
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}"#,
            "not json",
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#,
        ]
        let input = lines.joined(separator: "\n") + "\n"
        _ = input.withCString { write(toServer[1], $0, strlen($0)) }
        close(toServer[1])
        await server.serveStdio(input: toServer[0], output: fromServer[1])
        // The calls may still run after the input ended: read until all three answers came,
        // however slow the machine.
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(20)
        while output.filter({ $0 == UInt8(ascii: "\n") }).count < 3 && Date() < deadline {
            var entry = pollfd(fd: fromServer[0], events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let count = read(fromServer[0], &buffer, buffer.count)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        close(fromServer[1])
        close(fromServer[0])
        close(toServer[0])
        let replies = try String(decoding: output, as: UTF8.self).split(separator: "\n").map {
            try JSONDecoder().decode(JSONRPCMessage.self, from: Data($0.utf8))
        }
        // The parse error first, then the fast call, then the slow one that was asked first.
        // (an id of null reads back as absent)
        #expect(replies.map(\.id) == [nil, .int(2), .int(1)])
        #expect(replies.first?.error?.code == -32700)
    }

    @Test func jsonValuesKeepIntegersApartFromDoubles() throws {
        let text = #"{"a":1,"b":1.5,"c":[true,null,"s"],"d":{"e":-7}}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value["a"] == .int(1))
        #expect(value["b"] == .double(1.5))
        #expect(value["c"] == [true, .null, "s"])
        #expect(value["d"]?["e"]?.intValue == -7)
        #expect(value.text() == text)
    }
}

@Suite struct MCPClientTests {
    /// A client and a server joined by two pipes, as a gateway and a server's process are.
    func connected() throws -> (client: MCPClient, serverDone: Task<Void, Never>, closeServer: @Sendable () -> Void) {
        var toServer: [Int32] = [0, 0]
        var toClient: [Int32] = [0, 0]
        guard pipe(&toServer) == 0, pipe(&toClient) == 0 else { throw MCPClientError.closed("pipe") }
        let server = MCPServerTests().server
        let (serverIn, serverOut) = (toServer[0], toClient[1])
        let done = Task { await server.serveStdio(input: serverIn, output: serverOut) }
        let client = MCPClient(reading: toClient[0], writing: toServer[1])
        // The server's end: closing its output is what a crash looks like to the client.
        return (client, done, { close(serverOut) })
    }

    @Test func handshakeListAndConcurrentCallsEachGetTheirOwnAnswer() async throws {
        let (client, _, closeServer) = try connected()
        defer { closeServer() }
        let info = try await client.initialize(clientName: "tests", version: "1")
        #expect(info.name == "test")
        #expect(try await client.listTools().compactMap { $0["name"]?.stringValue } == ["echo", "slow"])
        // The slow call is asked first; the quick ones must not wait behind it.
        async let slow = client.callTool("slow", arguments: [:])
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let result = try await client.callTool("echo", arguments: ["text": .string("n\(index)")])
                    return result["structuredContent"]?["said"]?.stringValue ?? ""
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(answers == Set((0..<20).map { "n\($0)" }))
        #expect(try await slow["structuredContent"]?["slept"] == true)
        do {
            _ = try await client.request("no/such/method")
            Issue.record("an unknown method was answered")
        } catch let error as JSONRPCError {
            #expect(error.code == -32601)
        }
    }

    @Test func aServerThatGoesAwayFailsTheCallsWaitingAndLaterOnes() async throws {
        let (client, _, closeServer) = try connected()
        _ = try await client.initialize(clientName: "tests", version: "1")
        let waiting = Task { try await client.callTool("slow", arguments: [:]) }
        try await Task.sleep(for: .milliseconds(50))
        closeServer()
        await #expect(throws: MCPClientError.self) { _ = try await waiting.value }
        await #expect(throws: MCPClientError.self) { _ = try await client.listTools() }
        #expect(client.isClosed)
    }
}
