import AirlockExecAgent
import AirlockOCI
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A connection to a sandbox's exec agent (``ExecAgentServer``), which starts a command in
/// the container as `runc exec` would, in a few milliseconds.
///
/// None where the sandbox has no agent (started by an older Airlock, or the agent is gone),
/// or where `AIRLOCK_EXEC=runtime` asks for the runtime's `exec`: callers then use that.
struct ExecAgentClient {
    let socket: Int32

    static func connect(_ paths: SandboxPaths) -> ExecAgentClient? {
        guard ProcessInfo.processInfo.environment["AIRLOCK_EXEC"] != "runtime",
            let socket = try? UnixSocket.connect(to: paths.execSocket)
        else { return nil }
        return ExecAgentClient(socket: socket)
    }

    /// The agent could not start the command (nothing of it ran).
    struct Refusal: Error {
        var message: String
        var errno: Int32

        /// What `exec` reports: 127 for a program not found, 126 for one that cannot run.
        var failure: ExecFailure {
            let kind: ExecFailure.Kind =
                message.hasPrefix("exec: ")
                ? (errno == ENOENT ? .notFound : errno == EACCES || errno == EISDIR ? .notExecutable : .runtime)
                : .runtime
            return ExecFailure(
                kind: kind, message: message + ": " + String(cString: strerror(errno)), printed: false)
        }

        /// A refusal the runtime's `exec` might not meet: the agent could not fork (the
        /// sandbox at its pids limit, which the runtime's helper, outside it, is not held to).
        var worthRetryingWithRuntime: Bool { errno == EAGAIN || message == "fork" }
    }

    /// Sends the process; without a terminal, `stdio` become its standard streams (a nil
    /// standard input reads nothing). Returns its pid and, with a terminal, the
    /// pseudo-terminal's master.
    func start(_ process: RuntimeSpec.Process, stdio: (Int32?, Int32, Int32), size: winsize? = nil) throws -> (
        pid: Int32, master: Int32?
    ) {
        let request = ExecAgentRequest(process: process, rows: size?.ws_row, columns: size?.ws_col)
        guard UnixSocket.writeLine(socket, String(decoding: try JSONEncoder().encode(request), as: UTF8.self)) else {
            throw Refusal(message: "the exec agent closed its socket", errno: EPIPE)
        }
        if !process.terminal {
            let null = stdio.0 == nil ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1
            defer { if null >= 0 { _ = Glibc.close(null) } }
            try DescriptorPassing.send([stdio.0 ?? null, stdio.1, stdio.2], over: socket)
        }
        switch try nextEvent() {
        case .started(let pid):
            let master = process.terminal ? try DescriptorPassing.receive(from: socket).first : nil
            return (pid, master)
        case .failed(let message, let errno):
            throw Refusal(message: message, errno: errno)
        case .exited:
            throw Refusal(message: "the exec agent answered out of turn", errno: EPROTO)
        }
    }

    func nextEvent() throws -> ExecAgentEvent {
        guard let line = UnixSocket.readLine(socket) else {
            throw Refusal(message: "the exec agent went away", errno: EPIPE)
        }
        return try JSONDecoder().decode(ExecAgentEvent.self, from: Data(line.utf8))
    }

    func signal(_ number: Int32) {
        guard let data = try? JSONEncoder().encode(ExecAgentControl(signal: number)) else { return }
        UnixSocket.writeLine(socket, String(decoding: data, as: UTF8.self))
    }

    func close() { _ = Glibc.close(socket) }

    /// Runs `process` with this process's standard streams (standard input only when
    /// `interactive`), relaying a terminal when it has one, passing signals on; returns the
    /// command's status as a shell reports it.
    func run(_ process: RuntimeSpec.Process, interactive: Bool) throws -> Int32 {
        defer { close() }
        let forwarded = SignalSet.relayed
        forwarded.block()
        guard process.terminal else {
            _ = try start(process, stdio: (interactive ? 0 : nil, 1, 2))
            StepTiming.mark("exec: the agent started the command")
            let status = try waitForExit(forwarding: forwarded, relay: nil)
            StepTiming.mark("exec: the command exited \(status)")
            return status
        }
        var size = winsize()
        let sized = ioctl(0, UInt(TIOCGWINSZ), &size) == 0
        let started = try start(process, stdio: (nil, 1, 2), size: sized ? size : nil)
        guard let master = started.master else { throw Refusal(message: "no terminal came back", errno: EPROTO) }
        defer { _ = Glibc.close(master) }
        let raw = RawTerminal(fd: 0)
        defer { raw?.restore() }
        return try waitForExit(forwarding: forwarded, relay: master)
    }

    /// Waits for the command's end, passing signals on and, with a terminal, copying this
    /// process's input to it and its output here (a window size change follows the terminal).
    private func waitForExit(forwarding forwarded: SignalSet, relay master: Int32?) throws -> Int32 {
        var inputOpen = master != nil
        while true {
            var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
            if let master {
                fds.append(pollfd(fd: master, events: Int16(POLLIN), revents: 0))
                if inputOpen { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            }
            let ready = poll(&fds, nfds_t(fds.count), 50)
            while let signal = forwarded.wait(timeout: 0) {
                if signal == SIGWINCH, let master {
                    var size = winsize()
                    if ioctl(0, UInt(TIOCGWINSZ), &size) == 0 { _ = ioctl(master, UInt(TIOCSWINSZ), &size) }
                } else if signal != SIGWINCH {
                    self.signal(signal)
                }
            }
            guard ready > 0 else { continue }
            if let master {
                if fds[1].revents != 0 && !Self.copy(from: master, to: 1) { /* the terminal closed */  }
                if inputOpen, fds.count > 2, fds[2].revents != 0, !Self.copy(from: 0, to: master) { inputOpen = false }
            }
            if fds[0].revents != 0 {
                let event = try nextEvent()
                // What the command wrote last is still in the terminal.
                if let master { while Self.pending(master) && Self.copy(from: master, to: 1) {} }
                guard let status = event.shellStatus else {
                    throw Refusal(message: "the exec agent answered out of turn", errno: EPROTO)
                }
                return status
            }
        }
    }

    private static func pending(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 20) > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Copies what `source` has now to `target`; false at its end.
    private static func copy(from source: Int32, to target: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = read(source, &buffer, buffer.count)
        guard count > 0 else { return count < 0 && errno == EINTR }
        var offset = 0
        while offset < count {
            let written = buffer[offset..<count].withUnsafeBytes { write(target, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}

/// A terminal put in raw mode for as long as a command's own terminal is relayed through it.
struct RawTerminal {
    let fd: Int32
    let saved: termios

    init?(fd: Int32) {
        guard isatty(fd) == 1 else { return nil }
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0 else { return nil }
        self.fd = fd
        saved = settings
        cfmakeraw(&settings)
        tcsetattr(fd, TCSANOW, &settings)
    }

    func restore() {
        var settings = saved
        tcsetattr(fd, TCSANOW, &settings)
    }
}
