import Foundation
import Testing

@testable import AirlockClientWiring

@Suite struct JSONCDocumentTests {
    let entry = SettingsValue.object([("command", .string("airlock")), ("args", .array([.string("mcp")]))])

    /// Sets the entry, checks the result, removes it and expects the original bytes back.
    func roundTrip(_ original: String, expect: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var document = try JSONCDocument(text: original)
        let made = try document.set(["mcpServers", "airlock"], to: entry)
        #expect(document.text == expect, sourceLocation: sourceLocation)
        let removed = document.remove(["mcpServers", "airlock"])
        #expect(removed, sourceLocation: sourceLocation)
        if let made { document.removeIfEmpty(made) }
        #expect(document.text == original, sourceLocation: sourceLocation)
    }

    @Test func anEntryJoinsAMapWithCommentsAndLeavesAsItCame() throws {
        try roundTrip(
            """
            {
              // the user's own server
              "mcpServers": {
                "fs": {"command": "npx"} // pinned
              },
              "theme": "dark", /* trailing */
            }

            """,
            expect: """
                {
                  // the user's own server
                  "mcpServers": {
                    "fs": {"command": "npx"}, // pinned
                    "airlock": {
                      "command": "airlock",
                      "args": ["mcp"]
                    }
                  },
                  "theme": "dark", /* trailing */
                }

                """)
    }

    @Test func aTrailingCommaStyleIsKept() throws {
        try roundTrip(
            "{\n    \"mcpServers\": {\n        \"a\": 1,\n    },\n}\n",
            expect:
                "{\n    \"mcpServers\": {\n        \"a\": 1,\n        \"airlock\": {\n            \"command\": \"airlock\",\n            \"args\": [\"mcp\"]\n        },\n    },\n}\n"
        )
    }

    @Test func aMissingMapIsMadeAndGoesAgainWithTheEntry() throws {
        try roundTrip(
            "{\n\t\"editor\": {\"tabSize\": 2}\n}\n",
            expect:
                "{\n\t\"editor\": {\"tabSize\": 2},\n\t\"mcpServers\": {\n\t\t\"airlock\": {\n\t\t\t\"command\": \"airlock\",\n\t\t\t\"args\": [\"mcp\"]\n\t\t}\n\t}\n}\n"
        )
        var empty = try JSONCDocument(text: "")
        let made = try empty.set(["mcpServers", "airlock"], to: entry)
        #expect(made == ["mcpServers"])
        empty.remove(["mcpServers", "airlock"])
        empty.removeIfEmpty(["mcpServers"])
        #expect(empty.isEmptyObject)
    }

    @Test func anEmptyMapTheUserHadStaysEmpty() throws {
        try roundTrip(
            "{\n  \"mcpServers\": {}\n}\n",
            expect: """
                {
                  "mcpServers": {
                    "airlock": {
                      "command": "airlock",
                      "args": ["mcp"]
                    }
                  }
                }

                """)
    }

    @Test func anExistingEntryIsReplacedInPlace() throws {
        var document = try JSONCDocument(text: "{\"mcpServers\": {\"airlock\": {\"url\": \"x\"}, \"b\": 2}}")
        try document.set(["mcpServers", "airlock"], to: .object([("url", .string("y"))]))
        #expect(document.text == "{\"mcpServers\": {\"airlock\": {\n  \"url\": \"y\"\n}, \"b\": 2}}")
        #expect(document.value(at: ["mcpServers", "b"]) != nil)
    }

    @Test func badTextIsRefusedWithWhere() {
        for (text, fragment) in [
            ("{\"a\": [bad", "line 1, column 8"), ("[1]", "not an object"), ("{\"a\": 1} x", "more after the end"),
            ("{\n\"a\" 1}", "':' is missing"), ("{/* open", "never closed"),
        ] {
            #expect(throws: WiringError.self) { try JSONCDocument(text: text) }
            do {
                _ = try JSONCDocument(text: text)
            } catch {
                #expect(error.message.contains(fragment), "\(text): \(error.message)")
            }
        }
    }

    @Test func stringsAreReadWithTheirEscapes() throws {
        let document = try JSONCDocument(text: #"{"k": "a\"b\\c\u00e9\ud83d\ude00 // no comment"}"#)
        #expect(document.value(at: ["k"])?.string == "a\"b\\cé😀 // no comment")
    }

    @Test func arraysTakeAndGiveUpAnElementByItsId() throws {
        let original = "{\n  \"inputs\": [\n    {\"id\": \"other\"}\n  ],\n  \"servers\": {}\n}\n"
        var document = try JSONCDocument(text: original)
        let input = SettingsValue.object([("id", .string("airlock-mcp-token"))])
        let made = try document.upsert(input, inArray: ["inputs"], matching: "id", value: "airlock-mcp-token")
        try document.upsert(input, inArray: ["inputs"], matching: "id", value: "airlock-mcp-token")
        #expect(!made)
        #expect(document.value(at: ["inputs"])?.items?.count == 2)
        document.removeFromArray(["inputs"], matching: "id", value: "airlock-mcp-token")
        #expect(document.text == original)
    }
}

@Suite struct TOMLTablesTests {
    let original = """
        model = "o3"

        [mcp_servers.fs]
        command = "npx"
        args = ["-y", "fs"]

        [mcp_servers.fs.env]
        ROOT = "/srv"

        # about the profiles
        [profiles.work]
        note = '''
        [mcp_servers.airlock]
        not a header: inside a string
        '''

        """

    @Test func aTableIsAppendedAndRemovedWithItsSubTables() throws {
        var tables = TOMLTables(text: original)
        #expect(try !tables.hasTable(["mcp_servers", "airlock"]))
        tables.append(
            ["mcp_servers", "airlock"],
            entries: [("command", .string("airlock")), ("args", .array([.string("mcp"), .string("gateway")]))])
        #expect(
            tables.text.hasSuffix("\n\n[mcp_servers.airlock]\ncommand = \"airlock\"\nargs = [\"mcp\", \"gateway\"]\n"))
        #expect(try tables.hasTable(["mcp_servers", "airlock"]))
        #expect(tables.string("command", inTable: ["mcp_servers", "airlock"]) == "airlock")
        let removed = try tables.removeTables(["mcp_servers", "airlock"])
        #expect(removed)
        #expect(tables.text == original)

        var nested = TOMLTables(text: original)
        let removedFS = try nested.removeTables(["mcp_servers", "fs"])
        #expect(removedFS)
        #expect(!nested.text.contains("ROOT") && nested.text.contains("# about the profiles\n[profiles.work]"))
    }

    @Test func quotedKeysAndOtherDefinitionsAreFound() throws {
        let tables = TOMLTables(text: "[mcp_servers]\nairlock = { command = \"x\" }\n[\"mcp_servers\".'b.c']\nk = 1\n")
        #expect(try tables.otherDefinition(of: ["mcp_servers", "airlock"]) != nil)
        #expect(try tables.hasTable(["mcp_servers", "b.c"]))
        let dotted = TOMLTables(text: "mcp_servers.airlock.command = \"x\"\n")
        #expect(try dotted.otherDefinition(of: ["mcp_servers", "airlock"]) != nil)
        #expect(try TOMLTables(text: original).otherDefinition(of: ["mcp_servers", "airlock"]) == nil)
    }

    @Test func valuesAreWrittenAsTOML() {
        #expect(
            TOMLTables.render(.object([("A-B", .string("q\"\n")), ("x y", .bool(true))]))
                == "{ A-B = \"q\\\"\\n\", \"x y\" = true }")
    }
}

@Suite struct ClientWiringTests {
    func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "wiring-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/home", withIntermediateDirectories: true)
        return directory
    }

    @Test func everyClientConnectsIntoANewFileAndDisconnectLeavesNothing() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/project", withIntermediateDirectories: true)
        let wiring = ClientWiring(environment: ["HOME": root + "/home"], ledgerPath: root + "/ledger.json")
        let target = GatewayTarget.stdio(command: "airlock", arguments: ["mcp", "gateway", "run"])
        for client in MCPClientKind.allCases {
            for scope in [WiringScope.global, .project(root + "/project")]
            where client.hasProjectFile || scope == .global {
                let change = try wiring.connect(client, scope: scope, name: "airlock", target: target)
                #expect(change.action == .added && change.fileCreatedOrRemoved, "\(client) \(scope)")
                #expect(try wiring.connect(client, scope: scope, name: "airlock", target: target).action == .unchanged)
                #expect(wiring.status(client, scope: scope, name: "airlock")?.entry == "airlock mcp gateway run")
                let gone = try wiring.disconnect(client, scope: scope, name: "airlock")
                #expect(gone.action == .removed && gone.fileCreatedOrRemoved, "\(client) \(scope)")
                #expect(try wiring.disconnect(client, scope: scope, name: "airlock").action == .absent)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/home").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/project").isEmpty)
        // Without the record of what connect made, a file the user may have had stays.
        let forgetful = ClientWiring(environment: ["HOME": root + "/home"])
        _ = try forgetful.connect(.cursor, scope: .global, name: "airlock", target: target)
        _ = try forgetful.disconnect(.cursor, scope: .global, name: "airlock")
        #expect(
            try String(contentsOfFile: root + "/home/.cursor/mcp.json", encoding: .utf8)
                == "{\n  \"mcpServers\": {}\n}\n")
    }

    @Test func aMalformedFileIsNamedAndLeftAlone() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/home/.cursor/mcp.json"
        try FileManager.default.createDirectory(atPath: root + "/home/.cursor", withIntermediateDirectories: true)
        try Data("{\"mcpServers\": [".utf8).write(to: URL(fileURLWithPath: path))
        let wiring = ClientWiring(environment: ["HOME": root + "/home"])
        do {
            _ = try wiring.connect(
                .cursor, scope: .global, name: "airlock", target: .stdio(command: "a", arguments: []))
            Issue.record("a malformed file was edited")
        } catch {
            #expect(error.message.hasPrefix(path + ": line 1") && error.message.hasSuffix("nothing was changed"))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"mcpServers\": [")
    }

    @Test func urlEntriesNameTheTokensVariableAndNeverATokenAndSomeClientsRefuseThem() throws {
        let target = GatewayTarget.url("http://127.0.0.1:8811/mcp", tokenVariable: "AIRLOCK_MCP_TOKEN")
        for client in MCPClientKind.allCases {
            switch client {
            case .claudeDesktop, .zed:
                #expect(throws: WiringError.self) { try client.entry(for: target) }
            default:
                let text = SettingsValue.object(try client.entry(for: target)).json(unit: "  ")
                #expect(text.contains("AIRLOCK_MCP_TOKEN") || text.contains("${input:airlock-mcp-token}"), "\(client)")
            }
        }
        #expect(throws: WiringError.self) {
            try MCPClientKind.codex.entry(for: .url("http://127.0.0.1:8811/sse", tokenVariable: "T"))
        }
    }
}
