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

/// The internal commands, dispatched before ArgumentParser: they run on every sandbox start,
/// and ArgumentParser's reflection costs more than the rest of their start-up together.
enum InternalCommand {
    /// Runs `_supervise` or `_init` (`airlock _NAME --state DIR SANDBOX`); nil for anything else.
    static func run(_ arguments: [String]) -> Int32? {
        guard arguments.count == 5, arguments[2] == "--state" else { return nil }
        let store = StateStore(root: arguments[3])
        let name = arguments[4]
        switch arguments[1] {
        case "_supervise":
            return Supervisor(store: store, name: name).run()
        case "_init":
            let paths = store.sandbox(name)
            guard let record = try? paths.loadRecord() else {
                FileHandle.standardError.write(Data("airlock _init: no sandbox record for \(name)\n".utf8))
                return 1
            }
            let driver = RuntimeDriver(
                kind: RuntimeDriver.Kind(rawValue: record.runtime) ?? .runc, stateRoot: paths.runtimeRoot)
            return SandboxInit(
                paths: paths, name: name, imageRootfs: store.imagesDirectory + "/" + record.image + "/rootfs",
                driver: driver
            ).run()
        default:
            return nil
        }
    }
}
