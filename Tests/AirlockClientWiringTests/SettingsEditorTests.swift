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

/// The cases a review found, each once broken.
@Suite struct FoundInReviewTests {
    func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "wiring-review-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/home", withIntermediateDirectories: true)
        return directory
    }

    @Test func crlfTOMLKeepsItsTablesAndItsLineEnds() throws {
        let original = "model = \"o3\"\r\n\r\n[model_providers.x]\r\nname = \"x\"\r\n"
        var tables = TOMLTables(text: original)
        tables.append(["mcp_servers", "airlock"], entries: [("command", .string("airlock"))])
        #expect(tables.text == original + "\r\n[mcp_servers.airlock]\r\ncommand = \"airlock\"\r\n")
        let removed = try tables.removeTables(["mcp_servers", "airlock"])
        #expect(removed && tables.text == original)
        let replaced = TOMLTables(text: "[mcp_servers.airlock]\r\ncommand = \"old\"\r\n\r\n[model]\r\nname = \"x\"\r\n")
        #expect(try replaced.headers().map(\.path) == [["mcp_servers", "airlock"], ["model"]])
    }

    @Test func bracketsInsideValuesAreNoHeaders() throws {
        let text = """
            [mcp_servers.airlock]
            args = [
              "--x",
              ["nested"],
            ]
            [a]
            s = \"\"\" has \\\"\"\" inside
            [mcp_servers.airlock]
            \"\"\"
            [b]
            k = 1

            """
        var tables = TOMLTables(text: text)
        #expect(try tables.headers().map(\.path) == [["mcp_servers", "airlock"], ["a"], ["b"]])
        try tables.removeTables(["mcp_servers", "airlock"])
        #expect(tables.text.hasPrefix("[a]\n") && tables.text.contains("[mcp_servers.airlock]\n\"\"\"\n[b]"))
        #expect(throws: WiringError.self) { try TOMLTables(text: "x = \"\"\"\nnever closed\n").headers() }
    }

    @Test func onlyDefinitionsInTheWayAreRefused() throws {
        let path = ["mcp_servers", "airlock"]
        #expect(try TOMLTables(text: "mcp_servers.other.command = \"o\"\n").otherDefinition(of: path) == nil)
        #expect(try TOMLTables(text: "\"mcp_servers\".airlock.command = \"o\"\n").otherDefinition(of: path) != nil)
        let inline = try TOMLTables(text: "mcp_servers = { other = { command = \"o\" } }\n").otherDefinition(of: path)
        #expect(inline?.contains("inline table") == true)
    }

    @Test func oddJSONIsReadOrRefusedButNeverCrashes() throws {
        #expect(try JSONCDocument(text: #"{"a": "\ud800\u0041"}"#).value(at: ["a"])?.string == "\u{FFFD}")
        for bad in ["{\"a\": NaN}", "{\"a\": 0x10}", "{\"a\": +1}", "{\"a\": .5}", "{\"a\": 01}", #"{"a": "\u+041"}"#] {
            #expect(throws: WiringError.self, "\(bad)") { try JSONCDocument(text: bad) }
        }
        #expect(try JSONCDocument(text: "{\"a\": -0.5e+3}").value(at: ["a"]) != nil)
        var duplicated = try JSONCDocument(text: "{\"m\": {\"airlock\": 1, \"x\": 2, \"airlock\": 3}}")
        duplicated.remove(["m", "airlock"])
        #expect(duplicated.value(at: ["m", "airlock"]) == nil && duplicated.value(at: ["m", "x"]) != nil)
    }

    @Test func aFileBehindTwoSymlinksIsEditedWhereItIsWithItsMode() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/dot/inner", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/home/.gemini", withIntermediateDirectories: true)
        let real = root + "/dot/inner/real.json"
        try Data("{}\n".utf8).write(to: URL(fileURLWithPath: real))
        chmod(real, 0o600)
        try manager.createSymbolicLink(atPath: root + "/dot/link2.json", withDestinationPath: "inner/real.json")
        try manager.createSymbolicLink(
            atPath: root + "/home/.gemini/settings.json", withDestinationPath: "../../dot/link2.json")
        let wiring = ClientWiring(environment: ["HOME": root + "/home"], ledgerPath: root + "/ledger.json")
        _ = try wiring.connect(.gemini, scope: .global, name: "airlock", target: .stdio(command: "a", arguments: []))
        #expect(try manager.destinationOfSymbolicLink(atPath: root + "/dot/link2.json") == "inner/real.json")
        #expect(try String(contentsOfFile: real, encoding: .utf8).contains("\"airlock\""))
        #expect((try manager.attributesOfItem(atPath: real)[.posixPermissions] as? Int) == 0o600)
    }

    @Test func whatConnectMadeGoesWithTheLastEntryAndWhatTheUserHadStays() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/project/.vscode", withIntermediateDirectories: true)
        let wiring = ClientWiring(environment: ["HOME": root + "/home"], ledgerPath: root + "/ledger.json")
        let url = GatewayTarget.url("http://127.0.0.1:8811/mcp", tokenVariable: "AIRLOCK_MCP_TOKEN")
        let project = WiringScope.project(root + "/project")
        _ = try wiring.connect(.vscode, scope: project, name: "a", target: url)
        _ = try wiring.connect(.vscode, scope: project, name: "b", target: url)
        _ = try wiring.disconnect(.vscode, scope: project, name: "a")
        let text = try String(contentsOfFile: root + "/project/.vscode/mcp.json", encoding: .utf8)
        #expect(text.contains("\"id\": \"airlock-mcp-token\""), "b still uses the input")
        _ = try wiring.disconnect(.vscode, scope: project, name: "b")
        #expect(!manager.fileExists(atPath: root + "/project/.vscode/mcp.json"))
        #expect(manager.fileExists(atPath: root + "/project/.vscode"), "the user's empty directory stays")
        _ = try wiring.connect(.kiro, scope: project, name: "a", target: url)
        _ = try wiring.disconnect(.kiro, scope: project, name: "a")
        #expect(!manager.fileExists(atPath: root + "/project/.kiro"), "the directories connect made go")
    }
}
