import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where one image build works, and how it dies with the command that runs it.
///
/// mmdebstrap builds the tree in a temporary directory under `TMPDIR`, owned by the user's
/// subordinate ids (so the user cannot delete it directly), with tar, apt and dpkg as its
/// children. A build gets its own directory, `/tmp/airlock-builds-UID/build-PID-XXXXXX`, with a
/// lock held for as long as the build runs; and its processes run in a process group of their
/// own led by a shell that kills the whole group when the command dies (`PR_SET_PDEATHSIG`),
/// however it dies. What a killed build still left, ``BuildLeftovers`` finds and removes.
public struct BuildScratch {
    public let directory: String
    private let lock: FileLock

    /// Makes the directory for a build by this process and takes its lock.
    public init() throws {
        let parent = try BuildLeftovers.scratchParent(create: true)
        var template = Array((parent + "/build-\(getpid())-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemCallError("mkdtemp in \(parent)", errno: errno) }
        directory = String(cString: made)
        // mmdebstrap's root (a subordinate id) must reach its tree below.
        chmod(directory, 0o755)
        lock = try FileLock(path: directory + ".lock")
        guard lock.tryAcquire() else { throw AirlockError(.busy, "\(directory) is in use") }
    }

    /// `argv` in a process group of its own, led by a shell that kills the group when this
    /// process dies (or at the end, so nothing the build started outlives it).
    public func contained(_ argv: [String]) -> [String] {
        let script =
            #"trap 'kill -KILL 0' TERM; TMPDIR="$0" "$@" & wait $!; status=$?; "#
            + #"trap '' TERM; kill -TERM 0 2>/dev/null; exit $status"#
        return ["setpriv", "--pdeathsig", "SIGTERM", "--", "sh", "-c", script, directory] + argv
    }

    /// Removes the directory (with what the build's subordinate ids own in it) and its lock.
    public func remove(using namespace: UserNamespace) {
        try? namespace.removeTree([directory])
        Files.remove(directory + ".lock")
        lock.release()
    }
}

/// What killed builds left behind: scratch directories whose lock nobody holds, and in the
/// image store partial trees, tarballs and half-removed images whose recipe's build lock is
/// free. Swept before every build, and by `reset -f` and `doctor`.
public struct BuildLeftovers {
    public let store: StateStore
    public let identity: SandboxIdentity

    public init(store: StateStore, identity: SandboxIdentity) {
        self.store = store
        self.identity = identity
    }

    /// The directory for this user's build scratch space: made on first use, and refused if
    /// anything but the user's own plain directory is at that path (another user could have
    /// put something there first).
    static func scratchParent(create: Bool) throws -> String {
        let tmp = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let path = tmp + "/airlock-builds-\(getuid())"
        if create && mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw SystemCallError("mkdir \(path)", errno: errno)
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemCallError("stat \(path)", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid() else {
            throw AirlockError(.failed, "\(path) is not a directory of yours; remove it and try again")
        }
        chmod(path, 0o755)
        return path
    }

    /// Every leftover, with what it is, the path first. With `earlierVersions`, also the trees
    /// that builds by earlier versions left in `/tmp` itself: `mmdebstrap.*` owned by the
    /// user's subordinate root, untouched for a day. Only `reset -f` takes those, and only
    /// where no process uses them: the user may run mmdebstrap of their own.
    public func find(earlierVersions: Bool = false) -> [(path: String, what: String)] {
        var found: [(String, String)] = []
        if earlierVersions {
            for entry in Files.entries(of: "/tmp") where entry.name.hasPrefix("mmdebstrap.") {
                var info = stat()
                let path = "/tmp/" + entry.name
                guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == identity.hostRootUID,
                    Date().timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > 86400
                else { continue }
                found.append((path, Self.earlierVersion))
            }
        }
        if let parent = try? Self.scratchParent(create: false) {
            for entry in Files.entries(of: parent) where entry.name.hasPrefix("build-") {
                let path = parent + "/" + entry.name
                if entry.name.hasSuffix(".lock") {
                    let directory = String(path.dropLast(5))
                    if !Files.exists(directory) && !FileLock.isHeld(path: path) { found.append((path, "build lock")) }
                    continue
                }
                if !FileLock.isHeld(path: path + ".lock") { found.append((path, "scratch of a killed build")) }
            }
        }
        for entry in Files.entries(of: store.imagesDirectory) {
            let name = entry.name
            let kind: String
            if name.hasPrefix(".build-") {
                kind = "tarball of a killed build"
            } else if name.hasPrefix(".partial-") {
                kind = "partial image of a killed build"
            } else if name.hasPrefix(".removing-") {
                kind = "image whose removal was cut short"
            } else {
                continue
            }
            let digest = name.split(separator: "-").dropFirst().first.map(String.init) ?? ""
            let lock = store.imagesDirectory + "/." + digest + ".lock"
            if !FileLock.isHeld(path: lock) { found.append((store.imagesDirectory + "/" + name, kind)) }
        }
        return found
    }

    /// Removes what ``find()`` finds; returns what it removed. Processes of a killed build that
    /// still use its scratch or partial image are killed first.
    @discardableResult
    public func sweep(earlierVersions: Bool = false) throws -> [(path: String, what: String)] {
        let candidates = find(earlierVersions: earlierVersions)
        guard !candidates.isEmpty else { return [] }
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        // An earlier version's tree that something still uses is not a leftover: it stays.
        let older: [String] = candidates.filter { $0.what == Self.earlierVersion }.map { $0.path }
        let inUse = Set(users(of: older, in: namespace).map(\.path))
        let found = candidates.filter { !inUse.contains($0.path) }
        let trees: [String] = found.filter { $0.what != "build lock" && $0.what != Self.earlierVersion }.map { $0.path }
        let stragglers = users(of: trees, in: namespace).map(\.pid)
        if !stragglers.isEmpty {
            _ = try? namespace.run(
                ["kill", "-KILL"] + Set(stragglers).sorted(), what: "stopping what killed builds left running")
        }
        try namespace.removeTree(trees + older.filter { !inUse.contains($0) })
        for entry in found {
            Files.remove(entry.path)
            if entry.what == "scratch of a killed build" { Files.remove(entry.path + ".lock") }
        }
        return found
    }

    static let earlierVersion = "tree of a killed build by an earlier version"

    /// The processes that use `paths`: their working directory, root or an open file is there
    /// (tar and dpkg of a build killed before builds died with their command). Looked for as
    /// the namespace's root, which owns a build's processes and may read their descriptors.
    private func users(of paths: [String], in namespace: UserNamespace) -> [(pid: String, path: String)] {
        guard !paths.isEmpty else { return [] }
        let script = #"""
            for tree in "$@"; do
                find /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/fd -maxdepth 1 \( -lname "$tree" -o -lname "$tree/*" \) \
                    2>/dev/null | cut -d/ -f3 | sort -u | while read -r pid; do echo "$pid $tree"; done
            done
            true
            """#
        let output = try? namespace.run(["sh", "-c", script, "sh"] + paths, what: "looking for builds still running")
        return (output?.stdout ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 1)
            return fields.count == 2 ? (String(fields[0]), String(fields[1])) : nil
        }
    }
}
