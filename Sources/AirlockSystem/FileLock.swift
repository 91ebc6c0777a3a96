#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An advisory `flock(2)` lock on a file; the kernel drops it when the holder dies.
///
/// ```swift
/// let lock = try FileLock(path: dir + "/lock")
/// try lock.acquire(timeout: 30, what: "sandbox demo")
/// defer { lock.release() }
/// ```
public final class FileLock: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCallError("open \(path)", errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock without waiting; `false` when another process holds it.
    public func tryAcquire(shared: Bool = false) -> Bool {
        flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0
    }

    /// Waits up to `timeout` seconds for the lock, then fails with a `busy` error naming `what`.
    public func acquire(timeout: Double, what: String) throws {
        let deadline = Monotonic.now() + timeout
        while !tryAcquire() {
            if Monotonic.now() > deadline {
                throw AirlockError(.busy, "\(what) is busy (another airlock command holds \(path))")
            }
            usleep(20_000)
        }
    }

    /// Takes the lock; when another process holds it, says `note` through `log` once, then
    /// waits as ``acquire(timeout:what:)`` does.
    public func acquire(timeout: Double, what: String, note: String, log: (String) -> Void) throws {
        if tryAcquire() { return }
        log(note)
        try acquire(timeout: timeout, what: what)
    }

    public func release() {
        flock(fd, LOCK_UN)
    }

    /// True while some process holds the lock (checked by briefly taking a shared lock).
    public static func isHeld(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }
}

/// Seconds on the monotonic clock.
public enum Monotonic {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
