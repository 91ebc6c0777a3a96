import ArgumentParser

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove sandboxes and what was installed in them; workspaces are left alone.")

    @Flag(name: .shortAndLong, help: "Stop running sandboxes first.")
    var force = false

    @Argument(help: "Sandbox names.")
    var names: [String]

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("name at least one sandbox") }
    }

    func run() throws {
        let sandboxes = Context().sandboxes
        for name in names { _ = try sandboxes.record(name) }
        for name in names {
            try sandboxes.remove(name, force: force)
            print(name)
        }
    }
}
