/// Which files in a git directory decide what git runs, and what a sandboxed writer may do to
/// each: the model behind the filter in front of `.git`.
///
/// Git runs what its control state names: `config` (fsmonitor, hooksPath, pager, aliases,
/// includes, remote helpers), `hooks/`, `commondir` (which moves config and hooks elsewhere),
/// `info/attributes` (filter drivers), `objects/info/alternates`, legacy `branches/` and
/// `remotes/`, and the same again in every nested git directory: `modules/<name>/` of
/// submodules and `worktrees/<id>/` of linked worktrees. Everything else (objects, refs, logs,
/// the index, HEAD, lock files, rebase state) is data that git reads but never executes.
///
/// The classification is by name only, so it cannot depend on anything a writer changes later.
public enum GitControlState {
    /// What one path inside a git directory is.
    public enum Kind: Equatable, Sendable {
        /// Objects, refs, logs, the index, lock files: written freely.
        case data
        /// A directory whose move or replacement would move control state (`hooks`, `info`,
        /// `modules`, a nested git directory's root).
        case controlDirectory
        /// A configuration file: replaced only by a rename whose changes are all safe keys.
        case config
        /// A linked worktree's `commondir` or `gitdir`: written once with the one value git
        /// itself writes.
        case worktreeLink(WorktreeLink)
        /// Hooks, `commondir` of the main directory, attributes, alternates: never written.
        case control

        /// Which reading of an ambiguous path wins: the most guarded.
        var strictness: Int {
            switch self {
            case .data: 0
            case .controlDirectory: 1
            case .worktreeLink: 2
            case .config: 3
            case .control: 4
            }
        }
    }

    /// The two pointer files `git worktree add` writes into `worktrees/<id>/`.
    public enum WorktreeLink: String, Equatable, Sendable {
        case commondir, gitdir
    }

    /// Where a path lies: in the top git directory, or in a nested one.
    public struct Location: Equatable, Sendable {
        public var kind: Kind
        /// True inside `modules/…` or `worktrees/…`: a nested git directory git itself makes
        /// and removes (clone of a submodule, `worktree add`/`prune`).
        public var nested: Bool
        /// The root of a nested git directory (`modules/<name>`, `worktrees/<id>`).
        public var isNestedRoot = false
    }

    /// Classifies a path given as components relative to the top git directory.
    ///
    /// A submodule's name may have slashes, so under `modules/` a path can be read in several
    /// ways (`modules/a/b/config` is `b/config` of module `a`, or `config` of module `a/b`);
    /// the most guarded reading counts. A file is never a nested git directory's root.
    public static func classify(_ components: [String], isFile: Bool = false) -> Location {
        // Readings multiply with each `modules` in a path; git's own paths are far shorter.
        guard components.count <= 24 else { return Location(kind: .control, nested: true) }
        var readings: [Location] = []
        collectReadings(components[...], nested: false, linkedWorktree: false, into: &readings)
        if isFile {
            let files = readings.filter { !$0.isNestedRoot }
            readings = files.isEmpty ? [Location(kind: .data, nested: true)] : files
        }
        let strictest = readings.max { $0.kind.strictness < $1.kind.strictness }
        return Location(
            kind: strictest?.kind ?? .data, nested: readings.contains { $0.nested })
    }

    private static func collectReadings(
        _ rest: ArraySlice<String>, nested: Bool, linkedWorktree: Bool, into readings: inout [Location]
    ) {
        guard let first = rest.first, first == "modules" || first == "worktrees" else {
            readings.append(Location(kind: kindWithin(Array(rest), linkedWorktree: linkedWorktree), nested: nested))
            return
        }
        let inner = rest.dropFirst()
        guard !inner.isEmpty else {
            readings.append(Location(kind: .controlDirectory, nested: nested))
            return
        }
        if first == "worktrees" {
            let after = inner.dropFirst()
            if after.isEmpty {
                readings.append(Location(kind: .controlDirectory, nested: true, isNestedRoot: true))
            } else {
                collectReadings(after, nested: true, linkedWorktree: true, into: &readings)
            }
            return
        }
        // Every length of module name.
        for length in 1...inner.count {
            let after = inner.dropFirst(length)
            if after.isEmpty {
                readings.append(Location(kind: .controlDirectory, nested: true, isNestedRoot: true))
            } else {
                collectReadings(after, nested: true, linkedWorktree: false, into: &readings)
            }
        }
    }

    /// The kind of a path relative to one git directory (not through modules/ or worktrees/).
    static func kindWithin(_ path: [String], linkedWorktree: Bool) -> Kind {
        guard let first = path.first else { return .controlDirectory }
        switch first {
        case "config" where path.count == 1:
            return .config
        case "config.worktree" where path.count == 1:
            return .control
        case "commondir", "gitdir":
            if path.count == 1 && linkedWorktree {
                return .worktreeLink(first == "commondir" ? .commondir : .gitdir)
            }
            return .control
        case "hooks":
            if path.count == 1 { return .controlDirectory }
            // Sample hooks (copied from git's templates) never run.
            return path.count == 2 && path[1].hasSuffix(".sample") ? .data : .control
        case "info":
            if path.count == 1 { return .controlDirectory }
            return path.count == 2 && path[1] == "attributes" ? .control : .data
        case "objects":
            if path.count == 1 { return .controlDirectory }
            if path[1] == "info" {
                if path.count == 2 { return .controlDirectory }
                if path.count == 3 && (path[2] == "alternates" || path[2] == "http-alternates") { return .control }
            }
            return .data
        case "branches", "remotes":
            return path.count == 1 ? .controlDirectory : .control
        default:
            return .data
        }
    }

    /// An operation a writer asks for, with the paths' components relative to the top git
    /// directory.
    public enum Operation: Equatable, Sendable {
        case createFile([String])
        case createDirectory([String])
        case createSymlink([String])
        case createSpecial([String])
        /// Opening for writing, truncating, or changing the mode.
        case write([String])
        case remove([String], isDirectory: Bool)
        case rename(from: [String], to: [String], isDirectory: Bool)
        case hardLink(from: [String], to: [String])
    }

    /// What the filter does with an operation.
    public enum Decision: Equatable, Sendable {
        case allow
        /// Allowed; the file's content is checked as it is written.
        case allowChecked(WorktreeLink)
        /// A rename onto a config file: allowed if the new content's changes are all safe.
        case checkConfig
        case refuse(String)
    }

    /// Decides one operation.
    public static func decide(_ operation: Operation) -> Decision {
        switch operation {
        case .createSymlink(let path):
            return .refuse("a symbolic link in a git directory (\(describe(path)))")
        case .createSpecial(let path):
            return .refuse("a device or pipe in a git directory (\(describe(path)))")
        case .createDirectory(let path):
            switch classify(path).kind {
            case .data, .controlDirectory: return .allow
            default: return .refuse("a directory in place of \(describe(path))")
            }
        case .createFile(let path), .write(let path):
            switch classify(path, isFile: true).kind {
            case .data: return .allow
            case .worktreeLink(let link): return .allowChecked(link)
            case .config: return .refuse("writing \(describe(path)) in place (git replaces it by a rename)")
            case .controlDirectory: return .refuse("a file in place of \(describe(path))")
            case .control: return .refuse("writing \(describe(path))")
            }
        case .remove(let path, let isDirectory):
            let location = classify(path, isFile: !isDirectory)
            // Nested git directories come and go with `worktree prune` and submodule removal;
            // removing control state can only make git run less. A directory goes only empty.
            if location.nested || location.kind == .data || isDirectory { return .allow }
            return .refuse("removing \(describe(path))")
        case .rename(let from, let to, let isDirectory):
            let source = classify(from, isFile: !isDirectory)
            guard source.kind == .data else { return .refuse("moving \(describe(from))") }
            let target = classify(to, isFile: !isDirectory)
            switch target.kind {
            case .data:
                return .allow
            case .config where !isDirectory:
                return .checkConfig
            default:
                return .refuse("moving a \(isDirectory ? "directory" : "file") to \(describe(to))")
            }
        case .hardLink(let from, let to):
            guard classify(from, isFile: true).kind == .data, classify(to, isFile: true).kind == .data else {
                return .refuse("a hard link between \(describe(from)) and \(describe(to))")
            }
            return .allow
        }
    }

    static func describe(_ path: [String]) -> String {
        path.isEmpty ? "the git directory" : path.joined(separator: "/")
    }
}
