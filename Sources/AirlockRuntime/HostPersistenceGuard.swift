import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Files in the workspace that run on the host later (editor tasks and settings, agents' project
/// settings with hooks) are read-only inside the sandbox: a sandboxed agent must not leave
/// behind something the user's own tools will run unsandboxed. Git's control state is the
/// ``GitGuardPlan``'s.
///
/// At each start the workspace is searched (to `maxDepth`, skipping dependency trees) and each
/// such path is bound read-only over itself. The editor and agent directories at the top are
/// made (empty) when missing, so the sandbox cannot create them either; the supervisor removes
/// those it made, if still empty, when the sandbox stops. What cannot be guarded before it
/// exists (a new `.mcp.json`) is listed by ``HostRunFiles`` after
/// the session.
public enum HostPersistenceGuard {
    /// Directories read-only as a whole, relative to any directory of the workspace: git hooks,
    /// editor tasks and settings, and the agents' project settings (which can hold hooks and
    /// MCP servers that run commands).
    /// Git's own control state is the ``GitGuardPlan``'s.
    static let directories = [".vscode", ".idea", ".claude", ".gemini", ".cursor", ".kiro"]
    /// Single files read-only, relative to any directory of the workspace.
    static let files = [".mcp.json"]
    /// Made at the workspace's top when missing.
    static let madeWhenMissing = [".vscode", ".idea", ".claude", ".gemini", ".cursor", ".kiro"]
    /// Not searched: dependency trees, which nobody opens in an editor.
    static let skipped: Set<String> = ["node_modules", ".venv", "venv", "__pycache__", ".tox", "target", ".gradle"]
    static let maxDepth = 6

    /// The host paths to bind read-only over themselves, for a workspace, and the directories
    /// made for that (to remove again once the sandbox stops, if still empty).
    public static func protectedPaths(workspace: String, unprotected: [String] = []) -> (
        paths: [String], made: [String]
    ) {
        let opened = Set(unprotected.map { Files.absolute($0.hasPrefix("/") ? $0 : workspace + "/" + $0) })
        var made: [String] = []
        for name in madeWhenMissing where !opened.contains(workspace + "/" + name) {
            let path = workspace + "/" + name
            if !Files.exists(path) && !isSymlink(path) && mkdir(path, 0o755) == 0 { made.append(path) }
        }
        var found: [String] = []
        forEachDirectory(in: workspace) { directory, names in
            for relative in directories + files where names.contains(firstComponent(relative)) {
                let path = directory + "/" + relative
                // A symlink is left alone: binding it would bind whatever it points at.
                guard Files.exists(path), Files.absolute(path) == path, !opened.contains(path) else { continue }
                found.append(path)
            }
        }
        return (found, made)
    }

    /// Removes the directories a start made, where they are still empty.
    public static func removeMade(listedIn file: String) {
        guard let text = try? Files.read(file) else { return }
        for path in text.split(separator: "\n") { rmdir(String(path)) }
        Files.remove(file)
    }

    /// Visits the workspace and its directories, breadth first to `maxDepth`, in name order,
    /// each with the names in it (so that a visitor looks up only what is there); not into
    /// `.git`, dependency trees or symlinks.
    static func forEachDirectory(in workspace: String, _ visit: (String, Set<String>) -> Void) {
        var queue = [(workspace, 0)]
        var next = 0
        while next < queue.count {
            let (directory, depth) = queue[next]
            next += 1
            let entries = Files.entries(of: directory)
            visit(directory, Set(entries.map(\.name)))
            guard depth < maxDepth else { continue }
            for entry in entries.sorted(by: { $0.name < $1.name })
            where entry.kind == .directory && entry.name != ".git" && !skipped.contains(entry.name) {
                queue.append((directory + "/" + entry.name, depth + 1))
            }
        }
    }

    /// `.git` of `.git/hooks`.
    static func firstComponent(_ relative: String) -> String {
        String(relative.prefix { $0 != "/" })
    }

    static func isSymlink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }
}
