import AirlockSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Synchronous signal handling: block the signals, then take them one at a time.
///
/// The supervisor and the sandbox init are single-threaded loops; `sigtimedwait` lets them
/// sleep until a child exits or a stop is asked for, with no handler racing the main code.
public struct SignalSet: Sendable {
    var set = sigset_t()

    public init(_ signals: [Int32]) {
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
    }

    /// What `exec` passes on to the command, plus SIGCHLD to wake up when it ends.
    static let forwarded = SignalSet([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD])
    /// What an `exec` through the exec agent passes on, plus a terminal's size changes.
    static let relayed = SignalSet([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])

    public func block() {
        var copy = set
        sigprocmask(SIG_BLOCK, &copy, nil)
    }

    /// The next pending signal, or nil after `timeout` seconds.
    public func wait(timeout: Double) -> Int32? {
        var copy = set
        var ts = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - Double(Int(timeout))) * 1e9))
        let signal = sigtimedwait(&copy, nil, &ts)
        return signal > 0 ? signal : nil
    }
}

/// Reaps every exited child; returns (pid, status) pairs.
func reapChildren() -> [(pid: pid_t, status: Int32)] {
    var reaped: [(pid_t, Int32)] = []
    while true {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        if pid <= 0 { break }
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        reaped.append((pid, code))
    }
    return reaped
}

/// Writes one line to a descriptor, ignoring errors (the reader may be gone).
func writeLine(_ fd: Int32, _ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
}

/// Reads one line (or to end of file): readiness pipes stay open in the processes that
/// inherited them, so their readers cannot wait for end of file.
func readReadinessLine(_ fd: Int32, timeout: Double = 120) -> String {
    var result = [UInt8]()
    var byte: UInt8 = 0
    let deadline = Monotonic.now() + timeout
    while true {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let remaining = Int32(max(0, (deadline - Monotonic.now()) * 1000))
        let ready = poll(&entry, 1, remaining)
        if ready < 0 && errno == EINTR { continue }
        if ready <= 0 { return "error: no answer within \(Int(timeout)) s" }
        let count = read(fd, &byte, 1)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 || byte == UInt8(ascii: "\n") { break }
        result.append(byte)
    }
    return String(decoding: result, as: UTF8.self)
}

/// Marks the readiness descriptor close-on-exec so later children do not inherit it.
func protectReadinessDescriptor(_ fd: Int32) {
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
}
