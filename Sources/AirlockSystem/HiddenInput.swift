#if canImport(Glibc)
    import Glibc
#endif

/// A line typed at a terminal without it showing: a secret typed at a prompt.
///
/// Echo is off only while the line is read. The terminal gets its settings back afterwards,
/// on an error, and when SIGINT, SIGTERM, SIGHUP or SIGQUIT ends the process meanwhile (the
/// signal is then raised again, so the process still ends the way it would have).
///
/// ```swift
/// let input = HiddenInput()
/// if input.isTerminal {
///     let key = try input.readLine(prompt: "secret for anthropic (input hidden): ")
/// }
/// ```
public struct HiddenInput: Sendable {
    /// Where the line is read from.
    public let input: Int32
    /// Where the prompt and the newline the hidden Enter would have shown go.
    public let output: Int32

    public init(input: Int32 = STDIN_FILENO, output: Int32 = STDERR_FILENO) {
        self.input = input
        self.output = output
    }

    /// Whether ``input`` is a terminal (otherwise nothing would be shown anyway).
    public var isTerminal: Bool { isatty(input) == 1 }

    /// Turns echo off, shows `prompt` on ``output``, reads one line and gives the terminal its
    /// settings back; returns the line without its line end.
    public func readLine(prompt: String) throws(AirlockError) -> String {
        var saved = termios()
        guard tcgetattr(input, &saved) == 0 else {
            throw AirlockError(
                .failed, "cannot read the terminal settings", cause: SystemCallError("tcgetattr", errno: errno))
        }
        var hidden = saved
        // Canonical mode stays on: the kernel keeps line editing (backspace, ^U); ECHONL would
        // show the Enter, and a newline is written below in its place.
        hidden.c_lflag &= ~tcflag_t(ECHO | ECHONL)
        TerminalRestore.arm(descriptor: input, settings: saved)
        defer { TerminalRestore.disarm() }
        // TCSAFLUSH drops anything typed before the prompt: it was shown as it was typed.
        guard tcsetattr(input, TCSAFLUSH, &hidden) == 0 else {
            throw AirlockError(
                .failed, "cannot turn terminal echo off", cause: SystemCallError("tcsetattr", errno: errno))
        }
        defer {
            _ = tcsetattr(input, TCSAFLUSH, &saved)
            show("\n")
        }
        show(prompt)
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while line.last != UInt8(ascii: "\n") {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw AirlockError(.failed, "cannot read the terminal", cause: SystemCallError("read", errno: errno))
            }
            if count == 0 { break }
            line += buffer[..<count]
        }
        while let last = line.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }

    private func show(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(output, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            bytes = bytes.dropFirst(count)
        }
    }
}

/// The terminal settings a signal handler puts back. A handler may not allocate or take locks,
/// so it reads plain memory set aside once; one prompt at a time is read in a process.
private enum TerminalRestore {
    nonisolated(unsafe) static let descriptor: UnsafeMutablePointer<Int32> = {
        let pointer = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        pointer.initialize(to: -1)
        return pointer
    }()
    nonisolated(unsafe) static let settings: UnsafeMutablePointer<termios> = {
        let pointer = UnsafeMutablePointer<termios>.allocate(capacity: 1)
        pointer.initialize(to: termios())
        return pointer
    }()
    nonisolated(unsafe) static var previous: [(signal: Int32, action: sigaction)] = []
    static let signals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    static func arm(descriptor fd: Int32, settings saved: termios) {
        // Set here, before the handler is installed: the handler never runs their lazy initializers.
        settings.pointee = saved
        descriptor.pointee = fd
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            _ = tcsetattr(TerminalRestore.descriptor.pointee, TCSAFLUSH, TerminalRestore.settings)
            // SA_RESETHAND put the default action back: raised again, the signal does what it
            // would have done without the prompt.
            raise(signal)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)  // 0x80000000
        previous = signals.map { signal in
            var old = sigaction()
            sigaction(signal, &action, &old)
            return (signal, old)
        }
    }

    static func disarm() {
        for (signal, action) in previous {
            var action = action
            sigaction(signal, &action, nil)
        }
        previous = []
        descriptor.pointee = -1
    }
}
