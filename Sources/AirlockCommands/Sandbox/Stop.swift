import ArgumentParser

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop sandboxes: their processes end, their files stay for the next run.")

    @Argument(help: "Sandbox names.")
    var names: [String]

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("name at least one sandbox") }
    }

    func run() throws {
        let sandboxes = Context().sandboxes
        for name in names { _ = try sandboxes.record(name) }
        for name in names {
            try sandboxes.stop(name)
            print(name)
        }
    }
}
