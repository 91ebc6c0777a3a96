import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A sandbox's groups on cgroup v2, inside the systemd scope its supervisor runs in:
///
///     airlock-NAME.scope     the scope (Delegate=yes): memory, pids and cpu for its children
///     ├── supervisor         the supervisor, its proxy and gateway: outside the limits
///     └── sandbox            memory.max, cpu.max, and pids.max of --pids plus the reserve
///         ├── own            pids.max of --pids: the init chain and every process it starts
///         └── exec           the exec agent, which forks each command in the reserve
///
/// v2 lets a group with controllers for its children hold no process itself, so the
/// supervisor and the exec agent each get a leaf of their own where v1 keeps them in the
/// parent.
struct UnifiedSandboxGroup {
    /// The scope's directory.
    let scope: String

    var supervisor: String { scope + "/supervisor" }
    var sandbox: String { scope + "/sandbox" }
    var own: String { sandbox + "/" + SandboxCgroup.ownGroup }
    var exec: String { sandbox + "/" + Self.execGroup }

    /// The leaf the exec agent moves to (the agent knows the name too).
    static let execGroup = "exec"

    /// Lays the groups out and writes the limits; called by the supervisor, which must be the
    /// scope's only process, before anything of the sandbox runs.
    func make(_ limits: SandboxRecord.Limits) throws {
        guard let group = SystemdDelegation.group(), CgroupSupport.root + group == scope else {
            throw AirlockError(
                .failed,
                "the supervisor is not in its systemd scope \(scope) (it is in \(SystemdDelegation.group() ?? "no v2 group"))"
            )
        }
        try makeGroup(supervisor)
        try write("0", to: supervisor + "/cgroup.procs")
        // `systemd-run` became `setsid`, which forked the supervisor: it may not have left yet.
        try write("+memory +pids +cpu", to: scope + "/cgroup.subtree_control", retryBusy: true)
        try makeGroup(sandbox)
        for (file, value) in Self.settings(limits) {
            let path = sandbox + "/" + file
            // Swap accounting is off on many kernels: that file is then absent.
            if file.hasPrefix("memory.swap"), !Files.exists(path) { continue }
            try write(value, to: path)
        }
        try write("+pids", to: sandbox + "/cgroup.subtree_control")
        try makeGroup(own)
        try makeGroup(exec)
        try write(limits.pids.map(String.init) ?? "max", to: own + "/pids.max")
    }

    /// The v2 files and values of the sandbox's group for `limits` (its pids limit with the
    /// reserve).
    static func settings(_ limits: SandboxRecord.Limits) -> [(String, String)] {
        let period: Int64 = 100_000
        let memory = limits.memoryBytes.map(String.init) ?? "max"
        return [
            ("memory.max", memory),
            // No swap past the limit: as v1's memsw, the total of memory and swap is bounded.
            ("memory.swap.max", limits.memoryBytes == nil ? "max" : "0"),
            ("pids.max", limits.pids.map { String($0 + SandboxCgroup.execReserve) } ?? "max"),
            ("cpu.max", (limits.cpus.map { String(Int64($0 * Double(period))) } ?? "max") + " \(period)"),
        ]
    }

    /// Processes the OOM killer ended in the sandbox (`memory.events` counts the subtree).
    func oomKills() -> Int? {
        guard let text = try? Files.read(sandbox + "/memory.events") else { return nil }
        return SandboxCgroup.counter("oom_kill", in: text)
    }

    /// Whether the scope is gone, waiting up to `seconds` for systemd to see it empty.
    func scopeGone(within seconds: Double) -> Bool {
        let deadline = Monotonic.now() + seconds
        while Files.exists(scope) {
            guard Monotonic.now() < deadline else { return false }
            usleep(20_000)
        }
        return true
    }

    /// Removes the sandbox's groups; systemd removes the scope once the supervisor is gone.
    func release(deadline: Double) {
        SandboxCgroup.removeGroup(sandbox, deadline: deadline)
    }

    private func makeGroup(_ dir: String) throws {
        guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
            throw AirlockError(
                .failed, "cannot make the sandbox's cgroup \(dir)", cause: SystemCallError("mkdir", errno: errno))
        }
    }

    private func write(_ value: String, to path: String, retryBusy: Bool = false) throws {
        let deadline = Monotonic.now() + 2
        while true {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw AirlockError(
                    .failed, "cannot set up the sandbox's cgroup", cause: SystemCallError("open \(path)", errno: errno))
            }
            let written = value.withCString { Glibc.write(fd, $0, strlen($0)) }
            let error = errno
            close(fd)
            if written >= 0 { return }
            if retryBusy && error == EBUSY && Monotonic.now() < deadline {
                usleep(10_000)
                continue
            }
            throw AirlockError(
                .failed, "cannot set \(path) to \(value)", cause: SystemCallError("write", errno: error))
        }
    }
}
