import AirlockState
import AirlockSystem
import Foundation

/// Clone mode: a private clone of the workspace for the agent, which the host fetches from as
/// the remote `airlock-<sandbox>`, so the agent's work comes back reviewed, never written
/// straight into the tree.
struct GitClone {
    let workspace: String
    let paths: SandboxPaths
    let name: String

    /// Where the read-only workspace appears inside.
    static let originPath = "/airlock/origin"

    /// Parts of the clone the host's git reads when it fetches: read-only inside, so the
    /// sandbox cannot make a fetch run its commands (`core.fsmonitor`, hooks, ...).
    static let protectedPaths = [".git/config", ".git/hooks"]

    var remote: String { "airlock-" + name }

    /// Refuses a workspace that is not the top of a git work tree.
    static func checkRepository(_ workspace: String) throws {
        _ = try Executables.require("git")
        let top = try ChildProcess.run(["git", "-C", workspace, "rev-parse", "--show-toplevel"])
        guard top.status == 0 else {
            throw AirlockError(.invalidArgument, "--clone needs a git repository, and \(workspace) is not one")
        }
        let root = top.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Files.absolute(root) == workspace else {
            throw AirlockError(
                .invalidArgument, "--clone needs the top of the repository: use \(root), not a directory inside it")
        }
    }

    /// Clones the workspace into the sandbox's state and adds the host remote.
    func create() throws {
        // No hard links: the clone's objects must not be the workspace's own files.
        let clone = try ChildProcess.run(["git", "clone", "--quiet", "--no-hardlinks", "--", workspace, paths.clone])
        guard clone.status == 0 else {
            throw AirlockError(.failed, "cannot clone \(workspace) for clone mode: \(clone.lastErrorLine)")
        }
        try Files.makeDirectory(paths.clone + "/.git/hooks")
        let existing = try ChildProcess.run(["git", "-C", workspace, "remote", "get-url", remote])
        let verb = existing.status == 0 ? "set-url" : "add"
        let added = try ChildProcess.run(["git", "-C", workspace, "remote", verb, remote, paths.clone])
        guard added.status == 0 else {
            throw AirlockError(.failed, "cannot add the git remote \(remote) to \(workspace): \(added.lastErrorLine)")
        }
    }

    /// Takes the remote away again (the clone goes with the sandbox's files).
    func removeRemote() {
        let url = try? ChildProcess.run(["git", "-C", workspace, "remote", "get-url", remote])
        guard let url, url.status == 0, url.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == paths.clone
        else { return }
        _ = try? ChildProcess.run(["git", "-C", workspace, "remote", "remove", remote])
    }
}
