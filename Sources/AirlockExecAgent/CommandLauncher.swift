import AirlockOCI
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts one command in a sandbox's container the way `runc exec` does, from the exec
/// agent, which already shares the container's user, network, IPC, UTS, cgroup and (for its
/// children) pid namespaces.
///
/// The child joins the container's mount namespace and cgroups, takes its standard streams
/// (or a new pseudo-terminal of the container's own `/dev/pts`), its rlimits and OOM score,
/// drops the capabilities the process may not have, becomes its user, loads the seccomp
/// filter (before the user change when it keeps no_new_privs off, as it then needs the
/// privilege; after, otherwise) and runs the program found on its own `PATH`. A failure on
/// the way reaches the agent as `ERRNO message` on a close-on-exec pipe, which the `execve`
/// closes empty when it succeeds.
///
/// The agent is single-threaded, so the child may run ordinary Swift between `fork` and
/// `execve`.
struct CommandLauncher {
    /// The container's mount namespace.
    let mountNamespace: Int32
    /// `cgroup.procs` of each of the container's cgroups this process may write.
    let cgroupProcs: [Int32]
    /// The container's filter, or nil when it has none.
    let seccomp: SeccompProgram?

    /// How long a command may take from the fork to its `execve`.
    static let startTimeout: Double = 10

    struct Started {
        var pid: pid_t
        /// The pseudo-terminal's master, for a terminal.
        var master: Int32?
    }

    struct Failure: Error {
        var message: String
        var errno: Int32
    }

    /// Starts the command; `stdio` (three descriptors) when it has no terminal.
    func launch(_ request: ExecAgentRequest, stdio: [Int32]) throws -> Started {
        let process = request.process
        guard let program = process.args.first, !program.isEmpty else {
            throw Failure(message: "no command to run", errno: EINVAL)
        }
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else { throw Failure(message: "pipe", errno: errno) }
        for fd in pipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let terminal = process.terminal ? try DescriptorPassing.socketPair() : nil
        let plan = ChildPlan(process: process, rows: request.rows, columns: request.columns)
        let pid = fork()
        if pid == 0 {
            close(pipe[0])
            if let terminal { close(terminal.0) }
            let failure = child(plan, stdio: stdio, terminal: terminal?.1)
            let line = "\(failure.errno) \(failure.message)"
            _ = line.withCString { write(pipe[1], $0, strlen($0)) }
            _exit(failure.errno == ENOENT ? 127 : 126)
        }
        close(pipe[1])
        if let terminal { close(terminal.1) }
        defer { close(pipe[0]) }
        guard pid > 0 else {
            if let terminal { close(terminal.0) }
            throw Failure(message: "fork", errno: errno)
        }
        // A child stopped or stuck before its execve (root inside can signal it) must not
        // hold the agent, which serves every other command too.
        var master: Int32?
        if let terminal {
            var timeout = timeval(tv_sec: Int(Self.startTimeout), tv_usec: 0)
            setsockopt(terminal.0, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            master = (try? DescriptorPassing.receive(from: terminal.0))?.first
            close(terminal.0)
        }
        var ready = pollfd(fd: pipe[0], events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, Int32(Self.startTimeout * 1000)) > 0 else {
            if let master { close(master) }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw Failure(message: "the command did not start within \(Int(Self.startTimeout)) s", errno: ETIMEDOUT)
        }
        let said = Self.readAll(pipe[0])
        guard said.isEmpty else {
            if let master { close(master) }
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let parts = said.split(separator: " ", maxSplits: 1).map(String.init)
            throw Failure(message: parts.count > 1 ? parts[1] : said, errno: Int32(parts.first ?? "") ?? EINVAL)
        }
        return Started(pid: pid, master: master)
    }

    /// Everything the child needs, worked out before the fork.
    struct ChildPlan {
        var process: RuntimeSpec.Process
        var rows: UInt16?
        var columns: UInt16?
        var bounding: UInt64
        var effective: UInt64
        var permitted: UInt64
        var inheritable: UInt64
        var ambient: [Int]
        var rlimits: [(Int32, rlimit)]
        var searchPath: [String]

        init(process: RuntimeSpec.Process, rows: UInt16?, columns: UInt16?) {
            self.process = process
            self.rows = rows
            self.columns = columns
            let capabilities = process.capabilities
            bounding = LinuxCalls.capabilityMask(capabilities?.bounding ?? [])
            effective = LinuxCalls.capabilityMask(capabilities?.effective ?? [])
            permitted = LinuxCalls.capabilityMask(capabilities?.permitted ?? [])
            inheritable = LinuxCalls.capabilityMask(capabilities?.inheritable ?? [])
            ambient = (capabilities?.ambient ?? []).compactMap { LinuxCalls.capabilityNumbers[$0] }
            var limits: [(Int32, rlimit)] = []
            for limit in process.rlimits ?? [] {
                guard let resource = LinuxCalls.rlimitNumbers[limit.type] else { continue }
                limits.append((resource, rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))))
            }
            rlimits = limits
            let path = process.env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            searchPath = (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .split(separator: ":").map(String.init)
        }
    }

    /// The child's side: returns only on failure, with what failed.
    private func child(_ plan: ChildPlan, stdio: [Int32], terminal: Int32?) -> Failure {
        func failed(_ what: String) -> Failure { Failure(message: what, errno: errno) }
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        signal(SIGPIPE, SIG_DFL)
        // Not inspectable by the sandbox's processes while it still holds the agent's privileges.
        _ = LinuxCalls.prctl(LinuxCalls.setDumpable, 0)
        guard LinuxCalls.setns(mountNamespace, LinuxCalls.newMountNamespace) == 0 else {
            return failed("join the container's mounts")
        }
        guard setsid() >= 0 else { return failed("setsid") }
        if let terminal {
            // The container's own /dev/pts; the peer is opened from the master, by no path.
            // The devpts instance's own multiplexer, character device 5:2 and nothing else:
            // /dev/ptmx is a link to it that root inside may change (a FIFO would block this open).
            let master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
            var info = stat()
            var unlock: Int32 = 0
            guard master >= 0, fstat(master, &info) == 0, info.st_mode & S_IFMT == S_IFCHR,
                info.st_rdev == (5 << 8 | 2), ioctl(master, LinuxCalls.unlockTerminal, &unlock) == 0
            else { return failed("open a pseudo-terminal") }
            _ = fcntl(master, F_SETFL, O_RDWR)
            let slave = ioctl(master, LinuxCalls.openTerminalPeer, Int32(O_RDWR | O_NOCTTY))
            guard slave >= 0 else { return failed("open the pseudo-terminal's peer") }
            if let rows = plan.rows, let columns = plan.columns {
                var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
                _ = ioctl(slave, UInt(TIOCSWINSZ), &size)
            }
            guard (try? DescriptorPassing.send([master], over: terminal)) != nil else {
                return failed("hand the terminal over")
            }
            close(master)
            close(terminal)
            guard ioctl(slave, UInt(TIOCSCTTY), 0) == 0 else { return failed("take the terminal") }
            _ = fchown(slave, plan.process.user.uid, UInt32.max)
            for target: Int32 in 0...2 where dup2(slave, target) < 0 { return failed("dup2") }
            if slave > 2 { close(slave) }
        } else {
            guard stdio.count == 3 else { return Failure(message: "no standard streams", errno: EINVAL) }
            for (target, fd) in stdio.enumerated() where dup2(fd, Int32(target)) < 0 { return failed("dup2") }
        }
        for procs in cgroupProcs { _ = write(procs, "0", 1) }
        if let score = plan.process.oomScoreAdj {
            let fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                _ = "\(score)".withCString { write(fd, $0, strlen($0)) }
                close(fd)
            }
        }
        for (resource, value) in plan.rlimits {
            var limit = value
            guard setrlimit(__rlimit_resource_t(UInt32(resource)), &limit) == 0 else { return failed("setrlimit") }
        }
        let noNewPrivileges = plan.process.noNewPrivileges == true
        // Without no_new_privs, loading the filter needs the privilege the user change drops.
        if !noNewPrivileges, let seccomp = seccomp {
            let loaded = seccomp.load()
            guard loaded == 0 else { return Failure(message: "load the seccomp filter", errno: -loaded) }
        }
        for capability in 0...LinuxCalls.lastCapability where plan.bounding & (1 << UInt64(capability)) == 0 {
            guard LinuxCalls.prctl(LinuxCalls.dropBoundingCapability, UInt(capability)) == 0 else {
                return failed("drop capability \(capability) from the bounding set")
            }
        }
        let user = plan.process.user
        _ = LinuxCalls.prctl(LinuxCalls.setKeepCapabilities, 1)
        var groups = (user.additionalGids ?? []).map { gid_t($0) }
        guard setgroups(groups.count, &groups) == 0 else { return failed("setgroups") }
        // With CAP_SETUID and CAP_SETGID, these set the real, effective and saved ids alike.
        guard setgid(user.gid) == 0 else { return failed("setgid \(user.gid)") }
        guard setuid(user.uid) == 0 else { return failed("setuid \(user.uid)") }
        _ = LinuxCalls.prctl(LinuxCalls.setKeepCapabilities, 0)
        guard
            LinuxCalls.capset(effective: plan.effective, permitted: plan.permitted, inheritable: plan.inheritable)
                == 0
        else { return failed("set capabilities") }
        _ = LinuxCalls.prctl(LinuxCalls.ambientCapability, LinuxCalls.ambientClearAll)
        for capability in plan.ambient {
            _ = LinuxCalls.prctl(LinuxCalls.ambientCapability, LinuxCalls.ambientRaise, UInt(capability))
        }
        guard chdir(plan.process.cwd) == 0 else { return failed("chdir to cwd (\"\(plan.process.cwd)\")") }
        if noNewPrivileges {
            guard LinuxCalls.prctl(LinuxCalls.setNoNewPrivileges, 1) == 0 else { return failed("set no_new_privs") }
            if let seccomp {
                let loaded = seccomp.load()
                guard loaded == 0 else { return Failure(message: "load the seccomp filter", errno: -loaded) }
            }
        }
        // The agent's other descriptors stay behind; the failure pipe closes with the execve.
        _ = LinuxCalls.closeOnExec(from: 3)
        _ = LinuxCalls.prctl(LinuxCalls.setParentDeathSignal, UInt(SIGKILL))
        return execute(plan)
    }

    /// `execve` of the program, searched on the process's own `PATH` as a shell would.
    private func execute(_ plan: ChildPlan) -> Failure {
        let arguments = plan.process.args
        let program = arguments[0]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = plan.process.env.map { strdup($0) } + [nil]
        let candidates = program.contains("/") ? [program] : plan.searchPath.map { $0 + "/" + program }
        var denied = false
        for candidate in candidates {
            execve(candidate, argv, envp)
            if errno == EACCES { denied = true }
        }
        let error = denied ? EACCES : errno
        errno = error
        return Failure(message: "exec: \"\(program)\"", errno: error)
    }

    static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
