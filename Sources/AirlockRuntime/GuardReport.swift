import AirlockGitGuard
import AirlockState
import AirlockSystem
import Foundation

/// What a session left for the user to look at: git writes the guard refused, repositories it
/// moved out of the workspace, and files that run on the host that changed. Shown after `run`
/// and `exec`, by `stop`, counted by `ls`, and in full by `airlock guard`.
public struct GuardReport: Codable, Sendable {
    public var events: [GuardJournal.Event]
    public var changedFiles: [HostRunFiles.Change]

    public var isEmpty: Bool { events.isEmpty && changedFiles.isEmpty }

    public init(events: [GuardJournal.Event], changedFiles: [HostRunFiles.Change]) {
        self.events = events
        self.changedFiles = changedFiles
    }

    /// The guard's events since `since` (all when nil), and the host-run files that differ from
    /// `baseline` (by default, as they were when the sandbox last started).
    public static func make(
        paths: SandboxPaths, record: SandboxRecord, since: Date? = nil, baseline: HostRunFiles.Snapshot? = nil,
        comparingFiles: Bool = true
    ) -> GuardReport {
        var events = GuardJournal(file: paths.guardJournal).events()
        if let since { events.removeAll { $0.time < since } }
        var changes: [HostRunFiles.Change] = []
        if comparingFiles && record.clone != true && record.disposable == nil,
            let before = baseline ?? HostRunFiles.Snapshot.load(from: paths.hostRunSnapshot)
        {
            changes = HostRunFiles.changes(from: before, to: HostRunFiles.snapshot(workspace: record.workspace))
        }
        return GuardReport(events: events, changedFiles: changes)
    }

    /// Lines for a person, or nil when there is nothing to say.
    public func text(name: String) -> String? {
        guard !isEmpty else { return nil }
        var lines: [String] = []
        let refused = events.filter { $0.kind == .refused }
        let quarantined = events.filter { $0.kind == .quarantined }
        if !refused.isEmpty {
            lines.append(
                "the git guard refused \(refused.count) write(s) to git's control state (nothing changed on the host):")
            for event in refused { lines.append("  refused  \(event.path): \(event.reason)") }
            lines.append(
                "  (to let an agent change a repository's git settings on purpose: --unprotect .git at create)")
        }
        if !quarantined.isEmpty {
            lines.append(
                "the git guard moved \(quarantined.count) new repository or .git file(s) out of the workspace:")
            for event in quarantined {
                lines.append("  moved    \(event.path) (\(event.reason)) to \(event.keptAt ?? "?")")
            }
            lines.append("  (look at them there; `airlock guard \(name) --restore PATH` puts one back once stopped)")
        }
        if let files = HostRunFiles.report(changedFiles) { lines.append(files) }
        return lines.joined(separator: "\n")
    }

    /// Puts a quarantined `.git` back where it was, if nothing is there now.
    public static func restore(_ path: String, paths: SandboxPaths) throws -> String {
        guard !paths.isRunning else {
            throw AirlockError(.busy, "stop the sandbox first: a repository restored while it runs is unguarded")
        }
        let events = GuardJournal(file: paths.guardJournal).events().filter { $0.kind == .quarantined }
        guard let event = events.last(where: { $0.path == path || $0.hostPath == path || $0.keptAt == path }),
            let kept = event.keptAt
        else {
            throw AirlockError(.notFound, "nothing was moved away from \(path) (see `airlock guard`)")
        }
        guard Files.exists(kept) || (try? FileManager.default.destinationOfSymbolicLink(atPath: kept)) != nil else {
            throw AirlockError(.notFound, "\(kept) is gone")
        }
        let destination = event.hostPath ?? event.path
        // Back to where it was, not through a link the sandbox put in its place since.
        let parent = (destination as NSString).deletingLastPathComponent
        guard Files.absolute(parent) == parent, Files.isDirectory(parent) else {
            throw AirlockError(
                .conflict, "\(parent) is no longer the directory it was (a symbolic link?); not restoring there")
        }
        var info = stat()
        guard lstat(destination, &info) != 0 else {
            throw AirlockError(.conflict, "\(destination) exists again; move it away first")
        }
        do {
            try FileManager.default.moveItem(atPath: kept, toPath: destination)
        } catch {
            throw AirlockError(.failed, "cannot move \(kept) back to \(destination): \(error.localizedDescription)")
        }
        return destination
    }
}
