import AirlockImages
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `airlock save`: a stopped sandbox's filesystem as an image, for a template or a file.
///
/// The image is the sandbox's image with its own layer over it, read through a read-only
/// overlay of the two (mounted in a user namespace, which owns the layer's files), as one
/// layer. Never in it: the workspace and the other mounts (only their mount points were ever
/// in the layer, and those are left out), the home (a mount of its own, with the agent's
/// logins; the image's `/etc/skel` seeds a new sandbox's), Airlock's CA and the sandbox's
/// `/etc` files (mounts too), `/tmp` (memory). File capabilities and other extended
/// attributes are not kept.
public struct SandboxSave {
    let sandboxes: Sandboxes

    public init(sandboxes: Sandboxes) {
        self.sandboxes = sandboxes
    }

    public enum Output: Sendable {
        /// A template of this name, usable by `run --template`.
        case template(String)
        /// An OCI archive file that `docker load` reads.
        case archive(String)
    }

    public struct Result: Sendable {
        /// The template's name or the file's path.
        public var saved: String
        public var bytes: Int64
        public var seconds: Double
    }

    public func save(_ name: String, to output: Output, log: @escaping @Sendable (String) -> Void) throws -> Result {
        let store = sandboxes.store
        let paths = store.sandbox(name)
        let record = try sandboxes.record(name)
        guard record.disposable == nil else {
            throw AirlockError(.unsupported, "\(name) is a program's disposable sandbox; it cannot be saved")
        }
        let lowerRoot = store.imageRootfs(record.image)
        guard Files.isDirectory(lowerRoot) else {
            throw AirlockError(.notFound, "the image of sandbox \(name) is gone; there is nothing to save it over")
        }
        switch output {
        case .template(let template):
            try Self.checkNewTemplate(template, catalog: sandboxes.templates)
        case .archive(let file):
            let parent = SandboxCopy.split(file).parent
            guard Files.isDirectory(parent) else { throw AirlockError(.notFound, "no directory \(parent) for \(file)") }
            if Files.isDirectory(file) && !Files.isSymbolicLink(file) {
                throw AirlockError(.conflict, "\(file) is a directory; name the file to write")
            }
        }
        let saved = store.root + "/saved"
        try Files.makeDirectory(saved, mode: 0o700)
        Self.removeAbandonedStaging(in: saved)
        let staging = saved + "/.staging-\(getpid())"
        Files.remove(staging)
        try Files.makeDirectory(staging + "/mnt")
        let namespace = try UserNamespace(identity: try SandboxIdentity.current())
        defer {
            namespace.close()
            try? FileManager.default.removeItem(atPath: staging)
        }
        let started = Monotonic.now()
        do {
            let lock = try sandboxes.lockStopped(name, for: "saved")
            defer { lock.release() }
            log("reading sandbox \(name): its image and its own layer")
            let excluded = Self.mountPoints(record, paths: paths, lowerRoot: lowerRoot).flatMap {
                ["--exclude", "." + $0]
            }
            try namespace.run(
                [
                    "sh", "-c",
                    #"""
                    set -e
                    mount -t overlay overlay -o "ro,userxattr,lowerdir=$1:$2" "$3"
                    shift 3
                    status=0
                    tar -c -f "$1" --numeric-owner --anchored --no-wildcards "$@" -C "$(dirname "$1")/mnt" . || status=$?
                    umount "$(dirname "$1")/mnt"
                    exit $status
                    """#, "airlock-save", paths.upper, lowerRoot, staging + "/mnt", staging + "/layer.tar",
                ] + excluded, what: "reading sandbox \(name)")
        }
        let layerBytes = Files.size(staging + "/layer.tar") ?? 0
        log(String(format: "[%5.1fs] %@ read; writing the image", Monotonic.now() - started, Self.shown(layerBytes)))
        var settings = OCIArchiveWriter.Settings(
            tag: "airlock/\(name):latest", createdBy: "airlock save \(name) (agent \(record.agent))")
        if Files.exists(lowerRoot + "/bin/bash") { settings.cmd = ["/bin/bash"] }
        settings.workingDir = record.workingDir
        switch output {
        case .archive(let file):
            let digest = try OCIArchiveWriter.layout(
                layer: staging + "/layer.tar", into: staging + "/layout", settings: settings)
            let partial = file + ".partial-" + randomToken().prefix(12)
            do {
                try OCIArchiveWriter.archive(layout: staging + "/layout", to: partial)
                guard rename(partial, file) == 0 else { throw SystemCallError("rename to \(file)", errno: errno) }
            } catch {
                Files.remove(partial)
                throw error
            }
            log("saved \(name) as \(file) (\(digest.prefix(19)))")
            return Result(saved: file, bytes: Files.size(file) ?? 0, seconds: Monotonic.now() - started)
        case .template(let template):
            settings.tag = "airlock-template/\(template):latest"
            let digest = try OCIArchiveWriter.layout(
                layer: staging + "/layer.tar", into: staging + "/layout", settings: settings)
            // Named by content too: a later template of the same name is another image.
            let layout = saved + "/\(template)-" + digest.dropFirst(7).prefix(12)
            guard rename(staging + "/layout", layout) == 0 else {
                throw SystemCallError("rename to \(layout)", errno: errno)
            }
            let catalog = sandboxes.templates.directory
            try Files.makeDirectory(catalog)
            let yaml = """
                # Saved by `airlock save \(name) \(template)` on \(ISO8601DateFormatter().string(from: Date())).
                name: \(template)
                description: sandbox \(name) (agent \(record.agent)) as saved
                from: oci:\(layout)

                """
            do {
                try Files.writeAtomically(catalog + "/\(template).yaml", yaml)
            } catch {
                try? FileManager.default.removeItem(atPath: layout)
                throw error
            }
            log("saved \(name) as template '\(template)'; use it with: airlock run --template \(template) AGENT")
            return Result(saved: template, bytes: layerBytes, seconds: Monotonic.now() - started)
        }
    }

    /// What a save that was killed left: `.staging-PID` of a process now gone.
    static func removeAbandonedStaging(in saved: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: saved)) ?? []
        where entry.hasPrefix(".staging-") {
            guard let pid = pid_t(entry.dropFirst(".staging-".count)), kill(pid, 0) != 0, errno == ESRCH else {
                continue
            }
            try? FileManager.default.removeItem(atPath: saved + "/" + entry)
        }
    }

    /// Refuses a name that is not a template name, or is one already.
    static func checkNewTemplate(_ name: String, catalog: TemplateCatalog) throws {
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9._-]{0,62}/) != nil else {
            throw AirlockError(
                .invalidArgument,
                "invalid template name '\(name)' (lower-case letters, digits, '.', '_', '-'; at most 63)")
        }
        if (try? catalog.find(name)) != nil {
            throw AirlockError(
                .conflict, "a template named '\(name)' already exists (`airlock template ls`); choose another")
        }
    }

    /// The mount points the sandbox's layer may hold for its workspace, its mounts and
    /// Airlock's own (the CA, `/etc/hosts`, ...; as its last start's runtime spec lists them),
    /// each as the top directory or file that was made only for it (absent from the image):
    /// `/home/me` for a workspace at `/home/me/src/app` when the image has `/home` alone.
    static func mountPoints(_ record: SandboxRecord, paths: SandboxPaths, lowerRoot: String) -> [String] {
        // lstat: a link in the image is not followed on the host.
        func inImage(_ path: String) -> Bool {
            var info = stat()
            return lstat(lowerRoot + path, &info) == 0
        }
        var targets = [record.workspace] + record.mounts.map(\.destination)
        if let data = FileManager.default.contents(atPath: paths.bundle + "/config.json"),
            let spec = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let mounts = spec["mounts"] as? [[String: Any]]
        {
            targets += mounts.compactMap { $0["destination"] as? String }.filter { $0.hasPrefix("/") && $0 != "/" }
        }
        return Array(Set(targets)).sorted()
            .filter { !inImage($0) }.map { target in
                var made = target
                var parent = SandboxCopy.split(target).parent
                while parent != "/" && !inImage(parent) {
                    made = parent
                    parent = SandboxCopy.split(parent).parent
                }
                return made
            }
    }

    static func shown(_ bytes: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary)
    }
}
