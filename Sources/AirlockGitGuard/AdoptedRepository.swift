import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A repository the guard put a filter in front of while the sandbox ran, looked at again
/// whenever its control state is touched on the host's side.
///
/// Before its filter was there the sandbox could open anything in it. A descriptor of that
/// moment (of the git directory, `hooks/`, a file) that no scan found, because it was in
/// flight in a unix socket, still writes past the filter. ``FreshCopy`` makes old descriptors
/// of files harmless. A directory's descriptor opens or makes a file, which inotify reports
/// (as it reports the filter's own work): an open has the sandbox's descriptors looked through
/// for one past the filter, and a write (seen when it is made, or when the last descriptor or
/// mapping of the file goes) has the control state checked against what the filter lets a
/// writer make. Either failing moves the repository away.
struct AdoptedRepository {
    /// The git directory, held (`O_PATH`): the sandbox can move it, by renaming a directory
    /// above it, and a path taken at adoption would then lead nowhere.
    let fd: Int32
    /// Whether it is a directory git takes for a repository by its content (not a `.git`):
    /// then its HEAD is what is moved away, not the directory.
    let movesHead: Bool
    let worktreeRoots: [String]

    init?(root: String, movesHead: Bool, worktreeRoots: [String]) {
        // O_PATH, which Glibc does not export to Swift.
        fd = open(root, 0o10_000_000 | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.movesHead = movesHead
        self.worktreeRoots = worktreeRoots
    }

    /// Where it is now on the host, or nil once it was removed.
    func currentRoot() -> String? {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
            path.hasPrefix("/"), !path.hasSuffix(" (deleted)")
        else { return nil }
        return path
    }

    /// What is moved away if it was written past its filter.
    func movedAway(from root: String) -> String { movesHead ? root + "/HEAD" : root }

    func close() { Glibc.close(fd) }

    /// The directories whose entries are control state (the top, `hooks`, `info`, `objects`
    /// and `objects/info`, nested git directories and an operation's state), by path under the
    /// root; data directories (refs, logs, object fans) are left out.
    static func controlDirectories(under root: String, from start: [String] = []) -> [[String]] {
        var found: [[String]] = []
        var queue = [start]
        while let components = queue.popLast() {
            found.append(components)
            let directory = ([root] + components).joined(separator: "/")
            for entry in Files.entries(of: directory) where entry.kind == .directory {
                let path = components + [entry.name]
                if GitControlState.classify(path).kind != .data { queue.append(path) }
            }
        }
        return found
    }

    /// What makes the repository (now at `root`, `inside` as the sandbox sees it) one the
    /// filter would not have let a writer make, or nil.
    func tampering(root: String, inside: String) -> String? {
        for directory in Self.controlDirectories(under: root) {
            let hostDirectory = ([root] + directory).joined(separator: "/")
            for entry in Files.entries(of: hostDirectory) where entry.kind != .directory {
                let path = directory + [entry.name]
                let shown = path.joined(separator: "/")
                let location = GitControlState.classify(path, isFile: true)
                switch location.kind {
                case .data:
                    continue
                case .control:
                    return "has \(shown), which its filter never writes"
                case .controlDirectory:
                    return "has a file at \(shown), where git keeps a directory"
                case .checked(let file):
                    var info = stat()
                    guard lstat(hostDirectory + "/" + entry.name, &info) == 0 else { continue }
                    guard (info.st_mode & S_IFMT) == S_IFREG else { return "has \(shown) that is not a plain file" }
                    guard let text = Files.readRegularFile(hostDirectory + "/" + entry.name, limit: 1 << 20) else {
                        return "has \(shown) that cannot be read"
                    }
                    let context = GitCheckedContent.Context(
                        directory: ([inside] + directory).joined(separator: "/"), nested: location.nested,
                        roots: worktreeRoots)
                    // `git worktree add` opens gitdir truncated, then writes it: the guard may
                    // look between the two. An empty gitdir names nothing, and git ignores it.
                    if file == .gitdir && text.isEmpty { continue }
                    if let reason = GitCheckedContent.refusal(text, file: file, partial: false, context: context) {
                        return "has \(shown) that \(reason)"
                    }
                }
            }
        }
        return nil
    }
}
