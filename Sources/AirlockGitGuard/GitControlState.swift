/// Which files in a git directory decide what git runs, and what a sandboxed writer may do to
/// each: the model behind the filter in front of `.git`.
///
/// Git runs what its control state names: `config` (fsmonitor, hooksPath, pager, aliases,
/// includes, remote helpers), `hooks/`, `commondir` (which moves config and hooks elsewhere),
/// `info/attributes` (filter drivers), `objects/info/alternates`, and the same again in every nested git directory: `modules/<name>/` of
/// submodules and `worktrees/<id>/` of linked worktrees. The state of an operation in progress
/// runs something too when the user continues it: a rebase's todo list (`exec` lines) and the
/// merge strategy of a rebase or cherry-pick (`git merge-<strategy>`, a path if it has a
/// slash). Everything else (objects, refs, logs, the index, HEAD, lock files) is data that git
/// reads but never executes.
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
        /// Written only with content that ``GitCheckedContent`` accepts: config files, a
        /// linked worktree's pointers, a rebase's todo list and strategy.
        case checked(CheckedFile)
        /// Hooks, `commondir` of the main directory, attributes, alternates: never written.
        case control

        /// Which reading of an ambiguous path wins: the most guarded.
        var strictness: Int {
            switch self {
            case .data: 0
            case .controlDirectory: 1
            case .checked(let file): file == .config ? 3 : 2
            case .control: 4
            }
        }
    }

    /// A file whose content decides what git runs, checked before it is written.
    public enum CheckedFile: String, Equatable, Sendable {
        /// A repository's configuration (see ``GitConfigSafety``).
        case config
        /// `worktrees/<id>/commondir` and `gitdir`, as `git worktree add` writes them.
        case commondir, gitdir
        /// `rebase-merge/git-rebase-todo`, `sequencer/todo`: no `exec` lines.
        case todo
        /// `rebase-merge/strategy`: a merge strategy's name, never a path.
        case strategy
        /// `sequencer/opts`: a config file whose `options.strategy` is a name.
        case sequencerOptions

        /// May be written in place (git writes these so, or an editor does the todo list); config
        /// files only by a rename from a lock file, whose whole content is checked at once.
        public var writtenInPlace: Bool {
            switch self {
            case .commondir, .gitdir, .strategy, .todo: true
            case .config, .sequencerOptions: false
            }
        }
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
            // A file where only a nested git directory can be (`worktrees/config`): git makes
            // none, and a commondir of "../" would read it as a config.
            readings = files.isEmpty ? [Location(kind: .controlDirectory, nested: true)] : files
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
        // Every length of module name: git takes any (`a/refs/x` is a name it accepts).
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
            return .checked(.config)
        case "config.worktree" where path.count == 1:
            return .control
        case "commondir", "gitdir":
            if path.count == 1 && linkedWorktree { return .checked(first == "commondir" ? .commondir : .gitdir) }
            return .control
        case "rebase-merge", "rebase-apply", "sequencer":
            // The directory itself: made and removed by git, never moved into place ready-made.
            if path.count == 1 { return .controlDirectory }
            guard path.count == 2 else { return .data }
            switch (first, path[1]) {
            case ("rebase-merge", "git-rebase-todo"), ("sequencer", "todo"): return .checked(.todo)
            case ("rebase-merge", "strategy"), ("rebase-apply", "strategy"): return .checked(.strategy)
            case ("sequencer", "opts"): return .checked(.sequencerOptions)
            default: return .data
            }
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
            // Legacy remote definitions: a URL, as `remote.*.url` (which a sandbox may set);
            // data, so that `refs/remotes/…` under a module's every reading stays writable.
            return .data
        default:
            return .data
        }
    }

    /// An operation a writer asks for, with the paths' components relative to the top git
    /// directory.
    public enum Operation: Equatable, Sendable {
        case createFile([String])
        case createDirectory([String])
        case createSymlink([String], target: String)
        case createSpecial([String])
        /// Opening for writing, or truncating.
        case write([String])
        case changeMode([String])
        case remove([String], isDirectory: Bool)
        case rename(from: [String], to: [String], isDirectory: Bool)
        case hardLink(from: [String], to: [String])
    }

    /// What the filter does with an operation.
    public enum Decision: Equatable, Sendable {
        case allow
        /// Allowed; the file's content is checked as it is written.
        case allowChecked(CheckedFile)
        /// A rename onto a checked file: allowed if the new content passes.
        case checkRename(CheckedFile)
        case refuse(String)
    }

    /// Decides one operation.
    public static func decide(_ operation: Operation) -> Decision {
        switch operation {
        case .createSymlink(let path, let target):
            // The host's git writes through a link as readily as it reads (COMMIT_EDITMSG,
            // logs/HEAD, FETCH_HEAD, the index's lock): none, but git init's probe, a
            // "tXXXXXX" at a git directory's top that points at "testing".
            let location = classify(path, isFile: true)
            guard target == "testing", let last = path.last, isProbeName(last), location.kind == .data,
                path.count == 1 || location.nested
            else { return .refuse("a symbolic link at \(describe(path))") }
            return .allow
        case .changeMode(let path):
            // A hook's mode decides whether it runs; no other file's does.
            return classify(path, isFile: true).kind == .control
                ? .refuse("changing the mode of \(describe(path))") : .allow
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
            case .checked(let file) where file.writtenInPlace: return .allowChecked(file)
            case .checked: return .refuse("writing \(describe(path)) in place (git replaces it by a rename)")
            case .controlDirectory: return .refuse("a file in place of \(describe(path))")
            case .control: return .refuse("writing \(describe(path))")
            }
        case .remove(let path, let isDirectory):
            let location = classify(path, isFile: !isDirectory)
            // Nested git directories come and go with `worktree prune` and submodule removal;
            // removing control state can only make git run less (the main config is kept for
            // the user's sake). A directory goes only empty.
            switch location.kind {
            case _ where location.nested || isDirectory: return .allow
            case .data: return .allow
            case .checked(let file) where file != .config: return .allow
            default: return .refuse("removing \(describe(path))")
            }
        case .rename(let from, let to, let isDirectory):
            let source = classify(from, isFile: !isDirectory)
            guard source.kind == .data else { return .refuse("moving \(describe(from))") }
            let target = classify(to, isFile: !isDirectory)
            switch target.kind {
            case .data:
                return .allow
            case .checked(let file) where !isDirectory:
                return .checkRename(file)
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

    /// Whether a path (components under the top git directory) is the root of a nested git
    /// directory: `worktrees/<id>` or `modules/<name>`, through any nesting.
    public static func isNestedGitDirectory(_ components: [String]) -> Bool {
        guard components.count <= 24 else { return false }
        var readings: [Location] = []
        collectReadings(components[...], nested: false, linkedWorktree: false, into: &readings)
        return readings.contains { $0.isNestedRoot }
    }

    /// git's temporary names: "t" and six letters or digits.
    static func isProbeName(_ name: String) -> Bool {
        name.count == 7 && name.hasPrefix("t")
            && name.unicodeScalars.dropFirst().allSatisfy {
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
            }
    }

    static func describe(_ path: [String]) -> String {
        path.isEmpty ? "the git directory" : path.joined(separator: "/")
    }
}
