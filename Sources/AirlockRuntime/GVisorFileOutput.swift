import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Pipes in place of regular files on an `exec`'s stdout and stderr, under gVisor.
///
/// runsc hands the Sentry the host's descriptors, and gVisor's kernel writes a regular file at
/// offsets of its own that start at 0: `airlock exec NAME -- make > build.log` would write over
/// what the file held, and with `2>&1` one stream over the other. A pipe has no offset, so the
/// command writes into a pipe and this process appends what comes out to the file, in order.
/// Terminals, pipes and sockets pass through as they are.
final class GVisorFileOutput: Sendable {
    /// What the runtime's stdout and stderr are.
    let stdout: ChildProcess.Stdio
    let stderr: ChildProcess.Stdio
    private let pipes: [Pipe2]
    private let done: [DispatchSemaphore]

    /// Nil when neither stdout nor stderr is a regular file.
    static func wrapping() -> GVisorFileOutput? {
        let out = regularFile(1)
        let err = regularFile(2)
        guard out != nil || err != nil else { return nil }
        return try? GVisorFileOutput(out: out, err: err)
    }

    private init(out: (dev: UInt, ino: UInt)?, err: (dev: UInt, ino: UInt)?) throws {
        var pipes: [Pipe2] = []
        var done: [DispatchSemaphore] = []
        func relay(to target: Int32) throws -> ChildProcess.Stdio {
            let pipe = try Pipe2()
            let finished = DispatchSemaphore(value: 0)
            // The copying thread owns the read end: it may outlive ``finish()``.
            let source = pipe.takeRead()
            Thread.detachNewThread {
                Self.copy(from: source, to: target)
                close(source)
                finished.signal()
            }
            pipes.append(pipe)
            done.append(finished)
            return .fd(pipe.write)
        }
        let stdout: ChildProcess.Stdio = out == nil ? .inherit : try relay(to: 1)
        // The same file on both (`> log 2>&1`): one pipe keeps the two streams in order.
        if let out, let err, out == err {
            stderr = stdout
        } else {
            stderr = err == nil ? .inherit : try relay(to: 2)
        }
        self.stdout = stdout
        self.pipes = pipes
        self.done = done
    }

    /// Closes this process's write ends once the runtime has them.
    func started() {
        for pipe in pipes { pipe.closeWrite() }
    }

    /// Waits until the command's output is in the files; a process it left running in the
    /// background may hold the pipe open, so not longer than a second after the command ended.
    func finish() {
        let deadline = DispatchTime.now() + 1
        for finished in done { _ = finished.wait(timeout: deadline) }
    }

    private static func regularFile(_ fd: Int32) -> (dev: UInt, ino: UInt)? {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return (UInt(info.st_dev), UInt(info.st_ino))
    }

    private static func copy(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var offset = 0
            while offset < count {
                let written = buffer[offset..<count].withUnsafeBytes { write(target, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                // The file is gone or full: keep draining, so the command is not blocked on a pipe.
                guard written > 0 else { break }
                offset += written
            }
        }
    }
}
