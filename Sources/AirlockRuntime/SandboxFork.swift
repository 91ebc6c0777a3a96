import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `airlock fork NAME NEW`: a second sandbox from the first one's files.
///
/// The new sandbox shares the image (read-only, by digest) and gets copies of what is the
/// sandbox's own: its layer (packages installed, files changed), its home, its network policy
/// layer and captured keys, its settings. Copies, not links: an overlay's upper files are
/// written in place, so a hard link would let one sandbox's writes reach the other's. On a
/// filesystem with reflinks (btrfs, XFS) the copy shares blocks until either side writes;
/// elsewhere it costs what the bytes do. Not copied: published ports (their host ports are the
/// first sandbox's), logs, the guard's journal and quarantine, anything of a running start.
public struct SandboxFork {
    let sandboxes: Sandboxes

    public init(sandboxes: Sandboxes) {
        self.sandboxes = sandboxes
    }

    public struct Result: Sendable {
        public let record: SandboxRecord
        /// Bytes of the first sandbox's layer, home and Docker storage that were copied.
        public let bytes: Int64
        public let seconds: Double
    }

    /// Forks `name` into `newName`, at `workspace` (default: the same one).
    public func fork(_ name: String, into newName: String, workspace: String?) throws -> Result {
        let store = sandboxes.store
        let source = store.sandbox(name)
        var record = try sandboxes.record(name)
        try Sandboxes.validate(name: newName)
        guard record.disposable == nil else {
            throw AirlockError(.unsupported, "\(name) is a program's disposable sandbox; it cannot be forked")
        }
        guard record.clone != true else {
            throw AirlockError(
                .unsupported,
                "\(name) is in clone mode, whose clone is a git remote of the workspace; create a new clone-mode sandbox instead"
            )
        }
        if let workspace {
            let path = Files.absolute(workspace)
            guard Files.isDirectory(path) else {
                throw AirlockError(.notFound, "workspace \(workspace) does not exist or is not a directory")
            }
            try Sandboxes.checkWorkspace(path)
            try sandboxes.checkOutsideStateStore(path, what: "workspace")
            record.workspace = path
        }
        let target = store.sandbox(newName)
        guard mkdir(target.directory, 0o700) == 0 else {
            if errno == EEXIST { throw AirlockError(.conflict, "a sandbox named '\(newName)' already exists") }
            throw AirlockError(
                .failed, "cannot create \(target.directory)", cause: SystemCallError("mkdir", errno: errno))
        }
        let started = Monotonic.now()
        let namespace: UserNamespace
        do {
            namespace = try UserNamespace(identity: try SandboxIdentity.current())
        } catch {
            Files.remove(target.directory)
            throw error
        }
        defer { namespace.close() }
        do {
            let lock = try sandboxes.lockStopped(name, for: "copied")
            defer { lock.release() }
            for dir in [target.work, target.bundle, target.etc] { try Files.makeDirectory(dir) }
            try Files.makeDirectory(target.runtimeRoot, mode: 0o700)
            // Inside the namespace: the layer and home hold files of the sandbox's ids.
            try namespace.run(
                ["cp", "-a", "--reflink=auto", "--", source.upper, target.upper], what: "copying the layer of \(name)")
            try namespace.run(
                ["cp", "-a", "--reflink=auto", "--", source.home, target.home], what: "copying the home of \(name)")
            // The Docker engine's images, layers and containers (overlay whiteouts and
            // user.overlay xattrs, which cp -a keeps).
            if Files.exists(DockerEngine.dataRoot(source)) {
                try namespace.run(
                    ["cp", "-a", "--reflink=auto", "--", DockerEngine.dataRoot(source), DockerEngine.dataRoot(target)],
                    what: "copying the Docker engine's storage of \(name)")
            }
            for (file, copy) in [(source.policy, target.policy), (source.credentials, target.credentials)]
            where Files.exists(file) {
                try FileManager.default.copyItem(atPath: file, toPath: copy)
                chmod(copy, 0o600)
            }
            record.name = newName
            record.created = Date()
            record.ports = nil
            try target.save(record)
        } catch {
            try? namespace.removeTree([target.directory])
            Files.remove(target.directory)
            throw error
        }
        let bytes =
            (try? namespace.run(
                ["du", "-s", "-B1", "--", target.upper, target.home]
                    + (Files.exists(DockerEngine.dataRoot(target)) ? [DockerEngine.dataRoot(target)] : []),
                what: "measuring"))
            .map { output in
                output.stdout.split(separator: "\n").compactMap {
                    $0.split(separator: "\t").first.flatMap { Int64($0) }
                }
                .reduce(0, +)
            } ?? 0
        return Result(record: record, bytes: bytes, seconds: Monotonic.now() - started)
    }
}
