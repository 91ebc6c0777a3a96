import AirlockEgress
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The one process that keeps a sandbox running, detached from the CLI.
///
/// It holds the sandbox's user namespace open, starts the sandbox init inside a new pid
/// namespace, reports readiness to whoever started it (descriptor 3), and waits. A stop request
/// (SIGTERM) is passed to the init, which stops the container. If the supervisor itself is
/// killed, parent-death signals take down the init and with it every process of the sandbox.
public struct Supervisor {
    public let store: StateStore
    public let name: String
    static let readyFD: Int32 = 3

    public init(store: StateStore, name: String) {
        self.store = store
        self.name = name
    }

    public func run() -> Int32 {
        let paths = store.sandbox(name)
        Self.raiseOpenFileLimit()
        // Looked at once: the group the chain joins, the status's note and the release agree.
        let cgroup = SandboxCgroup(paths)
        let signals = SignalSet([SIGCHLD, SIGTERM, SIGINT, SIGHUP])
        signals.block()
        protectReadinessDescriptor(Self.readyFD)
        let runningLock: FileLock
        do {
            runningLock = try FileLock(path: paths.runningLock)
        } catch {
            return report(error: "\(error)")
        }
        // `ls` and friends take the lock shared for an instant to test it; only a lock that
        // stays held means another supervisor (starts are serialised by the sandbox lock).
        let acquired = (try? runningLock.acquire(timeout: 0.2, what: "sandbox \(name)")) != nil
        if acquired {
            Files.remove(paths.status)  // left by a supervisor that was killed
        }
        guard acquired else {
            // Another supervisor owns the sandbox; it is ready once its status exists.
            let deadline = Monotonic.now() + 30
            while paths.loadStatus() == nil && paths.isRunning && Monotonic.now() < deadline { usleep(20_000) }
            guard paths.loadStatus() != nil else {
                return report(error: "another supervisor of \(name) did not become ready")
            }
            writeLine(Self.readyFD, "ready")
            return 0
        }
        let started = Monotonic.now()
        var namespaceReady = started
        let namespace: UserNamespace
        let chain: ChildProcess
        var egress: EgressServer?
        var gateway: ChildProcess?
        let ports: PortForwarder
        let control: SupervisorControl
        let owner: ProcessIdentity?
        let docker: Bool
        do {
            let record = try paths.loadRecord()
            // On cgroup v2 the supervisor starts in a systemd scope of its own and lays out the
            // sandbox's groups there, before anything of the sandbox runs.
            try cgroup.enter(SandboxSpec.hostLimits(record))
            owner = record.disposable?.owner
            docker = record.docker == true
            namespace = try UserNamespace(identity: try SandboxIdentity.current())
            namespaceReady = Monotonic.now()
            StepTiming.mark("supervisor: user namespace made")
            let ready = try Pipe2()
            let (listenersHere, listenersThere) = try DescriptorPassing.socketPair()
            // After the listeners, the init makes sockets in the sandbox's namespace on it.
            let namespaceSockets = NamespaceSockets(fd: listenersHere)
            let published = record.ports ?? []
            // The init and all it starts count against the sandbox's limits; the supervisor
            // and its proxy do not, so an over-limit sandbox cannot take them down.
            chain = try ChildProcess.spawn(
                cgroup.joinPrefix() + namespace.enterPrefix + [
                    "setpriv", "--pdeathsig", "SIGKILL", "--",
                    "unshare", "--pid", "--net", "--fork", "--kill-child=SIGKILL", "--mount-proc", "--",
                    Executables.current, "_init", "--state", store.root, name,
                ], stdin: .null,
                extraDescriptors: [Self.readyFD: ready.write, SandboxInit.listenersFD: listenersThere])
            ready.closeWrite()
            close(listenersThere)
            StepTiming.mark("supervisor: init chain started")
            // The init sends the git filters' descriptors, then the listeners, before it starts
            // the container, so they are served before anything in the sandbox can use them.
            let guardPlan = GitGuardPlan.load(paths)
            // Nothing received means the init failed first; its readiness line says why.
            let devices = guardPlan.filtered.isEmpty ? [] : try? DescriptorPassing.receive(from: listenersHere)
            if let devices, !guardPlan.roots.isEmpty {
                try guardPlan.serve(devices: devices, paths: paths)
            }
            if record.networkMode == .policy {
                // Nothing received means the init failed before it could send; its readiness
                // line says why.
                if let listeners = try? DescriptorPassing.receive(from: listenersHere) {
                    var configuration = try EgressConfiguration(store: store, name: name)
                    if let attachment = record.mcp {
                        let started = try startGateway(attachment, record: record, paths: paths)
                        gateway = started.process
                        configuration.mcpGateway = started.route
                    }
                    let kinds = EgressListener.serving(
                        publishing: published.map(\.port), engine: record.docker == true)
                    egress = try EgressServer.start(
                        listeners: kinds, descriptors: listeners, configuration: configuration)
                    StepTiming.mark("supervisor: egress listeners served")
                }
            }
            var answer = readReadinessLine(ready.read).trimmingCharacters(in: .whitespacesAndNewlines)
            StepTiming.mark("supervisor: init says \(answer)")
            if answer == "ready" && record.networkMode == .policy && egress == nil {
                answer = "error: the sandbox init passed no egress listeners"
            }
            ports = PortForwarder(sockets: namespaceSockets)
            var problem: String?
            if answer != "ready" {
                problem = answer.hasPrefix("error: ") ? String(answer.dropFirst(7)) : "the sandbox init exited early"
            }
            do {
                if problem == nil { for spec in published { try ports.publish(spec) } }
            } catch {
                problem = "\(error)"
            }
            if let problem {
                chain.signal(SIGKILL)
                chain.wait()
                namespace.close()
                egress?.stop()
                ports.stop()
                if let gateway { Self.stop(gateway) }
                return report(error: problem)
            }
            control = try SupervisorControl(paths: paths, forwarder: ports, egress: egress)
            let initPID = try Self.onlyChild(of: chain.pid)
            let limits = cgroup.support.note
            var status = RunningStatus(
                supervisorPID: getpid(), initPID: initPID, started: Date(), limitsEnforced: limits == nil,
                limitsNote: limits)
            status.ports = ports.active
            try paths.save(status)
            control.start()
        } catch {
            return report(error: "\(error)")
        }
        writeLine(Self.readyFD, "ready")
        close(Self.readyFD)
        log(
            String(
                format: "sandbox %@ running (user namespace %.1f ms, init and container %.1f ms)", name,
                (namespaceReady - started) * 1000, (Monotonic.now() - namespaceReady) * 1000))

        var killDeadline: Double?
        var status: Int32 = 0
        var ownerGone = false
        loop: while true {
            // A disposable sandbox checks on its owner often: when the owner dies, by any
            // signal, nothing else would end the sandbox.
            let signal = signals.wait(timeout: owner == nil ? 1 : 0.25)
            if signal == SIGTERM || signal == SIGINT || signal == SIGHUP, killDeadline == nil {
                log("stop requested")
                // The chain's child is the sandbox init; it stops the container gracefully.
                if let initPID = paths.loadStatus()?.initPID { kill(initPID, SIGTERM) }
                killDeadline = Monotonic.now() + SandboxInit.stopGrace(docker: docker) + 5
            }
            if let owner, !ownerGone, !owner.isAlive {
                ownerGone = true
                log("owner process \(owner.pid) is gone: removing the sandbox")
                // The chain's unshare: the sandbox init, pid 1 of the sandbox's pid namespace,
                // dies with it (--kill-child), and every process of the sandbox with that.
                chain.signal(SIGKILL)
            }
            if let exited = chain.poll() {
                status = exited
                break loop
            }
            if let deadline = killDeadline, Monotonic.now() > deadline {
                chain.signal(SIGKILL)
            }
        }
        Files.remove(paths.status)
        control.stop()
        ports.stop()
        egress?.stop()
        if let gateway { Self.stop(gateway) }
        HostPersistenceGuard.removeMade(listedIn: paths.guardMade)
        cgroup.release()
        log("sandbox \(name) stopped (status \(status))")
        if ownerGone { removeSandbox(namespace: namespace) }
        namespace.close()
        runningLock.release()
        return 0
    }

    /// Starts the sandbox's MCP gateway on a free loopback port with a new token; it dies with
    /// this supervisor (parent-death signal), and its servers with it.
    private func startGateway(_ attachment: SandboxRecord.MCPAttachment, record: SandboxRecord, paths: SandboxPaths)
        throws -> (process: ChildProcess, route: MCPGatewayRoute)
    {
        let route = MCPGatewayRoute(port: try Self.freeLoopbackPort(), token: randomToken())
        var environment = ProcessInfo.processInfo.environment
        environment["AIRLOCK_MCP_TOKEN"] = route.token
        let process = try ChildProcess.spawn(
            [
                "setpriv", "--pdeathsig", "SIGTERM", "--", Executables.current, "mcp", "gateway", "run", "--transport",
                "streaming", "--port", String(route.port), "--workspace", record.workspace, "--no-profile-writes",
                "--call-log", paths.mcpCallLog,
            ]
                + attachment.gatewayArguments,
            environment: environment, stdin: .null, stdout: .file(paths.mcpGatewayLog),
            stderr: .file(paths.mcpGatewayLog))
        log("MCP gateway started on 127.0.0.1:\(route.port) (log: \(paths.mcpGatewayLog))")
        return (process, route)
    }

    /// Asks the gateway to stop (it removes its servers' sandboxes), then insists.
    private static func stop(_ gateway: ChildProcess) {
        gateway.signal(SIGTERM)
        let deadline = Monotonic.now() + 15
        while gateway.poll() == nil {
            if Monotonic.now() > deadline {
                gateway.signal(SIGKILL)
                gateway.wait()
                return
            }
            usleep(20_000)
        }
    }

    /// A loopback TCP port nothing listens on now.
    static func freeLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw SystemCallError("bind", errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Removes the files of a disposable sandbox whose owner died.
    private func removeSandbox(namespace: UserNamespace) {
        do {
            try store.removeSandboxFiles(name, namespace: namespace)
        } catch {
            log("error: cannot remove sandbox \(name): \(error)")
        }
    }

    private func report(error: String) -> Int32 {
        log("error: \(error)")
        writeLine(Self.readyFD, "error: \(error)")
        return 1
    }

    private func log(_ message: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        FileHandle.standardError.write(Data("\(stamp) \(message)\n".utf8))
    }

    /// The git filters hold a descriptor per file the sandbox's git has looked up, and the
    /// proxy one per connection: the soft limit a shell gives (1024) is far too few, so the
    /// supervisor takes the hard limit.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// The single child of `pid` (the chain's `unshare` forks exactly one: the init).
    static func onlyChild(of pid: pid_t) throws -> pid_t {
        let text = (try? Files.read("/proc/\(pid)/task/\(pid)/children")) ?? ""
        guard let first = text.split(separator: " ").first, let child = pid_t(first) else {
            throw AirlockError(.failed, "cannot find the sandbox init process")
        }
        return child
    }
}
