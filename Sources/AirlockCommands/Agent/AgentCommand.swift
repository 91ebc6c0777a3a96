import AirlockImages
import AirlockSystem
import ArgumentParser
import Foundation
import Yams

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "List and show the agents `airlock run AGENT` knows.",
        discussion: """
            Your own agents are YAML files in $XDG_CONFIG_HOME/airlock/agents/; one with a \
            built-in's name replaces it (see `agent show claude` for the fields).
            """,
        subcommands: [AgentList.self, AgentShow.self])
}

struct AgentList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List agents, their images and whether they are built.")

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Codable {
        var name: String
        var template: String
        var built: Bool
        var source: String
        var description: String
    }

    func run() throws {
        let context = Context()
        let builder = try? context.imageBuilder()
        let rows = try context.agents.all().map { entry in
            let template = try? context.templates.find(entry.agent.template).template
            return Row(
                name: entry.agent.name, template: entry.agent.template,
                built: template.flatMap { builder?.existing($0) } != nil, source: entry.source,
                description: entry.agent.description)
        }
        if json {
            print(try JSONText.pretty(rows))
            return
        }
        print(
            Table.render(
                [["NAME", "TEMPLATE", "BUILT", "SOURCE", "DESCRIPTION"]]
                    + rows.map { [$0.name, $0.template, $0.built ? "yes" : "no", $0.source, $0.description] }),
            terminator: "")
    }
}

struct AgentShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print an agent's definition (YAML, or JSON with --json).")

    @Argument(help: "Agent name.")
    var name: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let entry = try Context().agents.find(name)
        if json {
            print(try JSONText.pretty(entry.agent))
            return
        }
        print("# source: \(entry.source)")
        print(try YAMLEncoder().encode(entry.agent), terminator: "")
    }
}
