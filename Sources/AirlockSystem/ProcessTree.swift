import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The host's processes as `/proc` shows them: parents and sessions, in the host's pid numbering.
public struct ProcessTree: Sendable {
    public struct Entry: Sendable, Equatable {
        public var pid: Int32
        public var parent: Int32
        public var session: Int32
    }

    public var entries: [Entry]

    /// Reads every process now in `/proc`; processes that end while it reads are left out.
    public static func snapshot() -> ProcessTree {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var entries: [Entry] = []
        for name in names {
            guard let pid = Int32(name), let fields = ProcessStat.fields(of: pid), fields.count > 3,
                let parent = Int32(fields[1]), let session = Int32(fields[3])
            else { continue }
            entries.append(Entry(pid: pid, parent: parent, session: session))
        }
        return ProcessTree(entries: entries)
    }

    /// Every descendant of `pid`, nearest first.
    public func descendants(of pid: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in entries { children[entry.parent, default: []].append(entry.pid) }
        var result: [Int32] = []
        var queue = children[pid] ?? []
        while !queue.isEmpty {
            let next = queue.removeFirst()
            result.append(next)
            queue += children[next] ?? []
        }
        return result
    }

    /// Kills a command the runtime runs in a sandbox and everything it started that can be
    /// found.
    ///
    /// `runtime` is the host process that runs the runtime's `exec` (nil once it was reaped:
    /// its pid may name another process by then); the command and its children descend from
    /// it. Orphans go to the sandbox's init; of those, the ones still in the command's
    /// `session` (numbered in the pid namespace one level below the host's, as the runtime's
    /// pid file gives it) go too. A process that started a session of its own and was
    /// orphaned is not found: it lives on inside the sandbox until the sandbox stops. Passes
    /// repeat until nothing is left, as a fork bomb makes more during each.
    public static func killCommand(runtime: Int32?, session: Int32?, sandboxInit: Int32) {
        for _ in 0..<20 {
            let tree = snapshot()
            var victims = runtime.map { tree.descendants(of: $0) } ?? []
            if let session {
                victims += tree.descendants(of: sandboxInit).filter { Self.nestedSession(of: $0) == session }
            }
            guard !victims.isEmpty else { return }
            for victim in victims { kill(victim, SIGKILL) }
            usleep(5_000)
        }
    }

    /// The session of `pid` as the first pid namespace below the host's numbers it.
    static func nestedSession(of pid: Int32) -> Int32? {
        guard let status = try? Files.read("/proc/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSsid:") })
        else { return nil }
        let levels = line.dropFirst("NSsid:".count).split(whereSeparator: \.isWhitespace)
        return levels.count > 1 ? Int32(levels[1]) : nil
    }
}
