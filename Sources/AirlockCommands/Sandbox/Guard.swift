import AirlockGitGuard
import AirlockRuntime
import ArgumentParser
import Foundation

struct Guard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard",
        abstract: "Show what the guard kept from reaching the host: git writes, new repositories, changed files.",
        discussion: """
            While a sandbox runs, every .git in its workspace sits behind a filter: the agent can \
            commit, branch, rebase, stash, add worktrees and update submodules, but not write what \
            makes git run a program on the host (hooks, fsmonitor or pager settings, includes, \
            commondir, attributes, alternates). A repository made while it runs (git init, git \
            clone) gets a filter of its own; one that already holds something git would run, or a \
            .git file that leads elsewhere, is moved to the sandbox's quarantine at once. Files the \
            host runs later (.envrc, Makefile, package.json scripts, \
            CI workflows, editor settings) are compared with how they were at the start.

            Example: airlock guard shell-myproject
                     airlock guard shell-myproject --restore /home/me/proj/vendor/lib/.git
            """)

    @Argument(help: "The sandbox name.")
    var name: String

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Put a quarantined .git back where it was (the sandbox must be stopped).")
    var restore: String?

    @Flag(help: "Forget the guard's events once you have looked at them.")
    var clear = false

    func run() throws {
        let context = Context()
        let record = try context.sandboxes.record(name)
        let paths = context.store.sandbox(name)
        if let restore {
            let path = try GuardReport.restore(restore, paths: paths)
            context.sandboxes.log("restored \(path)")
            return
        }
        let report = GuardReport.make(paths: paths, record: record)
        if json {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(
                report.text(name: name) ?? "nothing to review: the guard refused nothing and no host-run file changed")
        }
        if clear { try? FileManager.default.removeItem(atPath: paths.guardJournal) }
    }
}

/// A command run in a sandbox (`run`, `exec`), followed by what the guard saw during it.
struct GuardedSession {
    let context: Context
    let name: String
    /// Compare the host-run files before and after too. Two walks of the workspace: for a
    /// session a person watches, not for each of a script's quick commands (those changes are
    /// reported by `stop` and `airlock guard`, against the start).
    var comparesFiles = true

    func run(_ body: () throws -> Int32) throws -> Int32 {
        let record = try context.sandboxes.record(name)
        let paths = context.store.sandbox(name)
        let started = Date()
        // In clone mode the workspace is read-only inside: nothing of it can change.
        let before =
            record.clone == true || !comparesFiles ? nil : HostRunFiles.snapshot(workspace: record.workspace)
        let status = try body()
        let report = GuardReport.make(
            paths: paths, record: record, since: started, baseline: before, comparingFiles: before != nil)
        if let text = report.text(name: name) { context.sandboxes.log(text) }
        return status
    }
}
