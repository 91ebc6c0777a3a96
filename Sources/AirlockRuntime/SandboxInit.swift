import AirlockEgress
import AirlockOCI
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Pid 1 of a sandbox's private pid namespace, root of its user namespace.
///
/// It mounts the overlay root filesystem, asks the runtime to start the container, reports
/// "ready" (or the error) on descriptor 3, then reaps processes until the container ends or
/// it is told to stop. When it exits, the kernel kills everything left in its pid namespace:
/// no sandbox process can outlive it, and it cannot outlive the supervisor (parent-death signal).
public struct SandboxInit {
    public let paths: SandboxPaths
    public let name: String
    public let imageRootfs: String
    public let driver: RuntimeDriver
    public let network: SandboxRecord.NetworkMode
    /// The sandbox's published ports: transparent capture leaves them to servers inside.
    public let publishedPorts: [UInt16]
    /// Whether a Docker engine runs beside the agent (``DockerEngine``).
    public let docker: Bool
    static let readyFD: Int32 = 3
    /// A Unix socket to the supervisor, which receives the egress listeners on it and then
    /// asks for sockets in the sandbox's network namespace (``NamespaceSockets``).
    static let listenersFD: Int32 = 4
    static let stopGrace: Double = 10

    public init(paths: SandboxPaths, name: String, imageRootfs: String, driver: RuntimeDriver, record: SandboxRecord) {
        self.paths = paths
        self.name = name
        self.imageRootfs = imageRootfs
        self.driver = driver
        self.network = record.networkMode
        self.publishedPorts = (record.ports ?? []).map(\.port)
        self.docker = record.docker == true
    }

    /// Runs until the sandbox stops; returns the exit status for the process.
    public func run() -> Int32 {
        let signals = SignalSet([SIGCHLD, SIGTERM, SIGINT, SIGHUP])
        signals.block()
        protectReadinessDescriptor(Self.readyFD)
        protectReadinessDescriptor(Self.listenersFD)
        let containerPID: pid_t
        var enginePID: pid_t?
        do {
            try mountGitFilters()
            try setUpNetwork()
            try mountRootfs()
            if docker { try mountWritableSysfs() }
            try prepareRuntimeState()
            let logFile = paths.directory + "/runtime.log"
            Files.remove(logFile)
            let pidFile = paths.runtimeRoot + "/" + name + ".pid"
            let runtime = try ChildProcess.spawn(
                driver.runArguments(bundle: paths.bundle, id: name, pidFile: pidFile, logFile: logFile),
                stdin: .null, stdout: .null, stderr: driver.logsToFile ? .null : .file(logFile))
            let runtimeStarted = Monotonic.now()
            let status = runtime.wait()
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "%@ took %.1f ms to start the container\n", driver.binary,
                        (Monotonic.now() - runtimeStarted) * 1000
                    ).utf8))
            guard status == 0 else {
                let output = ChildProcess.Output(status: status, stdout: "", stderr: (try? Files.read(logFile)) ?? "")
                throw AirlockError(
                    .failed, "\(driver.binary) could not start the sandbox: \(Self.runtimeError(output))")
            }
            guard
                let pid = (try? Files.read(pidFile)).flatMap({
                    pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
                })
            else { throw AirlockError(.failed, "\(driver.binary) started the sandbox but wrote no pid file") }
            containerPID = pid
            if docker { enginePID = try startEngine() }
        } catch {
            writeLine(Self.readyFD, "error: \(error)")
            return 1
        }
        writeLine(Self.readyFD, "ready")
        close(Self.readyFD)

        var stopDeadline: Double?
        var containerStatus: Int32?
        while true {
            let signal = signals.wait(timeout: 1)
            if signal == SIGTERM || signal == SIGINT || signal == SIGHUP, stopDeadline == nil {
                kill(containerPID, SIGTERM)
                // The engine stops its containers; whatever is left when this process ends goes
                // with its pid namespace.
                if let enginePID { kill(enginePID, SIGTERM) }
                stopDeadline = Monotonic.now() + Self.stopGrace
            }
            for child in reapChildren() {
                if child.pid == containerPID { containerStatus = child.status }
                if child.pid == enginePID { enginePID = nil }
            }
            if containerStatus == nil && !Self.isAlive(containerPID) { containerStatus = 0 }
            // The agent's container has ended; on a stop, the engine is given its grace too.
            if let containerStatus, stopDeadline == nil || !Self.isAlive(enginePID) { return containerStatus }
            if let deadline = stopDeadline, Monotonic.now() > deadline { return 137 }
        }
    }

    private static func isAlive(_ pid: pid_t?) -> Bool {
        guard let pid else { return false }
        return kill(pid, 0) == 0 || errno != ESRCH
    }

    /// Starts the Docker engine's container and waits until its socket answers; returns the
    /// engine's pid. Its output goes to `docker.log` in the sandbox's directory.
    private func startEngine() throws -> pid_t {
        let started = Monotonic.now()
        try linkDockerSocket()
        let id = DockerEngine.containerID(name)
        let pidFile = paths.runtimeRoot + "/" + id + ".pid"
        let logFile = DockerEngine.log(paths)
        let runtimeLog = paths.directory + "/engine-runtime.log"
        Files.remove(runtimeLog)
        let socket = DockerEngine.socketHostDirectory(paths) + "/docker.sock"
        Files.remove(socket)
        let runtime = try ChildProcess.spawn(
            driver.runArguments(bundle: DockerEngine.bundle(paths), id: id, pidFile: pidFile, logFile: runtimeLog),
            stdin: .null, stdout: .file(logFile), stderr: .file(logFile))
        guard runtime.wait() == 0 else {
            let output = ChildProcess.Output(status: 1, stdout: "", stderr: (try? Files.read(runtimeLog)) ?? "")
            throw AirlockError(.failed, "the Docker engine's container did not start: \(Self.runtimeError(output))")
        }
        guard
            let pid = (try? Files.read(pidFile)).flatMap({ pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        else { throw AirlockError(.failed, "\(driver.binary) started the Docker engine but wrote no pid file") }
        let deadline = Monotonic.now() + DockerEngine.startTimeout
        while !DockerEngine.answers(socket: socket) {
            guard kill(pid, 0) == 0 || errno != ESRCH, Monotonic.now() < deadline else {
                let said = DockerEngine.lastError(inLog: logFile)
                throw AirlockError(
                    .failed, "the Docker engine did not start: \(said) (its log: \(logFile))")
            }
            _ = reapChildren()
            usleep(20_000)
        }
        FileHandle.standardError.write(
            Data(
                String(
                    format: "the Docker engine answered %.1f ms after its start\n", (Monotonic.now() - started) * 1000
                ).utf8))
        return pid
    }

    /// `/run/docker.sock` in the sandbox leads to the engine's socket, for tools that look
    /// only there. Made without following any link the sandbox may have put on the way.
    private func linkDockerSocket() throws {
        let root = open(paths.rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(paths.rootfs)", errno: errno) }
        defer { close(root) }
        let run = openat(root, "run", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard run >= 0 else { return }  // no /run of its own: DOCKER_HOST still leads there
        defer { close(run) }
        var info = stat()
        if fstatat(run, "docker.sock", &info, AT_SYMLINK_NOFOLLOW) == 0 { return }
        _ = symlinkat(DockerEngine.socket, run, "docker.sock")
    }

    /// Loopback in this process's fresh network namespace, which the container joins. Under
    /// the policy, every address routes to loopback and the listeners the supervisor serves
    /// are made here and handed up; with no network, nothing listens and nothing leads out.
    /// Then the supervisor may ask for sockets here, to dial the sandbox's published ports.
    private func setUpNetwork() throws {
        do {
            try Loopback.configure()
            // As in Docker's containers: any program may listen on any port of its own
            // namespace (a dev server on 80), which leads nowhere but to the sandbox itself.
            Self.letEveryProgramListenOnLowPorts()
            if network == .policy {
                let listeners = try EgressListener.serving(publishing: publishedPorts, engine: docker).map {
                    try $0.open()
                }
                try DescriptorPassing.send(listeners, over: Self.listenersFD)
                for fd in listeners { close(fd) }
            }
        } catch {
            close(Self.listenersFD)
            throw AirlockError(.failed, "cannot set up the sandbox network: \(error)")
        }
        NamespaceSockets.serve(on: Self.listenersFD)
    }

    private static func letEveryProgramListenOnLowPorts() {
        let fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = write(fd, "0", 1)
        close(fd)
    }

    /// The filters in front of the workspace's `.git` directories (see ``GitGuardPlan``):
    /// mounted here, served by the supervisor, which gets their descriptors before the
    /// container starts.
    private func mountGitFilters() throws {
        let plan = GitGuardPlan.load(paths)
        do {
            let devices = try plan.prepareInInit()
            guard !devices.isEmpty else { return }
            try DescriptorPassing.send(devices, over: Self.listenersFD)
            for fd in devices { close(fd) }
        } catch {
            throw AirlockError(.failed, "cannot set up the git guard: \(error)")
        }
    }

    /// A writable sysfs of the sandbox's network namespace, mounted here before any container's:
    /// every sysfs mount of one network namespace shares one superblock, whose first mount
    /// decides whether it is writable. The agent's `/sys` stays read-only (its mount's own
    /// flag); a privileged container of the Docker engine can then have a writable one.
    private func mountWritableSysfs() throws {
        let directory = paths.directory + "/sysfs"
        try Files.makeDirectory(directory, mode: 0o700)
        guard Glibc.mount("sysfs", directory, "sysfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil) == 0 else {
            throw SystemCallError("mount sysfs for the Docker engine", errno: errno)
        }
    }

    private func mountRootfs() throws {
        try OverlayRootfs(lower: imageRootfs, upper: paths.upper, work: paths.work, target: paths.rootfs).mount()
    }

    /// Each start gets fresh runtime state: a killed supervisor may have left some behind.
    private func prepareRuntimeState() throws {
        if Files.exists(paths.runtimeRoot) {
            do {
                try FileManager.default.removeItem(atPath: paths.runtimeRoot)
            } catch {
                throw AirlockError(.failed, "cannot clear \(paths.runtimeRoot): \(error.localizedDescription)")
            }
        }
        try Files.makeDirectory(paths.runtimeRoot, mode: 0o700)
    }

    /// The useful part of a runtime's error (runc prints JSON log lines or `msg="..."`).
    static func runtimeError(_ output: ChildProcess.Output) -> String {
        let line = output.lastErrorLine
        if let range = line.range(of: "msg=\"") {
            return String(line[range.upperBound...]).replacingOccurrences(of: "\\\"", with: "'")
                .replacingOccurrences(of: "\"", with: "")
        }
        return line
    }
}
