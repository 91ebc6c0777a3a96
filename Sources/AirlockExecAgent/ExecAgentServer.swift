import AirlockOCI
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A sandbox's exec agent: starts commands in its container on request, in a few
/// milliseconds where `runc exec` takes tens (a Go program that reads the container's state
/// and joins its namespaces each time).
///
/// Started by the sandbox init once the container runs, it lives outside the container: in
/// the init's mount namespace, where it listens on a Unix socket in the sandbox's directory on
/// the host (which only the user reaches; nothing inside the sandbox sees that path), and
/// outside the container's pid namespace, so no process of the sandbox can see, signal or
/// trace it. It joins the container's IPC, UTS and cgroup namespaces, and its pid namespace for
/// its children; each command joins the mount namespace and cgroups itself
/// (``CommandLauncher``). Single-threaded: one `poll` loop serves every client.
///
///     airlock _exec-agent --state STATE NAME CONTAINER-PID SOCKET BUNDLE-CONFIG
public final class ExecAgentServer {
    private let listener: Int32
    private let launcher: CommandLauncher
    private var sessions: [Session] = []

    /// A command and the client waiting for it.
    final class Session {
        var client: Int32?
        let pid: pid_t
        let pidfd: Int32

        init(client: Int32, pid: pid_t, pidfd: Int32) {
            self.client = client
            self.pid = pid
            self.pidfd = pidfd
        }
    }

    /// Joins the container's namespaces (but its mounts), opens its cgroups, compiles its
    /// filter and listens at `socket`.
    public init(containerPID: pid_t, socket: String, config: RuntimeSpec) throws {
        let proc = "/proc/\(containerPID)"
        let hierarchies = Self.cgroupHierarchies()
        Self.leaveOwnGroup(in: hierarchies)
        var cgroupProcs: [Int32] = []
        // Only the groups the container is in and this agent is not: a command it forks starts
        // in the agent's own (under crun, the container's too, but in pids), and each write of
        // a process into a v1 group waits for the kernel's RCU grace period, a millisecond or more.
        let own = Set(Self.cgroupDirectories(of: getpid(), in: hierarchies))
        for directory in Self.cgroupDirectories(of: containerPID, in: hierarchies) where !own.contains(directory) {
            let fd = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
            if fd >= 0 { cgroupProcs.append(fd) }
        }
        let mountNamespace = open(proc + "/ns/mnt", O_RDONLY | O_CLOEXEC)
        guard mountNamespace >= 0 else { throw SystemCallError("open \(proc)/ns/mnt", errno: errno) }
        let namespaces = [
            ("ipc", LinuxCalls.newIPCNamespace), ("uts", LinuxCalls.newUTSNamespace),
            ("cgroup", LinuxCalls.newCgroupNamespace), ("pid", LinuxCalls.newPIDNamespace),
        ]
        for (name, type) in namespaces {
            let fd = open(proc + "/ns/" + name, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SystemCallError("open \(proc)/ns/\(name)", errno: errno) }
            defer { close(fd) }
            guard LinuxCalls.setns(fd, type) == 0 else {
                throw SystemCallError("join the container's \(name) namespace", errno: errno)
            }
        }
        let seccomp = try config.linux.seccomp.map(SeccompProgram.init)
        launcher = CommandLauncher(mountNamespace: mountNamespace, cgroupProcs: cgroupProcs, seccomp: seccomp)
        unlink(socket)
        listener = try UnixSocket.listen(at: socket)
        StepTiming.mark("exec agent: listening")
        // The sandbox's directory (the user's, 0700) is what keeps others out; the agent runs
        // as the sandbox's root, another id than the user's on the host.
        chmod(socket, 0o666)
    }

    typealias CgroupHierarchy = (options: Set<String>, point: String, version2: Bool)

    /// The cgroup hierarchies this process's mounts show: their options, where, and which is v2.
    static func cgroupHierarchies() -> [CgroupHierarchy] {
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var hierarchies: [CgroupHierarchy] = []
        for line in mounts.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let before = halves[0].split(separator: " ")
            let after = halves[1].split(separator: " ")
            guard before.count >= 5, after.count >= 3, after[0] == "cgroup" || after[0] == "cgroup2" else { continue }
            hierarchies.append(
                (Set(after[2].split(separator: ",").map(String.init)), String(before[4]), after[0] == "cgroup2"))
        }
        return hierarchies
    }

    /// The name of the pids group the sandbox's own processes live in, inside the sandbox's.
    static let ownGroup = "own"

    /// The v2 leaf beside `own` that the agent moves to: a v2 group that gives its children
    /// controllers holds no process itself.
    static let execGroup = "exec"

    /// Moves this agent from the sandbox's pids group `own`, which holds `--pids` and which the
    /// init chain started it in, up to the sandbox's group (on v2, to its leaf `exec`), which
    /// allows a reserve more. The agent forks each command there and the command moves itself
    /// into the container's group before anything else (a full group takes a process moved
    /// in), so `exec` still starts a command when the sandbox's processes hold every pid they
    /// may. Nothing changes where the group has no `own` (rlimits, or a sandbox started before
    /// it had one).
    static func leaveOwnGroup(in hierarchies: [CgroupHierarchy]) {
        let pids =
            hierarchies.first { !$0.version2 && $0.options.contains("pids") }
            ?? hierarchies.first { $0.version2 }
        guard let pids,
            let directory = cgroupDirectories(of: getpid(), in: [pids]).first,
            (directory as NSString).lastPathComponent == ownGroup
        else { return }
        let parent = (directory as NSString).deletingLastPathComponent
        let target = pids.version2 ? parent + "/" + execGroup : parent
        let fd = open(target + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = write(fd, "0", 1)
    }

    /// A process's cgroup directories, as `/proc/PID/cgroup` and `hierarchies` name them.
    static func cgroupDirectories(of pid: pid_t, in hierarchies: [CgroupHierarchy]) -> [String] {
        let membership = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        return membership.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3 else { return nil }
            let controllers = Set(fields[1].split(separator: ",").map(String.init))
            let hierarchy =
                controllers.isEmpty
                ? hierarchies.first { $0.version2 }
                : hierarchies.first { !$0.version2 && controllers.isSubset(of: $0.options) }
            return hierarchy.map { $0.point + fields[2] }
        }
    }

    /// Serves until the process is killed (the sandbox's end).
    public func run() -> Never {
        signal(SIGPIPE, SIG_IGN)
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            for session in sessions {
                fds.append(pollfd(fd: session.pidfd, events: Int16(POLLIN), revents: 0))
                if let client = session.client { fds.append(pollfd(fd: client, events: Int16(POLLIN), revents: 0)) }
            }
            guard poll(&fds, nfds_t(fds.count), -1) > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == listener {
                    accept()
                } else if let session = sessions.first(where: { $0.pidfd == entry.fd }) {
                    finish(session)
                } else if let session = sessions.first(where: { $0.client == entry.fd }) {
                    control(session)
                }
            }
        }
    }

    private func accept() {
        let client = Glibc.accept(listener, nil, nil)
        guard client >= 0 else { return }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        // A client that stalls in its request does not stall the others for long.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var stdio: [Int32] = []
        defer { for fd in stdio { close(fd) } }
        do {
            guard let line = UnixSocket.readLine(client, limit: 1 << 22) else {
                throw CommandLauncher.Failure(message: "no request", errno: EPROTO)
            }
            let request = try JSONDecoder().decode(ExecAgentRequest.self, from: Data(line.utf8))
            if !request.process.terminal { stdio = try DescriptorPassing.receive(from: client) }
            let started = try launcher.launch(request, stdio: stdio)
            let pidfd = LinuxCalls.pidfdOpen(started.pid)
            send(.started(pid: started.pid), to: client)
            if let master = started.master {
                try? DescriptorPassing.send([master], over: client)
                close(master)
            }
            guard pidfd >= 0 else {
                // Without a pidfd (a kernel before 5.3), wait here: still correct, one at a time.
                var status: Int32 = 0
                waitpid(started.pid, &status, 0)
                send(Self.event(status), to: client)
                close(client)
                return
            }
            timeout = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            sessions.append(Session(client: client, pid: started.pid, pidfd: pidfd))
        } catch let failure as CommandLauncher.Failure {
            send(.failed(message: failure.message, errno: failure.errno), to: client)
            close(client)
        } catch {
            send(.failed(message: "\(error)", errno: EINVAL), to: client)
            close(client)
        }
    }

    /// A line from the client: a signal for the command; its end: the command is killed.
    private func control(_ session: Session) {
        guard let client = session.client else { return }
        guard let line = UnixSocket.readLine(client),
            let message = try? JSONDecoder().decode(ExecAgentControl.self, from: Data(line.utf8))
        else {
            close(client)
            session.client = nil
            kill(-session.pid, SIGKILL)
            kill(session.pid, SIGKILL)
            return
        }
        if let signal = message.signal { kill(session.pid, signal) }
    }

    private func finish(_ session: Session) {
        var status: Int32 = 0
        guard waitpid(session.pid, &status, WNOHANG) == session.pid else { return }
        if let client = session.client {
            send(Self.event(status), to: client)
            close(client)
        }
        close(session.pidfd)
        sessions.removeAll { $0 === session }
    }

    static func event(_ status: Int32) -> ExecAgentEvent {
        let signal = status & 0x7f
        return signal == 0 ? .exited(status: (status >> 8) & 0xff, signal: nil) : .exited(status: nil, signal: signal)
    }

    private func send(_ event: ExecAgentEvent, to client: Int32) {
        guard let data = try? JSONEncoder().encode(event) else { return }
        UnixSocket.writeLine(client, String(decoding: data, as: UTF8.self))
    }
}
