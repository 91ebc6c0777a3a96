import AirlockExecAgent
import AirlockImages
import AirlockOCI
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// The internal commands `_supervise` (the per-sandbox supervisor, started by `run`) and
/// `_init` (pid 1 of a sandbox's pid namespace, started by the supervisor). They are not for
/// users and bypass ArgumentParser: they run on every sandbox start, and its reflection costs
/// more than the rest of their start-up together.
enum InternalCommand {
    /// Runs `_supervise` or `_init` (`airlock _NAME --state DIR SANDBOX`); nil for anything else.
    static func run(_ arguments: [String]) -> Int32? {
        if arguments.count == 6, arguments[1] == "_exec-agent", arguments[2] == "--state" {
            return execAgent(StateStore(root: arguments[3]).sandbox(arguments[4]), containerPID: arguments[5])
        }
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
            return SandboxInit(
                paths: paths, name: name, imageRootfs: store.imageRootfs(record.image),
                driver: RuntimeDriver(record: record, paths: paths), record: record
            ).run()
        case "_git-filter-mount":
            // In the sandbox init's namespaces, for the supervisor (GitGuardPlan): the mount's
            // /dev/fuse goes back over descriptor 3.
            do {
                let device = try GitGuardPlan.mountFilter(at: name)
                try DescriptorPassing.send([device], over: 3)
                return 0
            } catch {
                FileHandle.standardError.write(Data("airlock _git-filter-mount: \(error)\n".utf8))
                return 1
            }
        case "_flatten-image":
            // In a user namespace with the sandbox's id map (PulledImageRootfs): the layers'
            // roots arrive on standard input, bottom first (then `workdir:PATH`, the image's
            // WorkingDir); the account goes out as JSON.
            do {
                let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                let lines = input.split(separator: "\n").map(String.init)
                let workingDir = lines.first { $0.hasPrefix("workdir:") }.map { String($0.dropFirst(8)) }
                let layers = lines.filter { !$0.hasPrefix("workdir:") }
                let user = try PulledImageRootfs.make(rootfs: name, layers: layers, workingDir: workingDir)
                print(String(decoding: try JSONEncoder().encode(user), as: UTF8.self))
                return 0
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                return 1
            }
        case "_unpack-layer":
            // In a user namespace with the sandbox's id map (LayerStore): the layer's tar
            // arrives on standard input, uncompressed.
            do {
                let summary = try LayerUnpacker.unpack(from: 0, into: name, setOwners: true)
                print("\(summary.entries) \(summary.bytes) \(summary.devicesSkipped) \(summary.digest)")
                return 0
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                return 1
            }
        default:
            return nil
        }
    }

    /// `_exec-agent --state DIR SANDBOX CONTAINER-PID`: the sandbox's exec agent, started by its
    /// init (``ExecAgentServer``). With `-` for the pid, it prepares while the runtime starts
    /// the container and reads the pid from standard input once it runs.
    static func execAgent(_ paths: SandboxPaths, containerPID: String) -> Int32 {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: paths.bundle + "/config.json"))
            let config = try JSONDecoder().decode(RuntimeSpec.self, from: data)
            let given = containerPID == "-" ? readLine(strippingNewline: true) : containerPID
            guard let given, let pid = pid_t(given) else {
                throw AirlockError(.invalidArgument, "no container pid: \(given ?? "none came")")
            }
            try ExecAgentServer(containerPID: pid, socket: paths.execSocket, config: config).run()
        } catch {
            FileHandle.standardError.write(Data("airlock _exec-agent: \(error)\n".utf8))
            return 1
        }
    }
}
