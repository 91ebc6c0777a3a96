import AirlockSystem
import ArgumentParser

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove sandboxes and what was installed in them; workspaces are left alone.")

    @Flag(name: .shortAndLong, help: "Stop running sandboxes first, and remove the others when one is missing.")
    var force = false

    @Argument(help: "Sandbox names.")
    var names: [String]

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("name at least one sandbox") }
    }

    func run() throws {
        let sandboxes = Context().sandboxes
        // Without -f, one unknown name stops everything before anything is removed.
        var missing: [String] = []
        for name in names {
            do {
                _ = try sandboxes.record(name)
            } catch let error as AirlockError where force && error.code == .notFound {
                missing.append(name)
            }
        }
        for name in names where !missing.contains(name) {
            try sandboxes.remove(name, force: force)
            print(name)
        }
        if !missing.isEmpty {
            let names = missing.joined(separator: ", ")
            throw AirlockError(.notFound, "no sandbox named \(names) (the others were removed)")
        }
    }
}
