import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A process named so that a reused pid cannot pass for it: its pid and its start time.
public struct ProcessIdentity: Codable, Sendable, Equatable {
    public var pid: Int32
    /// Clock ticks after boot at which the process started (`/proc/PID/stat`, field 22).
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The calling process.
    public static func current() throws -> ProcessIdentity {
        let pid = getpid()
        guard let start = startTime(of: pid) else {
            throw AirlockError(.failed, "cannot read the start time of process \(pid) from /proc")
        }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// Whether this very process still exists (a zombie counts as gone).
    public var isAlive: Bool {
        guard let fields = ProcessStat.fields(of: pid), fields.count > 19 else { return false }
        return fields[0] != "Z" && fields[0] != "X" && UInt64(fields[19]) == startTime
    }

    /// When `pid` started, in clock ticks after boot; nil if there is no such process.
    public static func startTime(of pid: Int32) -> UInt64? {
        guard let fields = ProcessStat.fields(of: pid), fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
