import AirlockSystem
import Foundation
import Testing

@testable import AirlockImages

@Suite struct AgentCatalogTests {
    @Test func everyAgentTheIssueNamesIsBuiltInWithItsImage() throws {
        let names = Set(BuiltinAgents.all.map(\.name))
        #expect(
            names == [
                "claude", "gemini", "codex", "kiro", "opencode", "copilot", "aider", "mini-swe-agent",
                "mistral-vibe", "shell",
            ])
        let templates = Set(BuiltinTemplates.all.map(\.name))
        for agent in BuiltinAgents.all {
            #expect(templates.contains(agent.template), "\(agent.name): no template \(agent.template)")
            try agent.validate(source: "built-in")
            if agent.name != "shell" {
                #expect(!agent.unattended.isEmpty, "\(agent.name) would stop to ask")
                #expect(!agent.sources.isEmpty, "\(agent.name) names no install source")
                #expect(!agent.state.isEmpty, "\(agent.name) keeps no state")
            }
        }
        for template in BuiltinTemplates.all {
            try template.validate(source: "built-in")
        }
    }

    @Test func theUnattendedFlagsFollowTheCommand() {
        #expect(BuiltinAgents.claude.fullCommand == ["claude", "--dangerously-skip-permissions"])
        #expect(BuiltinAgents.gemini.fullCommand == ["gemini", "--yolo"])
        #expect(BuiltinAgents.codex.fullCommand == ["codex", "--dangerously-bypass-approvals-and-sandbox"])
        #expect(BuiltinAgents.aider.fullCommand == ["aider", "--yes-always"])
    }

    @Test func claudeKeepsAllItsStateInOneDirectory() {
        // With CLAUDE_CONFIG_DIR set, .claude.json lives in it: one directory to keep or share.
        #expect(BuiltinAgents.claude.environment(home: "/home/agent") == ["CLAUDE_CONFIG_DIR=/home/agent/.claude"])
        #expect(BuiltinAgents.claude.state == [".claude"])
    }

    @Test func aUserAgentParsesWithDefaultsAndReplacesABuiltIn() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/agents-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "name: aider\ntemplate: shell\ncommand: [aider, --model, local]\n".write(
            toFile: directory + "/aider.yaml", atomically: true, encoding: .utf8)
        try
            "name: mine\ntemplate: shell\ncommand: [mine]\nstate: [.mine]\nhosts: [api.example.com]\nenv: [MINE_HOME=$HOME/.mine]\n"
            .write(
                toFile: directory + "/mine.yml", atomically: true, encoding: .utf8)
        let catalog = AgentCatalog(directory: directory)
        let aider = try catalog.find("aider")
        #expect(aider.source == directory + "/aider.yaml")
        #expect(aider.agent.fullCommand == ["aider", "--model", "local"])
        #expect(aider.agent.credentials.isEmpty)
        let mine = try catalog.find("mine").agent
        #expect(mine.state == [".mine"])
        #expect(mine.hosts == ["api.example.com"])
        #expect(mine.environment(home: "/home/agent") == ["MINE_HOME=/home/agent/.mine"])
        #expect(throws: AirlockError.self) { try catalog.find("nope") }
    }

    @Test func aBadDefinitionNamesItsFileAndField() {
        let cases = [
            "template: shell\ncommand: [x]\n": "missing field 'name'",
            "name: x\ntemplate: shell\ncommand: []\n": "command must name a program",
            "name: x\ntemplate: shell\ncommand: [x]\nstate: [/etc]\n": "relative to the home",
            "name: x\ntemplate: shell\ncommand: [x]\nstate: [../up]\n": "relative to the home",
            "name: X Y\ntemplate: shell\ncommand: [x]\n": "lower-case",
            "name: x\ntemplate: shell\ncommand: [x]\nhosts: [http://a/b]\n": "not a host name",
            "name: x\ntemplate: shell\ncommand: [x]\nenv: [JUSTAKEY]\n": "must be KEY=VALUE",
            "name: x\ntemplate: shell\ncommand: [x]\nenv: [=v]\n": "must be KEY=VALUE",
        ]
        for (yaml, expected) in cases {
            do {
                _ = try AgentDefinition.parse(yaml: yaml, source: "/cfg/x.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                let message = "\(error)"
                #expect(message.contains("/cfg/x.yaml") && message.contains(expected), "\(message)")
            }
        }
    }
}
