import AirlockSystem
import ArgumentParser

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a sandbox as JSON: its settings, state, and whether its limits are enforced.")

    @Argument(help: "The sandbox name.")
    var name: String

    func run() throws {
        let context = Context()
        let record = try context.sandboxes.record(name)
        let report = SandboxReport(
            record: record, paths: context.store.sandbox(name), detailed: true,
            measure: try? SandboxIdentity.current())
        print(try SandboxReport.json(report))
    }
}
