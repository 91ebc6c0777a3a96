import AirlockOCI
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What enforces a sandbox's memory, CPU and pids limits on this host, for this user.
///
/// - cgroup v1 or hybrid (no systemd delegation): a subtree `/sys/fs/cgroup/<controller>/airlock/<user>`
///   in the memory, pids and cpu controllers that the user owns. `scripts/install.sh` makes it
///   with sudo; root makes its own. Each sandbox gets a child group there, its limits are
///   written before anything runs, and every process of the sandbox starts inside it.
/// - cgroup v2 with systemd: a transient scope of the user's systemd manager with
///   `Delegate=yes` per sandbox (``SystemdDelegation``), which the supervisor starts in and
///   lays out (``UnifiedSandboxGroup``).
/// - neither: per-process limits (`RLIMIT_NPROC`, and `RLIMIT_DATA` for disposable sandboxes).
public struct CgroupSupport: Sendable, Equatable {
    public enum Version: String, Sendable, Codable {
        case v1, hybrid, v2
    }

    /// How the limits hold.
    public enum Mechanism: String, Sendable, Codable {
        /// The user's delegated cgroup v1 subtree.
        case cgroupV1 = "cgroup v1"
        /// A scope of the user's systemd manager on cgroup v2, delegated to the user.
        case cgroupV2 = "cgroup v2"
        /// Per-process resource limits only.
        case rlimits = "per-process rlimits"
    }

    public var version: Version
    public var mechanism: Mechanism
    /// nil when cgroup limits are enforced; otherwise why not, and the fix.
    public var note: String?
    /// Under each v1 controller, the directory this user may make groups in; on v2, the slice
    /// the sandboxes' scopes go in (relative to the root).
    public var base: String
    /// On v2, the systemd manager that makes the scopes.
    public var delegation: SystemdDelegation?

    /// The v1 controllers Airlock limits.
    public static let controllers = ["memory", "pids", "cpu"]
    public static let root = "/sys/fs/cgroup"

    /// The delegated directory of `user` under each v1 controller.
    public static func base(user: String) -> String { "/airlock/" + user }

    public static func detect(
        uid: uid_t = getuid(), user: String? = nil
    ) -> CgroupSupport {
        let name = user ?? SandboxIdentity.userName(uid) ?? String(uid)
        let base = base(user: name)
        let unified = Files.exists(root + "/cgroup.controllers")
        let version: Version = unified ? .v2 : (Files.exists(root + "/unified") ? .hybrid : .v1)
        if version == .v2 {
            let delegation = SystemdDelegation(uid: uid)
            if let problem = delegation.problem(user: name, controllers: controllers) {
                return CgroupSupport(version: .v2, mechanism: .rlimits, note: problem, base: base)
            }
            return CgroupSupport(
                version: .v2, mechanism: .cgroupV2, note: nil, base: delegation.sliceGroup, delegation: delegation)
        }
        let missing = controllers.filter { !Files.isDirectory(root + "/" + $0) }
        guard missing.isEmpty else {
            return CgroupSupport(
                version: version, mechanism: .rlimits,
                note:
                    "cgroup controllers \(missing.joined(separator: ", ")) are not mounted, so limits hold only per process (fix: mount them under \(root))",
                base: base)
        }
        if uid == 0 { return CgroupSupport(version: version, mechanism: .cgroupV1, note: nil, base: base) }
        let undelegated = controllers.filter { access(root + "/" + $0 + base, W_OK) != 0 }
        guard undelegated.isEmpty else {
            return CgroupSupport(
                version: version, mechanism: .rlimits,
                note:
                    "cgroup \(version.rawValue): no cgroup is delegated to \(name) (\(undelegated.joined(separator: ", "))), so memory and CPU are not limited and processes only per process (fix: \(delegationCommand(user: name)))",
                base: base)
        }
        return CgroupSupport(version: version, mechanism: .cgroupV1, note: nil, base: base)
    }

    /// The exact command that delegates the v1 subtree to `user` (what `scripts/install.sh` runs).
    public static func delegationCommand(user: String) -> String {
        let dirs = controllers.map { root + "/" + $0 + base(user: user) }.joined(separator: " ")
        return "sudo sh -c 'mkdir -p \(dirs) && chown \(user): \(dirs)'"
    }

    /// What enforces each limit, for `inspect`, the code-sandbox server and `doctor`.
    public func enforcement(disposable: Bool) -> [String: String] {
        switch mechanism {
        case .cgroupV1:
            let at = "\(Self.root)/<controller>\(base)"
            return [
                "memory": "cgroup v1 memory (\(at)): every process, tmpfs and shared memory counted",
                "pids": "cgroup v1 pids (\(at))", "cpus": "cgroup v1 cpu CFS quota (\(at))",
            ]
        case .cgroupV2:
            let at = "\(Self.root)\(base)/airlock-<sandbox>.scope, a systemd scope with Delegate=yes"
            return [
                "memory": "cgroup v2 memory.max (\(at)): every process, tmpfs and shared memory counted",
                "pids": "cgroup v2 pids.max (\(at))", "cpus": "cgroup v2 cpu.max (\(at))",
            ]
        case .rlimits:
            return [
                "memory": disposable
                    ? "RLIMIT_DATA of each process (shared memory and tmpfs are not counted)" : "not enforced",
                "pids": "RLIMIT_NPROC: processes of one user in the sandbox", "cpus": "not enforced",
            ]
        }
    }
}

/// One sandbox's place in the host's cgroups: made with its limits before the sandbox starts,
/// joined by its init chain, removed at stop. The runtime puts the container in a group of its
/// own inside this one, and every `exec` joins the container's group.
///
/// In the pids controller the sandbox's own processes live one level down, in `own`, which
/// holds `--pids`; the sandbox's group allows ``execReserve`` more. The exec agent moves itself
/// up there: it forks each command in the reserve, and the command moves itself into the
/// container's group (a full group takes a process moved in), so `exec` starts a command even
/// when the sandbox's processes hold every pid they may.
public struct SandboxCgroup: Sendable {
    public let support: CgroupSupport
    /// The group's name: the sandbox's, and a tag of its state store, since two stores of
    /// one user (`AIRLOCK_HOME`) may each have a sandbox of the same name.
    public let name: String

    public init(_ paths: SandboxPaths, support: CgroupSupport = .detect()) {
        self.name = Self.groupName(directory: paths.directory)
        self.support = support
    }

    init(name: String, support: CgroupSupport) {
        self.name = name
        self.support = support
    }

    /// `NAME-XXXXXXXX`: the sandbox directory's last component and a hash of the whole path.
    static func groupName(directory: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in directory.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let tag = String(hash & 0xffff_ffff, radix: 16)
        return (directory as NSString).lastPathComponent + "-" + String(repeating: "0", count: 8 - tag.count) + tag
    }

    /// The sandbox's group under one v1 controller.
    public func directory(_ controller: String) -> String {
        CgroupSupport.root + "/" + controller + support.base + "/" + name
    }

    /// On v2, the systemd scope the supervisor runs in.
    var unit: String { SystemdDelegation.unit(name) }

    /// The sandbox's groups on v2, in its supervisor's scope.
    var unified: UnifiedSandboxGroup {
        UnifiedSandboxGroup(scope: CgroupSupport.root + support.base + "/" + unit)
    }

    /// The sandbox's group as `inspect` shows it: under each v1 controller, or from the v2 root.
    public var reportedPath: String? {
        switch support.mechanism {
        case .rlimits: return nil
        case .cgroupV1: return support.base + "/" + name
        case .cgroupV2: return String(unified.sandbox.dropFirst(CgroupSupport.root.count))
        }
    }

    /// On v2, the group the container stays in (see ``SandboxSpec/containerCgroup``).
    public var containerGroup: String? {
        support.mechanism == .cgroupV2 ? String(unified.own.dropFirst(CgroupSupport.root.count)) : nil
    }

    /// The command prefix that starts the supervisor: on v2, in a systemd scope of its own.
    public func launchPrefix() -> [String] {
        guard support.mechanism == .cgroupV2, let delegation = support.delegation else { return [] }
        return delegation.scopePrefix(unit: unit)
    }

    /// On v2, run by the supervisor in its new scope: lays out the groups with the limits
    /// before the sandbox's first process (v1's are made by ``prepare(_:)`` before it starts).
    public func enter(_ limits: SandboxRecord.Limits) throws {
        guard support.mechanism == .cgroupV2 else { return }
        try unified.make(limits)
    }

    /// Makes the group and writes the limits; nothing of the sandbox runs yet. On v2 the
    /// supervisor makes its groups itself (``enter(_:)``); here the scope of a supervisor that
    /// just stopped is given the moment systemd takes to see it empty and remove it.
    public func prepare(_ limits: SandboxRecord.Limits) throws {
        switch support.mechanism {
        case .rlimits:
            return
        case .cgroupV2:
            // Still there: something the sandbox started outlived its killed supervisor (the
            // sandbox is not running; its lock is held). systemd ends it with the scope.
            if !unified.scopeGone(within: 5), let delegation = support.delegation {
                let stop = try ChildProcess.spawn(
                    delegation.stopCommand(unit: unit), stdin: .null, stdout: .null, stderr: .null)
                stop.wait()
                _ = unified.scopeGone(within: 5)
            }
        case .cgroupV1:
            for controller in CgroupSupport.controllers {
                let dir = directory(controller)
                let parent = (dir as NSString).deletingLastPathComponent
                if getuid() == 0 { try Files.makeDirectory(parent) }
                // A group left by a killed supervisor holds stale counters (the runtime reads
                // its OOM count at start): made anew.
                Self.removeGroup(dir, deadline: Monotonic.now() + 1)
                guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
                    throw AirlockError(
                        .failed, "cannot make the sandbox's cgroup \(dir)",
                        cause: SystemCallError("mkdir", errno: errno))
                }
            }
            let own = directory("pids") + "/" + Self.ownGroup
            guard mkdir(own, 0o755) == 0 || errno == EEXIST else {
                throw AirlockError(
                    .failed, "cannot make the sandbox's cgroup \(own)", cause: SystemCallError("mkdir", errno: errno))
            }
            for (file, value) in Self.v1Settings(limits) {
                let path = directory(String(file.prefix { $0 != "." })) + "/" + file
                // Swap accounting is off on many kernels: that file is then absent.
                if file.hasPrefix("memory.memsw"), !Files.exists(path) { continue }
                try write(value, to: path)
            }
            try write(limits.pids.map(String.init) ?? "max", to: own + "/pids.max")
        }
    }

    /// The pids group of the sandbox's own processes, inside the sandbox's (the exec agent
    /// knows the name too).
    static let ownGroup = "own"
    /// Processes the sandbox's pids group allows beyond `--pids`: the exec agent and the
    /// commands it is starting (each holds one until it has moved into the container's group).
    public static let execReserve: Int64 = 16

    /// The v1 files and values of the sandbox's group for `limits` (its pids limit with the
    /// reserve); `-1` lifts a limit that an earlier start set.
    static func v1Settings(_ limits: SandboxRecord.Limits) -> [(String, String)] {
        let period: Int64 = 100_000
        let memory = limits.memoryBytes.map(String.init) ?? "-1"
        return [
            ("memory.limit_in_bytes", memory),
            // Where swap is accounted, the total of memory and swap gets the same bound.
            ("memory.memsw.limit_in_bytes", memory),
            ("pids.max", limits.pids.map { String($0 + execReserve) } ?? "max"),
            ("cpu.cfs_period_us", String(period)),
            ("cpu.cfs_quota_us", limits.cpus.map { String(Int64($0 * Double(period))) } ?? "-1"),
        ]
    }

    private func write(_ value: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AirlockError(
                .failed, "cannot set a limit of sandbox \(name)", cause: SystemCallError("open \(path)", errno: errno))
        }
        defer { close(fd) }
        let written = value.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written >= 0 else {
            throw AirlockError(
                .failed, "cannot set \(path) to \(value)", cause: SystemCallError("write", errno: errno))
        }
    }

    /// The command prefix that starts `argv` inside the sandbox's group: the process tree started
    /// this way (and all it forks, sudo included) counts against the limits.
    public func joinPrefix() -> [String] {
        joinPrefix(unified.own)
    }

    /// The same, into `group` on v2 (one of the sandbox's leaves).
    func joinPrefix(_ group: String) -> [String] {
        let files: [String]
        switch support.mechanism {
        case .rlimits:
            return []
        case .cgroupV2:
            files = [group + "/cgroup.procs"]
        case .cgroupV1:
            files = CgroupSupport.controllers.map {
                directory($0) + ($0 == "pids" ? "/" + Self.ownGroup : "") + "/cgroup.procs"
            }
        }
        // `echo 0` moves the writer itself; then it becomes the command.
        let script =
            "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo 0 > \"$1\" || exit 125; shift; n=$((n-1)); done; exec \"$@\""
        return ["/bin/sh", "-c", script, "airlock-cgroup", String(files.count)] + files
    }

    /// The prefix of a runtime's exec chain (`crun exec`, `runc exec`; the exec agent needs
    /// none), started from outside the sandbox's group, which puts the command in `own`.
    ///
    /// - v1: crun manages no cgroup here, so its chain joins on the way in; runc's exec puts
    ///   the command in the container's group itself.
    /// - v2: the caller's login session is not the user's to move a process out of, so the
    ///   chain first asks the user's manager for a scope of its own (from there the user's
    ///   tree is the user's), then joins: crun's `own`, runc's the reserve's leaf `exec`,
    ///   from which runc moves the command into `own` (the container's group, which it was
    ///   given), so at the pids limit runc can still start its threads. Alone, runc's exec
    ///   would leave the command where it started: rootless runc ignores that it may not move it.
    public func execJoinPrefix(runtime: RuntimeDriver.Kind) -> [String] {
        switch support.mechanism {
        case .rlimits:
            return []
        case .cgroupV1:
            return runtime == .crun ? joinPrefix() : []
        case .cgroupV2:
            guard runtime != .runsc, let delegation = support.delegation else { return [] }
            return delegation.scopePrefix(unit: nil) + joinPrefix(runtime == .runc ? unified.exec : unified.own)
        }
    }

    /// Processes the kernel's OOM killer ended in the sandbox since its group was made.
    public func oomKills() -> Int? {
        switch support.mechanism {
        case .rlimits:
            return nil
        case .cgroupV2:
            return unified.oomKills()
        case .cgroupV1:
            return Self.oomKills(under: directory("memory"))
        }
    }

    /// v1 counts an OOM kill in the victim's own group only (the runtime puts the container in
    /// a group under the sandbox's): the sum over the subtree.
    static func oomKills(under dir: String) -> Int? {
        guard let text = try? Files.read(dir + "/memory.oom_control") else { return nil }
        var total = counter("oom_kill", in: text) ?? 0
        for entry in Files.entries(of: dir) where entry.kind == .directory {
            total += oomKills(under: dir + "/" + entry.name) ?? 0
        }
        return total
    }

    /// `key N` from a cgroup's flat-keyed file.
    static func counter(_ key: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key { return Int(fields[1]) }
        }
        return nil
    }

    /// Removes the group once its processes are gone.
    public func release() {
        switch support.mechanism {
        case .rlimits:
            return
        case .cgroupV2:
            unified.release(deadline: Monotonic.now() + 2)
        case .cgroupV1:
            // The kernel reaps the sandbox's last processes just after its init exits.
            let deadline = Monotonic.now() + 2
            for controller in CgroupSupport.controllers {
                Self.removeGroup(directory(controller), deadline: deadline)
            }
        }
    }

    /// Removes a cgroup and the groups under it (the runtime makes one for the container),
    /// deepest first.
    static func removeGroup(_ dir: String, deadline: Double) {
        for entry in Files.entries(of: dir) where entry.kind == .directory {
            removeGroup(dir + "/" + entry.name, deadline: deadline)
        }
        while rmdir(dir) != 0 && errno == EBUSY && Monotonic.now() < deadline { usleep(10_000) }
    }
}
