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
    /// The git directory on the host.
    let root: String
    /// It as the sandbox sees it, for the content checks.
    let inside: String
    let worktreeRoots: [String]
    /// What is moved away if it was written past its filter: the `.git`, or the HEAD of a
    /// directory git takes for a repository.
    let movedAway: String
    init(root: String, inside: String, worktreeRoots: [String], movedAway: String) {
        self.movedAway = movedAway
        self.root = root
        self.inside = inside
        self.worktreeRoots = worktreeRoots
    }

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

    /// What makes the repository one the filter would not have let a writer make, or nil.
    func tampering() -> String? {
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
                    if let reason = GitCheckedContent.refusal(text, file: file, partial: false, context: context) {
                        return "has \(shown) that \(reason)"
                    }
                }
            }
        }
        return nil
    }
}
