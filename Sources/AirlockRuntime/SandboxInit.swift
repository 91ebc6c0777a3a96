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
    /// What the engine sees of the host's, read-only (``DockerEngine/Share``).
    let engineShares: [DockerEngine.Share]
    static let readyFD: Int32 = 3
    /// A Unix socket to the supervisor, which receives the egress listeners on it and then
    /// asks for sockets in the sandbox's network namespace (``NamespaceSockets``).
    static let listenersFD: Int32 = 4
    /// How long a stop waits for the sandbox's processes to end: with a Docker engine, long
    /// enough for it to give its containers their own grace (10 s, as `docker stop`).
    static func stopGrace(docker: Bool) -> Double { docker ? 16 : 10 }

    public init(paths: SandboxPaths, name: String, imageRootfs: String, driver: RuntimeDriver, record: SandboxRecord) {
        self.paths = paths
        self.name = name
        self.imageRootfs = imageRootfs
        self.driver = driver
        self.network = record.networkMode
        self.publishedPorts = (record.ports ?? []).map(\.port)
        self.docker = record.docker == true
        self.engineShares = docker ? DockerEngine.shares(record: record, paths: paths) : []
    }

    /// Runs until the sandbox stops; returns the exit status for the process.
    public func run() -> Int32 {
        let signals = SignalSet([SIGCHLD, SIGTERM, SIGINT, SIGHUP])
        signals.block()
        protectReadinessDescriptor(Self.readyFD)
        protectReadinessDescriptor(Self.listenersFD)
        let containerPID: pid_t
        var enginePID: pid_t?
        var engineNamespaces: ChildProcess?
        var execAgentPID: pid_t?
        StepTiming.mark("init: started")
        do {
            try mountGitFilters()
            if docker { engineNamespaces = try engineLauncher.enterOwnNetworkNamespace() }
            try setUpNetwork()
            try mountRootfs()
            if docker {
                try engineLauncher.mountWritableSysfs()
                try engineLauncher.stageShares()
            }
            StepTiming.mark("init: git filters, network and root file system")
            try prepareRuntimeState()
            try UnifiedCgroupMask.apply(for: driver.kind)
            // The agent starts beside the runtime and is told the container's pid once it runs:
            // its own start costs the first command nothing.
            let waitingAgent = startExecAgent(containerPID: nil)
            execAgentPID = waitingAgent?.pid
            let logFile = paths.directory + "/runtime.log"
            Files.remove(logFile)
            let runtimeStarted = Monotonic.now()
            let pid = try Self.runContainer(
                driver: driver, bundle: paths.bundle, id: name, runtimeRoot: paths.runtimeRoot, logFile: logFile,
                stdout: .null, stderr: .null, what: "the sandbox")
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "%@ took %.1f ms to start the container\n", driver.binary,
                        (Monotonic.now() - runtimeStarted) * 1000
                    ).utf8))
            containerPID = pid
            StepTiming.mark("init: \(driver.kind.rawValue) started the container")
            if docker { enginePID = try engineLauncher.start() }
            if let waitingAgent {
                writeLine(waitingAgent.containerPID.write, String(pid))
                waitingAgent.containerPID.closeWrite()
            }
            // The first command (`run`'s) is on its way: through the agent it starts several
            // times sooner than through the runtime's exec, worth the wait.
            if let agent = execAgentPID, !waitForExecAgent(agent) { execAgentPID = nil }
            StepTiming.mark("init: exec agent listening")
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
                stopDeadline = Monotonic.now() + Self.stopGrace(docker: docker)
            }
            for child in reapChildren() where child.pid != engineNamespaces?.pid {
                if child.pid == containerPID { containerStatus = child.status }
                if child.pid == enginePID { enginePID = nil }
                // Killed (by the OOM killer, say): another takes its place while the container runs.
                if child.pid == execAgentPID {
                    execAgentPID =
                        stopDeadline == nil && containerStatus == nil
                        ? startExecAgent(containerPID: containerPID)?.pid : nil
                }
            }
            if containerStatus == nil && !Self.isAlive(containerPID) { containerStatus = 0 }
            // The agent's container has ended; on a stop, the engine is given its grace too.
            if let containerStatus, stopDeadline == nil || !Self.isAlive(enginePID) { return containerStatus }
            if let deadline = stopDeadline, Monotonic.now() > deadline { return 137 }
        }
    }

    /// Starts the exec agent (``ExecAgentServer``), which runs commands in the container from
    /// outside it; nil when it could not (`exec` then uses the runtime's). Without the
    /// container's pid, the agent reads it from the returned pipe (and ends if it closes
    /// first). Never under gVisor: its container's namespaces are the host kernel's, and a
    /// command started in them would run outside gVisor's kernel.
    private func startExecAgent(containerPID: pid_t?) -> (pid: pid_t, containerPID: Pipe2)? {
        Files.remove(paths.execSocket)
        guard driver.kind != .runsc, let pipe = try? Pipe2() else { return nil }
        let started = try? ChildProcess.spawn(
            [
                Executables.current, "_exec-agent", "--state",
                ((paths.directory as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent, name,
                containerPID.map { String($0) } ?? "-",
            ], stdin: containerPID == nil ? .fd(pipe.read) : .null, stdout: .file(paths.execAgentLog),
            stderr: .file(paths.execAgentLog))
        pipe.closeRead()
        return started.map { ($0.pid, pipe) }
    }

    /// Waits, briefly, until the agent listens; false when it died (and was reaped here).
    private func waitForExecAgent(_ agent: pid_t) -> Bool {
        let deadline = Monotonic.now() + 1
        var status: Int32 = 0
        while !Files.exists(paths.execSocket) && Monotonic.now() < deadline {
            if waitpid(agent, &status, WNOHANG) == agent { return false }
            usleep(1000)
        }
        return true
    }

    /// The engine always runs under runc, whatever the agent's container runs under: runc
    /// makes its bind mounts inside the engine's new user and mount namespaces, so the
    /// workspace arrives there locked read-only (``DockerEngine/Share``). crun 1.8 clones them
    /// outside and attaches them after, unlocked, and a privileged inner container could
    /// remount them writable (`tests/e2e/docker.sh` tries it).
    private var engineLauncher: DockerEngine.Launcher {
        DockerEngine.Launcher(
            paths: paths, name: name, driver: RuntimeDriver(kind: .runc, stateRoot: paths.runtimeRoot + "/engine"),
            shares: engineShares)
    }

    private static func isAlive(_ pid: pid_t?) -> Bool {
        guard let pid else { return false }
        return kill(pid, 0) == 0 || errno != ESRCH
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

    /// Runs the container of `bundle` detached, with the runtime's errors in `logFile` (runc's and
    /// crun's) and the runtime's and container's stdio as given; returns its pid, or fails
    /// naming `what`.
    static func runContainer(
        driver: RuntimeDriver, bundle: String, id: String, runtimeRoot: String, logFile: String,
        stdout: ChildProcess.Stdio, stderr: ChildProcess.Stdio, what: String
    ) throws -> pid_t {
        let pidFile = runtimeRoot + "/" + id + ".pid"
        let runtime = try ChildProcess.spawn(
            driver.runArguments(bundle: bundle, id: id, pidFile: pidFile, logFile: logFile),
            stdin: .null, stdout: stdout, stderr: stderr)
        let status = runtime.wait()
        guard status == 0 else {
            let said = ChildProcess.Output(status: status, stdout: "", stderr: (try? Files.read(logFile)) ?? "")
            // crun is chosen for the user where its probe passed: say how to leave it.
            let way =
                driver.kind == .crun
                ? " (a sandbox created with --runtime runc, or AIRLOCK_RUNTIME=runc, uses runc)" : ""
            throw AirlockError(.failed, "\(driver.binary) could not start \(what): \(runtimeError(said))\(way)")
        }
        guard
            let pid = (try? Files.read(pidFile)).flatMap({ pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        else { throw AirlockError(.failed, "\(driver.binary) started \(what) but wrote no pid file") }
        return pid
    }

    /// The useful part of a runtime's error (runc prints JSON log lines or `msg="..."`; runsc
    /// JSON lines, where the last error is the reason and warnings may follow it).
    static func runtimeError(_ output: ChildProcess.Output) -> String {
        struct Entry: Decodable {
            var level: String
            var msg: String
        }
        let entries = output.stderr.split(whereSeparator: \.isNewline).compactMap {
            try? JSONDecoder().decode(Entry.self, from: Data($0.utf8))
        }
        if let error = entries.last(where: { $0.level == "error" }) ?? entries.last {
            return error.msg.split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        let line = output.lastErrorLine
        if let range = line.range(of: "msg=\"") {
            return String(line[range.upperBound...]).replacingOccurrences(of: "\\\"", with: "'")
                .replacingOccurrences(of: "\"", with: "")
        }
        return line
    }
}
