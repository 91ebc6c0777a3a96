import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the files of ``GitControlState/CheckedFile`` may hold: nothing that makes git run a
/// program or look outside the guarded directories.
public enum GitCheckedContent {
    /// Where a checked file is, for the checks that depend on it.
    public struct Context: Sendable {
        /// The directory that holds the file, as the sandbox sees it.
        public var directory: String
        /// Inside a nested git directory (`modules/…`, `worktrees/…`).
        public var nested: Bool
        /// The guarded directory trees, as the sandbox sees them.
        public var roots: [String]

        public init(directory: String, nested: Bool, roots: [String]) {
            self.directory = directory
            self.nested = nested
            self.roots = roots
        }
    }

    /// Why `text` may not be the file's content, or nil. `partial`: the file is being written,
    /// so the start of an acceptable content passes too. `old`: what a config file held.
    public static func refusal(
        _ text: String, file: GitControlState.CheckedFile, partial: Bool, old: String? = nil, context: Context
    ) -> String? {
        switch file {
        case .commondir:
            // `git worktree add` writes exactly "../..\n": this git directory.
            let accepted = partial ? "../..\n".hasPrefix(text) : text == "../..\n" || text == "../.."
            return accepted ? nil : "commondir may only lead back to this repository"
        case .gitdir:
            return gitdirAccepted(text, roots: context.roots) ? nil : "gitdir may only name a place in the workspace"
        case .todo:
            // "exec CMD" and its short form "x CMD" run a shell command on `rebase --continue`.
            // Lines as git splits them: at each "\n" byte, with a "\r" before it dropped (not
            // Swift's characters, which take "\r\n" for one).
            for line in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: true) {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
                guard let first = words.first else { continue }
                let command = String(String.UnicodeScalarView(first))
                if command == "exec" || command == "x" { return "the todo list runs a command (\(command))" }
            }
            return nil
        case .strategy:
            return isStrategyName(text) ? nil : "a merge strategy may only be a name, never a path"
        case .sequencerOptions:
            guard let options = try? GitConfigFile(parsing: text) else { return "sequencer/opts cannot be read" }
            for entry in options.entries where entry.section == "options" && entry.name == "strategy" {
                if !isStrategyName(entry.value ?? "") { return "a merge strategy may only be a name, never a path" }
            }
            return nil
        case .config:
            return GitConfigSafety.refusal(replacing: old, with: text, context: context)
        }
    }

    /// `ort`, `recursive`, or a strategy of the user's own on PATH: a name, so git never runs a
    /// file of the workspace (`git merge-x/../evil`).
    static func isStrategyName(_ text: String) -> Bool {
        var name = Substring(text)
        if name.hasSuffix("\n") { name = name.dropLast() }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_"
        }
    }

    /// A path in a guarded tree (or the start of one), with no `.` or `..` step.
    static func gitdirAccepted(_ text: String, roots: [String]) -> Bool {
        var body = Substring(text)
        if body.hasSuffix("\n") { body = body.dropLast() }
        guard !body.contains("\n"), !body.contains("\r"), !body.contains("\0") else { return false }
        let parts = body.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(".."), !parts.contains(".") else { return false }
        guard roots.contains(where: { body.hasPrefix($0 + "/") }) else { return false }
        // `git worktree repair` on the host writes a .git file there: not through a link.
        let path = String(body)
        let resolved = resolvedOnDisk(path)
        return resolved == path || roots.contains { resolved.hasPrefix($0 + "/") }
    }

    /// `path` with every symbolic link on its way followed, as far as it exists; the rest as
    /// written (a link as the last existing step still counts).
    static func resolvedOnDisk(_ path: String) -> String {
        var existing = path
        var rest: [String] = []
        while existing != "/" && !existing.isEmpty {
            if let real = realpath(existing, nil) {
                defer { free(real) }
                let resolved = String(cString: real)
                return rest.isEmpty ? resolved : resolved + "/" + rest.reversed().joined(separator: "/")
            }
            rest.append((existing as NSString).lastPathComponent)
            existing = (existing as NSString).deletingLastPathComponent
        }
        return path
    }

    /// `path` with `.` and `..` steps resolved by name (no file system lookups).
    static func lexicallyResolved(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
