import AirlockRuntime
import AirlockState
import ArgumentParser
import Foundation

/// `airlock _supervise`: the per-sandbox supervisor (started by `run`/`start`, not by users).
struct Supervise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_supervise", abstract: "Internal: keep a sandbox running.", shouldDisplay: false)

    @Option var state: String
    @Argument var name: String

    func run() throws {
        let status = Supervisor(store: StateStore(root: state), name: name).run()
        throw ExitCode(status)
    }
}

/// `airlock _init`: pid 1 of a sandbox's pid namespace (started by the supervisor).
struct SandboxInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_init", abstract: "Internal: a sandbox's init.", shouldDisplay: false)

    @Option var state: String
    @Argument var name: String

    func run() throws {
        let store = StateStore(root: state)
        let paths = store.sandbox(name)
        let record = try paths.loadRecord()
        let sandboxInit = SandboxInit(
            paths: paths, name: name, imageRootfs: store.imagesDirectory + "/" + record.image + "/rootfs",
            driver: RuntimeDriver(
                kind: RuntimeDriver.Kind(rawValue: record.runtime) ?? .runc, stateRoot: paths.runtimeRoot))
        throw ExitCode(sandboxInit.run())
    }
}
