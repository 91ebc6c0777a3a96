import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a command run with ``Sandboxes/capture(_:_:input:timeout:outputLimit:)`` left behind.
public struct CapturedOutput: Sendable {
    public var status: Int32
    public var stdout: OutputBuffer
    public var stderr: OutputBuffer
    public var timedOut: Bool
    public var duration: Double
}

/// Bytes a command wrote, kept up to a limit and counted past it.
public struct OutputBuffer: Sendable {
    public enum Keep: Sendable {
        /// The first bytes (a command's result reads from its start).
        case head
        /// The latest bytes (a long-running process's log).
        case tail
    }

    public let limit: Int
    public let keep: Keep
    public private(set) var bytes: [UInt8] = []
    /// Every byte written, kept or not.
    public private(set) var total = 0

    public init(limit: Int, keep: Keep = .head) {
        self.limit = max(0, limit)
        self.keep = keep
    }

    public var truncated: Bool { total > bytes.count }
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func append(_ chunk: ArraySlice<UInt8>) {
        total += chunk.count
        switch keep {
        case .head:
            let room = limit - bytes.count
            if room > 0 { bytes += chunk.prefix(room) }
        case .tail:
            bytes += chunk.suffix(limit)
            // Trimmed in steps, so a stream of small writes does not move the buffer each time.
            if bytes.count > limit * 2 || (bytes.count > limit && chunk.count >= limit) {
                bytes.removeFirst(bytes.count - limit)
            }
        }
    }

    /// The kept bytes, trimmed to the limit (a tail buffer may hold up to twice it).
    public var kept: [UInt8] { keep == .tail && bytes.count > limit ? Array(bytes.suffix(limit)) : bytes }
}

extension Sandboxes {
    /// Runs a command in a running sandbox and captures its output, never for longer than
    /// `timeout` seconds (plus a short grace).
    ///
    /// It returns once the command and everything it started have ended: the runtime reaps
    /// them all. Inside, coreutils' `timeout` leads the command's process group and kills all
    /// of it at the deadline; what escaped that group is killed from outside a second later,
    /// with the runtime, and the result says `timedOut`.
    ///
    /// When the runtime itself failed, nothing of the command ran: that is an error, never the
    /// command's output. A runtime that could not start a thread or a process (a burst of
    /// commands at once) is tried again, twice, after a pause.
    public func capture(
        _ name: String, _ request: ExecRequest, input: [UInt8]? = nil, timeout: Double, outputLimit: Int
    ) throws -> CapturedOutput {
        var attempt = 0
        while true {
            attempt += 1
            let (output, failure) = try captureOnce(
                name, request, input: input, timeout: timeout, outputLimit: outputLimit)
            guard let failure else { return output }
            let stderr = String(decoding: output.stderr.kept.prefix(4096), as: UTF8.self)
            let transient =
                stderr.contains("pthread_create failed") || failure.message.contains("init-p")
                || failure.message.localizedCaseInsensitiveContains("resource temporarily unavailable")
            guard transient, attempt < 3 else {
                throw AirlockError(.failed, "the runtime could not start the command in \(name): \(failure.message)")
            }
            usleep(UInt32(100_000 * attempt))
        }
    }

    private func captureOnce(
        _ name: String, _ request: ExecRequest, input: [UInt8]?, timeout: Double, outputLimit: Int
    ) throws -> (CapturedOutput, ExecFailure?) {
        var wrapped = request
        wrapped.command = ["timeout", "-s", "KILL", "--", String(format: "%.3f", timeout)] + request.command
        ignoreBrokenPipes()
        let out = try Pipe2()
        let err = try Pipe2()
        let inPipe = input == nil ? nil : try Pipe2()
        let started = Monotonic.now()
        let child = try StartedExec.start(
            self, name, wrapped, stdin: inPipe?.read, stdout: out.write, stderr: err.write)
        defer { child.finish() }
        out.closeWrite()
        err.closeWrite()
        if let inPipe, let input {
            inPipe.closeRead()
            // Written from another thread: a command that does not read its input must not
            // stop this one from reading its output.
            let writer = inPipe
            DispatchQueue.global().async {
                input.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        guard let base = buffer.baseAddress else { break }
                        let written = Glibc.write(writer.write, base + offset, buffer.count - offset)
                        if written < 0 && errno == EINTR { continue }
                        if written <= 0 { break }
                        offset += written
                    }
                }
                writer.closeWrite()
            }
        }
        var stdout = OutputBuffer(limit: outputLimit)
        var stderr = OutputBuffer(limit: outputLimit)
        let deadline = started + timeout + 1
        var session: Int32?
        var status: Int32?
        var exitedAt: Double?
        var timedOut = false
        var open = [out.read, err.read]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            if status == nil, let exited = child.poll() {
                status = exited
                exitedAt = Monotonic.now()
            }
            let now = Monotonic.now()
            // Once the command is done, a process it left behind may hold the pipes open:
            // read what is there and stop.
            if let exitedAt, now - exitedAt > 0.2 { break }
            // The command leads a session of its own; its session is what to kill at the
            // deadline, even after the leader itself is gone.
            if session == nil { session = child.session }
            if now > deadline {
                timedOut = true
                break
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if Glibc.poll(&fds, nfds_t(fds.count), 50) < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                let count = Glibc.read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    if entry.fd == out.read {
                        stdout.append(buffer[0..<count])
                    } else {
                        stderr.append(buffer[0..<count])
                    }
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        out.closeRead()
        err.closeRead()
        // Reaped only below: until then the runtime's pid cannot name another process.
        if timedOut, status == nil { child.killAll() }
        let final = status ?? child.wait()
        let duration = Monotonic.now() - started
        // `timeout -s KILL` ends the command with SIGKILL: status 137 at (or past) the deadline.
        // What escaped its process group is still in its session.
        if final == 137 && duration >= timeout { timedOut = true }
        if timedOut, status != nil { child.killAll() }
        let output = CapturedOutput(
            status: final, stdout: stdout, stderr: stderr, timedOut: timedOut, duration: duration)
        return (output, timedOut ? nil : child.failure(status: final))
    }
}

/// A command left running in a sandbox, its output kept in memory (the latest bytes).
public final class BackgroundProcess: @unchecked Sendable {
    public let sandbox: String
    public let command: [String]
    public let started: Date
    private let child: StartedExec
    private let lock = NSLock()
    private var stdout: OutputBuffer
    private var stderr: OutputBuffer
    private var exitStatus: Int32?

    /// For a process started with `stdio`: its standard input (to write) and output (to read),
    /// which the caller owns; only standard error is kept here.
    public let stdio: (input: Int32, output: Int32)?

    init(
        sandbox: String, command: [String], child: StartedExec, outputLimit: Int,
        stdio: (input: Int32, output: Int32)? = nil
    ) {
        self.stdio = stdio
        self.sandbox = sandbox
        self.command = command
        self.started = Date()
        self.child = child
        self.stdout = OutputBuffer(limit: outputLimit, keep: .tail)
        self.stderr = OutputBuffer(limit: outputLimit, keep: .tail)
    }

    /// The exit status once it has ended.
    public var status: Int32? {
        lock.withLock {
            if exitStatus == nil, let exited = child.poll() {
                exitStatus = exited
                child.finish()
            }
            return exitStatus
        }
    }

    /// The latest output of each stream.
    public func logs() -> (stdout: OutputBuffer, stderr: OutputBuffer) {
        lock.withLock { (stdout, stderr) }
    }

    /// Kills the command and everything it started, and waits for it to end.
    @discardableResult
    public func kill() -> Int32 {
        // Under the lock, so the reader cannot reap the runtime between the check and the kill
        // (a reaped pid may name another process).
        let running = lock.withLock {
            if exitStatus == nil, let exited = child.poll() {
                exitStatus = exited
                child.finish()
            }
            guard exitStatus == nil else { return false }
            child.killAll()
            return true
        }
        if !running, let status { return status }
        let deadline = Monotonic.now() + 5
        while Monotonic.now() < deadline {
            if let status { return status }
            usleep(10_000)
        }
        return status ?? 137
    }

    fileprivate func read(out outPipe: Pipe2?, err errPipe: Pipe2) {
        let out = outPipe?.read ?? -1
        let err = errPipe.read
        var open = outPipe == nil ? [err] : [out, err]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if Glibc.poll(&fds, nfds_t(fds.count), 100) < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                let count = Glibc.read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    lock.withLock {
                        if entry.fd == out {
                            stdout.append(buffer[0..<count])
                        } else {
                            stderr.append(buffer[0..<count])
                        }
                    }
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == entry.fd }
                }
            }
            // A process the command left behind may hold the pipes: stop with the command.
            if status != nil && fds.allSatisfy({ $0.revents == 0 }) { break }
        }
        outPipe?.closeRead()
        errPipe.closeRead()
    }
}

extension Sandboxes {
    /// Starts a command that goes on after this call returns. It leads a session of its own,
    /// so ``BackgroundProcess/kill()`` ends everything it started.
    ///
    /// With `stdio`, its standard input and output are pipes the caller talks over
    /// (``BackgroundProcess/stdio``, an MCP server's transport, say); otherwise its input is
    /// empty and its output is kept.
    public func startBackground(_ name: String, _ request: ExecRequest, outputLimit: Int, stdio: Bool = false) throws
        -> BackgroundProcess
    {
        ignoreBrokenPipes()
        let out = try Pipe2()
        let err = try Pipe2()
        let input = stdio ? try Pipe2() : nil
        let child = try StartedExec.start(
            self, name, request, stdin: input?.read, stdout: out.write, stderr: err.write)
        out.closeWrite()
        err.closeWrite()
        input?.closeRead()
        let process = BackgroundProcess(
            sandbox: name, command: request.command, child: child, outputLimit: outputLimit,
            stdio: input.map { (input: $0.takeWrite(), output: out.takeRead()) })
        // The reader thread owns the read ends it reads from here on.
        Thread.detachNewThread { process.read(out: stdio ? nil : out, err: err) }
        return process
    }
}

/// A write to a pipe whose reader is gone must fail with EPIPE, not kill the process.
private func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
