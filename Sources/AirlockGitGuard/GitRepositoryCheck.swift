import AirlockSystem
import Foundation

/// Whether a git directory's control state is what `git init` or `git clone` leaves: nothing
/// that makes git run a program. A new repository that passes is put behind a filter and kept;
/// one that does not is quarantined.
public enum GitRepositoryCheck {
    /// What in `gitDirectory` could make git run something, or nil when nothing does.
    public static func problem(in gitDirectory: String) -> String? {
        for name in [
            "commondir", "gitdir", "config.worktree", "info/attributes", "objects/info/alternates",
            "objects/info/http-alternates",
        ]
        where exists(gitDirectory + "/" + name) {
            return "has \(name)"
        }
        for directory in ["modules", "worktrees"]
        where !Files.entries(of: gitDirectory + "/" + directory).isEmpty {
            return "has \(directory)/ entries"
        }
        if let hook = Files.entries(of: gitDirectory + "/hooks").first(where: { !$0.name.hasSuffix(".sample") }) {
            return "has the hook \(hook.name)"
        }
        let config = gitDirectory + "/config"
        guard exists(config) else { return nil }
        guard let text = Files.readRegularFile(config, limit: 1 << 20) else {
            return "has a config that cannot be read"
        }
        let context = GitCheckedContent.Context(directory: gitDirectory, nested: false, roots: [])
        return GitConfigSafety.refusal(replacing: nil, with: text, context: context).map { "config: \($0)" }
    }

    /// Present in any form, a dangling symbolic link too.
    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
