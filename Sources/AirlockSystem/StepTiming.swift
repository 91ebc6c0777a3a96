import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where a command's time goes: with `AIRLOCK_TIMING=1`, each step a process marks is printed
/// on its standard error (a supervisor's and an init's go to the sandbox's `supervisor.log`).
///
/// The first process to mark puts its start on the monotonic clock, which every process
/// shares, in `AIRLOCK_TIMING_ORIGIN`, so the processes it starts (the supervisor, the init,
/// the exec agent) print their steps on the same time line: milliseconds since the command began.
public enum StepTiming {
    public static let variable = "AIRLOCK_TIMING"
    /// Where the first process leaves its start for the others.
    static let originVariable = "AIRLOCK_TIMING_ORIGIN"

    private static let origin: Double? = {
        guard let value = getenv(variable).map({ String(cString: $0) }), !value.isEmpty, value != "0" else {
            return nil
        }
        if let start = getenv(originVariable).flatMap({ Double(String(cString: $0)) }) { return start }
        let now = Monotonic.now()
        setenv(originVariable, String(format: "%.6f", now), 1)
        return now
    }()

    private static let last = Mutex<Double?>(nil)

    /// Prints `step`: when it ended on the command's time line, and how long since this
    /// process's previous mark.
    public static func mark(_ step: @autoclosure () -> String) {
        guard let origin else { return }
        let now = Monotonic.now()
        let previous = last.withLock { last in
            defer { last = now }
            return last
        }
        let line = String(
            format: "airlock timing: %8.1f ms  %@%@\n", (now - origin) * 1000, step(),
            previous.map { String(format: " (+%.1f ms)", (now - $0) * 1000) } ?? "")
        FileHandle.standardError.write(Data(line.utf8))
    }
}
