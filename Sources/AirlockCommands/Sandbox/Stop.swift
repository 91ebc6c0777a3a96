import AirlockRuntime
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
        let context = Context()
        let sandboxes = context.sandboxes
        for name in names { _ = try sandboxes.record(name) }
        for name in names {
            let paths = context.store.sandbox(name)
            let started = paths.isRunning ? paths.loadStatus()?.started : nil
            if started != nil, (try? sandboxes.record(name))?.docker == true {
                sandboxes.log("stopping \(name): its Docker engine gives running containers up to 10 s to end")
            }
            try sandboxes.stop(name)
            print(name)
            // What a detached session left: reported when it ends.
            if let started, let record = try? sandboxes.record(name),
                let text = GuardReport.make(paths: paths, record: record, since: started).text(name: name)
            {
                sandboxes.log(text)
            }
        }
    }
}
