import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Files in the workspace that the user's own tools run later, on the host and unsandboxed:
/// direnv on `cd`, npm scripts on install, make, pre-commit on commit, CI with the
/// repository's secrets. The sandbox may write them (they are the project's own files), so
/// `run` compares them before and after a session and lists what changed for review.
public enum HostRunFiles {
    /// Files that count, relative to any directory of the workspace.
    static let files = [
        ".envrc", "package.json", ".npmrc", ".yarnrc.yml", "Makefile", "makefile", "GNUmakefile", "justfile",
        "Justfile", "Taskfile.yml", ".pre-commit-config.yaml", "setup.py", "pyproject.toml", ".mise.toml",
        "mise.toml", ".gitlab-ci.yml", ".mcp.json", ".git/config",
    ]
    /// Directories whose every file counts (to three levels), relative to any directory. Those
    /// the guard makes read-only are here too, for the ones it could not guard: made during the
    /// session (a new repository's hooks, a nested `.claude`).
    static let directories = [
        ".github/workflows", ".husky", ".devcontainer", ".git/hooks", ".claude", ".gemini", ".cursor", ".kiro",
        ".vscode", ".idea",
    ]
    /// Contents are compared up to this size; past it, size and modification time.
    static let contentLimit = 1 << 20

    /// What a file was at one moment.
    struct Fingerprint: Equatable, Codable {
        var size: Int64
        var seconds: Int
        var nanoseconds: Int
        var contents: Data?

        static func == (a: Fingerprint, b: Fingerprint) -> Bool {
            if let left = a.contents, let right = b.contents { return left == right }
            return a.size == b.size && a.seconds == b.seconds && a.nanoseconds == b.nanoseconds
        }
    }

    /// The files that count, by path relative to the workspace.
    public struct Snapshot: Sendable, Codable {
        var files: [String: Fingerprint]

        /// Kept with the sandbox at start, for `airlock guard` and `stop` to compare with.
        public func save(to file: String) throws {
            try Files.writeAtomically(
                file, String(decoding: try JSONEncoder().encode(self), as: UTF8.self), mode: 0o600)
        }

        public static func load(from file: String) -> Snapshot? {
            guard let data = FileManager.default.contents(atPath: file) else { return nil }
            return try? JSONDecoder().decode(Snapshot.self, from: data)
        }
    }

    /// One file that was added, changed or removed.
    public struct Change: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable {
            case added, changed, removed
        }

        public var kind: Kind
        public var path: String
        /// For package.json: which scripts changed, or that none did.
        public var detail: String?
    }

    public static func snapshot(workspace: String) -> Snapshot {
        var found: [String: Fingerprint] = [:]
        let prefix = workspace.hasSuffix("/") ? workspace : workspace + "/"
        HostPersistenceGuard.forEachDirectory(in: workspace) { directory, names in
            let present = { (relative: String) in names.contains(HostPersistenceGuard.firstComponent(relative)) }
            for name in files where present(name) {
                let path = directory + "/" + name
                if let print = fingerprint(path) { found[String(path.dropFirst(prefix.count))] = print }
            }
            for name in directories where present(name) && Files.isDirectory(directory + "/" + name) {
                collect(directory + "/" + name, depth: 0, prefix: prefix, into: &found)
            }
        }
        return Snapshot(files: found)
    }

    private static func collect(
        _ directory: String, depth: Int, prefix: String, into found: inout [String: Fingerprint]
    ) {
        guard depth < 3, !HostPersistenceGuard.isSymlink(directory) else { return }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = directory + "/" + entry
            // git's sample hooks never run.
            if entry.hasSuffix(".sample") && directory.hasSuffix("/.git/hooks") { continue }
            if let print = fingerprint(path) {
                found[String(path.dropFirst(prefix.count))] = print
            } else if Files.isDirectory(path) {
                collect(path, depth: depth + 1, prefix: prefix, into: &found)
            }
        }
    }

    /// A regular file's fingerprint (not a symlink's: what it points at is not the workspace's).
    static func fingerprint(_ path: String) -> Fingerprint? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let contents = info.st_size <= contentLimit ? FileManager.default.contents(atPath: path) : nil
        return Fingerprint(
            size: Int64(info.st_size), seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec,
            contents: contents)
    }

    /// What changed from `before` to `after`, sorted by path.
    public static func changes(from before: Snapshot, to after: Snapshot) -> [Change] {
        var changes: [Change] = []
        for path in Set(before.files.keys).union(after.files.keys).sorted() {
            switch (before.files[path], after.files[path]) {
            case (nil, .some):
                changes.append(Change(kind: .added, path: path))
            case (.some, nil):
                changes.append(Change(kind: .removed, path: path))
            case (.some(let old), .some(let new)) where old != new:
                var change = Change(kind: .changed, path: path)
                if (path as NSString).lastPathComponent == "package.json" {
                    change.detail = scriptChanges(old.contents, new.contents)
                }
                changes.append(change)
            default:
                break
            }
        }
        return changes
    }

    /// Which npm scripts differ between two package.json files (nil when either is unreadable).
    static func scriptChanges(_ old: Data?, _ new: Data?) -> String? {
        func scripts(_ data: Data?) -> [String: String]? {
            guard let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                return nil
            }
            let scripts = object["scripts"] as? [String: Any] ?? [:]
            return scripts.mapValues { "\($0)" }
        }
        guard let before = scripts(old), let after = scripts(new) else { return nil }
        let names = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
        return names.isEmpty ? "scripts unchanged" : "scripts: " + names.joined(separator: ", ")
    }

    /// The report printed after a session, or nil when nothing changed.
    public static func report(_ changes: [Change]) -> String? {
        guard !changes.isEmpty else { return nil }
        var lines = [
            "files that run on this machine later (outside the sandbox) changed in this session; review them before you run them:"
        ]
        for change in changes {
            lines.append(
                "  \(change.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(change.path)"
                    + (change.detail.map { " (\($0))" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}
