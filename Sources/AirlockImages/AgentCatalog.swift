import AirlockSystem

/// An agent Airlock knows how to run: which image it needs and what command starts it.
public struct AgentDefinition: Sendable, Equatable {
    public var name: String
    public var description: String
    public var template: String
    /// The command; `run`'s AGENT_ARGS are appended.
    public var command: [String]

    public init(name: String, description: String, template: String, command: [String]) {
        self.name = name
        self.description = description
        self.template = template
        self.command = command
    }
}

/// The agents that ship with Airlock.
public enum AgentCatalog {
    public static let shell = AgentDefinition(
        name: "shell", description: "an interactive bash shell (AGENT_ARGS go to bash)", template: "shell",
        command: ["bash"])

    public static let all = [shell]

    public static func find(_ name: String) throws -> AgentDefinition {
        guard let agent = all.first(where: { $0.name == name }) else {
            throw AirlockError(
                .notFound, "unknown agent '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return agent
    }
}
