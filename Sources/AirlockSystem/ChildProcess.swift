import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A process started with `posix_spawn` on the calling thread.
///
/// Airlock spawns its long-lived children (namespace holders, runtimes) from the main thread on
/// purpose: `PR_SET_PDEATHSIG` fires when the *thread* that forked a child exits, so a child
/// spawned from a worker thread could be killed early.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// Where the child's standard descriptors point.
    public enum Stdio: Sendable {
        case inherit
        case null
        case fd(Int32)
        case file(String)
    }

    /// Starts `argv[0]` (looked up on `PATH` and the sbin directories when it has no slash).
    public static func spawn(
        _ argv: [String],
        environment: [String: String]? = nil,
        stdin: Stdio = .inherit,
        stdout: Stdio = .inherit,
        stderr: Stdio = .inherit,
        extraDescriptors: [Int32: Int32] = [:],
        newSession: Bool = false
    ) throws -> ChildProcess {
        guard let first = argv.first else { throw AirlockError(.invalidArgument, "empty command") }
        let path = try Executables.require(first)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stdio) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stdio {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0)
            case .fd(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .file(let file):
                posix_spawn_file_actions_addopen(&actions, target, file, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
        }
        // Staged above every target first, so one mapping's target can never be another's source.
        let staged = extraDescriptors.map { (target: $0.key, source: fcntl($0.value, F_DUPFD_CLOEXEC, 64)) }
        defer { for entry in staged where entry.source >= 0 { close(entry.source) } }
        for entry in staged {
            guard entry.source >= 0 else { throw SystemCallError("dup descriptor \(entry.target)", errno: errno) }
            posix_spawn_file_actions_adddup2(&actions, entry.source, entry.target)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= 0x80 }  // POSIX_SPAWN_SETSID (glibc 2.26+)
        posix_spawnattr_setflags(&attr, Int16(flags))
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attr, &defaults)

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = descriptorLock.withLock {
            withCStrings(argv) { cArgv in
                withCStrings(env) { cEnv in
                    posix_spawn(&pid, path, &actions, &attr, cArgv, cEnv)
                }
            }
        }
        guard status == 0 else { throw SystemCallError("spawn \(first)", errno: status) }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child and returns its exit status (128 + signal number when killed).
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        return Self.exitStatus(status)
    }

    /// Returns the exit status if the child has ended, without blocking.
    public func poll() -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return Self.exitStatus(status) }
        if result < 0 && errno == ECHILD { return 127 }
        return nil
    }

    public func signal(_ sig: Int32) {
        kill(pid, sig)
    }

    static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// Runs a command to completion and captures its output.
    ///
    /// Uses `posix_spawn` and `poll` rather than Foundation's `Process`, so it works in the
    /// supervisor and the sandbox init, which block SIGCHLD and reap children themselves.
    public static func run(
        _ argv: [String], environment: [String: String]? = nil, input: String? = nil
    ) throws -> Output {
        let out = try Pipe2()
        let err = try Pipe2()
        let inPipe = input == nil ? nil : try Pipe2()
        let child = try spawn(
            argv, environment: environment, stdin: inPipe.map { .fd($0.read) } ?? .null,
            stdout: .fd(out.write), stderr: .fd(err.write))
        out.closeWrite()
        err.closeWrite()
        if let inPipe, let input {
            inPipe.closeRead()
            _ = input.withCString { Glibc.write(inPipe.write, $0, strlen($0)) }
            inPipe.closeWrite()
        }
        var collected: [Int32: [UInt8]] = [out.read: [], err.read: []]
        var open = [out.read, err.read]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if Glibc.poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                let count = Glibc.read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    collected[entry.fd, default: []] += buffer[0..<count]
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        let status = child.wait()
        return Output(
            status: status,
            stdout: String(decoding: collected[out.read] ?? [], as: UTF8.self),
            stderr: String(decoding: collected[err.read] ?? [], as: UTF8.self))
    }

    /// Captured result of ``run(_:environment:input:)``.
    public struct Output: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String

        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }

        /// The last non-empty line of stderr, for one-line error messages.
        public var lastErrorLine: String {
            stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
        }
    }

    /// Replaces the current process image; returns only by throwing.
    public static func exec(_ argv: [String], environment: [String: String]? = nil) throws -> Never {
        let path = try Executables.require(argv[0])
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        fflush(nil)
        let err = withCStrings(argv) { cArgv in
            withCStrings(env) { cEnv in
                execve(path, cArgv, cEnv)
                return errno
            }
        }
        throw SystemCallError("exec \(argv[0])", errno: err)
    }
}

/// Held while a pipe is made and marked close-on-exec, and while a child is spawned.
private let descriptorLock = NSLock()

/// A pipe whose ends close on exec (spawn's dup2 clears that flag on the child's copy).
public final class Pipe2: @unchecked Sendable {
    public let read: Int32
    public let write: Int32
    private var readOpen = true
    private var writeOpen = true

    public init() throws {
        var fds: [Int32] = [0, 0]
        // Marked close-on-exec before any other thread can spawn a child (pipe2 is not in
        // Swift's Glibc): a write end a long-lived child inherits would keep its reader waiting.
        try descriptorLock.withLock {
            guard pipe(&fds) == 0 else { throw SystemCallError("pipe", errno: errno) }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        }
        read = fds[0]
        write = fds[1]
    }

    deinit {
        closeRead()
        closeWrite()
    }

    /// Hands the read end to the caller, who closes it; this pipe no longer will.
    public func takeRead() -> Int32 {
        readOpen = false
        return read
    }

    /// Hands the write end to the caller, who closes it; this pipe no longer will.
    public func takeWrite() -> Int32 {
        writeOpen = false
        return write
    }

    public func closeRead() {
        if readOpen { Glibc.close(read) }
        readOpen = false
    }

    public func closeWrite() {
        if writeOpen { Glibc.close(write) }
        writeOpen = false
    }
}

func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}

/// Finds programs on `PATH` plus the sbin directories an ordinary user's `PATH` lacks.
public enum Executables {
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        for dir in dirs where access(dir + "/" + name, X_OK) == 0 {
            return dir + "/" + name
        }
        return nil
    }

    public static func require(_ name: String) throws -> String {
        guard let path = find(name) else {
            throw AirlockError(.notFound, "\(name) is not installed (try: sudo apt-get install \(package(for: name)))")
        }
        return path
    }

    static func package(for program: String) -> String {
        switch program {
        case "newuidmap", "newgidmap": "uidmap"
        case "nsenter", "unshare", "setpriv": "util-linux"
        default: program
        }
    }

    /// The absolute path of the running binary. When it was replaced while running (an
    /// upgrade, a reinstall), the kernel names the old file "PATH (deleted)": the new one at
    /// PATH is what later commands run.
    public static var current: String {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return CommandLine.arguments[0]
        }
        let suffix = " (deleted)"
        if target.hasSuffix(suffix), FileManager.default.isExecutableFile(atPath: String(target.dropLast(suffix.count)))
        {
            return String(target.dropLast(suffix.count))
        }
        return target
    }
}
