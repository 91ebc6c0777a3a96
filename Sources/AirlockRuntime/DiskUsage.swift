import AirlockState
import AirlockSystem
import Foundation

/// What a sandbox takes on disk: its own layer (what it changed in the image, files owned by
/// subordinate ids, some unreadable to the user), the agent's home, its workspace and its Docker
/// engine's images and containers. Measured with `du` as the
/// root of a user namespace with the sandbox id map, which reads every one of them; not
/// crossing into other file systems.
public struct DiskUsage: Codable, Sendable, Equatable {
    public var layerBytes: Int64?
    /// The agent's home, kept beside the layer.
    public var homeBytes: Int64?
    public var workspaceBytes: Int64?
    /// The Docker engine's storage (`--docker`), nil without one.
    public var dockerBytes: Int64?

    public static func measure(_ record: SandboxRecord, paths: SandboxPaths, identity: SandboxIdentity) -> DiskUsage {
        let docker = DockerEngine.dataRoot(paths)
        let targets = [paths.upper, paths.home, record.workspace, docker].filter { Files.exists($0) }
        guard !targets.isEmpty, let namespace = try? UserNamespace(identity: identity) else { return DiskUsage() }
        defer { namespace.close() }
        // du exits 1 when something vanished or was unreadable: its figures still stand.
        let output = try? ChildProcess.run(namespace.enterPrefix + ["du", "-s", "-x", "-B1", "--"] + targets)
        var sizes: [String: Int64] = [:]
        for line in (output?.stdout ?? "").split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 1)
            if fields.count == 2, let bytes = Int64(fields[0]) { sizes[String(fields[1])] = bytes }
        }
        return DiskUsage(
            layerBytes: sizes[paths.upper], homeBytes: sizes[paths.home], workspaceBytes: sizes[record.workspace],
            dockerBytes: sizes[docker])
    }

    /// `12.3M`, as `ls --size` shows it.
    public static func text(_ bytes: Int64?) -> String {
        guard let bytes else { return "-" }
        let units = ["B", "K", "M", "G", "T"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)B" : String(format: value < 10 ? "%.1f" : "%.0f", value) + units[unit]
    }
}
