import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A command started in a running sandbox with descriptors for its standard streams: by the
/// sandbox's exec agent when it has one, else by the runtime's `exec`. What captures or keeps
/// its output (``Sandboxes/capture(_:_:input:timeout:outputLimit:)``, ``BackgroundProcess``)
/// does not tell them apart.
final class StartedExec: @unchecked Sendable {
    private enum Starter {
        case runtime(ChildProcess, Sandboxes.PreparedExec)
        case agent(ExecAgentClient, pid: Int32)
    }

    private let starter: Starter
    /// The sandbox init, on the host: every process of the sandbox descends from it.
    let initPID: Int32
    private var status: Int32?

    private init(starter: Starter, initPID: Int32) {
        self.starter = starter
        self.initPID = initPID
    }

    /// Starts `request` with `stdin`, `stdout` and `stderr` as its streams (the caller closes
    /// its own copies).
    static func start(
        _ sandboxes: Sandboxes, _ name: String, _ request: Sandboxes.ExecRequest, stdin: Int32?, stdout: Int32,
        stderr: Int32
    ) throws -> StartedExec {
        if let agent = ExecAgentClient.connect(sandboxes.store.sandbox(name)) {
            do {
                let (process, status, _) = try sandboxes.execProcess(name, request)
                let started = try agent.start(process, stdio: (stdin, stdout, stderr))
                return StartedExec(starter: .agent(agent, pid: started.pid), initPID: status.initPID)
            } catch let refusal as ExecAgentClient.Refusal where refusal.worthRetryingWithRuntime {
                agent.close()
            } catch let refusal as ExecAgentClient.Refusal {
                agent.close()
                throw refusal.failure
            } catch {
                agent.close()
                throw error
            }
        }
        let prepared = try sandboxes.prepareExec(name, request)
        do {
            let child = try ChildProcess.spawn(
                prepared.argv, stdin: stdin.map { .fd($0) } ?? .null, stdout: .fd(stdout), stderr: .fd(stderr))
            return StartedExec(starter: .runtime(child, prepared), initPID: prepared.initPID)
        } catch {
            prepared.removeFiles()
            throw error
        }
    }

    /// Its status as a shell reports it, once it has ended; never blocks.
    func poll() -> Int32? {
        if let status { return status }
        switch starter {
        case .runtime(let child, _):
            status = child.poll()
        case .agent(let agent, _):
            var entry = pollfd(fd: agent.socket, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&entry, 1, 0) > 0 else { return nil }
            status = (try? agent.nextEvent())?.shellStatus ?? 137
            agent.close()
        }
        return status
    }

    /// Waits for its end.
    func wait() -> Int32 {
        if let status { return status }
        switch starter {
        case .runtime(let child, _):
            status = child.wait()
        case .agent(let agent, _):
            status = (try? agent.nextEvent())?.shellStatus ?? 137
            agent.close()
        }
        return status ?? 137
    }

    /// The command's session (its pid, which leads it, as the sandbox init's namespace numbers
    /// it), once known.
    var session: Int32? {
        switch starter {
        case .runtime(_, let prepared): prepared.commandPID()
        case .agent(_, let pid): pid
        }
    }

    /// Kills the command and everything in its session, and what starts it.
    func killAll() {
        switch starter {
        case .runtime(let child, let prepared):
            // Under gVisor the command is not a host process: its kernel is told to kill it.
            if status == nil && prepared.driver.kind == .runsc { prepared.signal(SIGKILL, nsenter: child.pid) }
            ProcessTree.killCommand(runtime: status == nil ? child.pid : nil, session: session, sandboxInit: initPID)
        case .agent:
            ProcessTree.killCommand(runtime: nil, session: session, sandboxInit: initPID)
        }
    }

    /// Removes what the runtime's `exec` read and wrote, once the command is done.
    func finish() {
        if case .runtime(_, let prepared) = starter { prepared.removeFiles() }
    }

    /// Why the command never ran, when `status` says the runtime failed (the agent says so
    /// when it starts).
    func failure(status: Int32) -> ExecFailure? {
        guard case .runtime(_, let prepared) = starter else { return nil }
        return prepared.failure(status: status)
    }
}
