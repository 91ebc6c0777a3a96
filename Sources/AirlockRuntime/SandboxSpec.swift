import AirlockEgress
import AirlockImages
import AirlockOCI
import AirlockState

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a sandbox record into the OCI runtime spec the runtime enforces.
public struct SandboxSpec: Sendable {
    public var record: SandboxRecord
    public var paths: SandboxPaths
    public var imageRootfs: String
    public var user: Template.UserSetup
    /// What enforces the limits: a cgroup every process joins (see ``SandboxCgroup``), or
    /// per-process limits in the spec.
    public var limitsBy: CgroupSupport.Mechanism
    /// On cgroup v2, the group the container stays in (the sandbox's `own`, from the v2 root):
    /// given to the runtime, since runc would otherwise make one of its own beside `own`, held
    /// only to the sandbox's larger bound.
    public var containerCgroup: String?
    /// Variables of the services whose keys the proxy injects; inside they hold the sentinel.
    public var credentialVariables: [String] = []
    /// Workspace paths that run on the host later, bound read-only over themselves.
    public var protectedPaths: [String] = []
    /// The filters in front of `.git` and the read-only binds that guard git's control state.
    public var gitGuard = GitGuardPlan()

    public init(
        record: SandboxRecord, paths: SandboxPaths, imageRootfs: String, user: Template.UserSetup,
        limitsBy: CgroupSupport.Mechanism
    ) {
        self.record = record
        self.paths = paths
        self.imageRootfs = imageRootfs
        self.user = user
        self.limitsBy = limitsBy
    }

    public var homeDirectory: String { record.account?.home ?? user.homeDirectory }

    /// The environment every process in the sandbox starts with.
    public func environment(user name: String, home: String, extra: [String] = []) -> [String] {
        var env = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=\(home)", "USER=\(name)", "LOGNAME=\(name)", "LANG=C.UTF-8", "TERM=xterm-256color",
            "AIRLOCK_SANDBOX=\(record.name)",
        ]
        if record.networkMode == .policy {
            env += Self.proxyEnvironment + Self.trustEnvironment
            env += credentialVariables.map { "\($0)=\(credentialSentinel)" }
        }
        let docker = record.docker == true ? DockerEngine.agentEnvironment(proxied: record.networkMode == .policy) : []
        for entry in docker + record.environment + extra {
            let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(entry)
        }
        return env
    }

    /// The spec of the sandbox's long-running init (tini reaping for `sleep infinity`).
    public func runtimeSpec() -> RuntimeSpec {
        var spec = containerSpec()
        // As runc does by default, for crun too: the git guard's filters over new repositories
        // (mounted in the init's namespace while the sandbox runs) reach the container.
        spec.linux.rootfsPropagation = "rslave"
        return spec
    }

    private func containerSpec() -> RuntimeSpec {
        let agent = SandboxIdentityIDs.agent
        let process = RuntimeSpec.Process(
            terminal: false, user: RuntimeSpec.User(uid: agent, gid: agent),
            args: ["/usr/bin/tini", "-s", "-g", "--"] + waitCommand,
            env: environment(user: user.name, home: homeDirectory), cwd: "/",
            capabilities: .agent, rlimits: rlimits,
            noNewPrivileges: true, oomScoreAdj: Self.oomScoreAdjustment)
        return RuntimeSpec(
            process: process,
            // A disposable sandbox writes only to its sized tmpfs mounts (a build to its root too).
            root: RuntimeSpec.Root(
                path: paths.rootfs, readonly: record.disposable != nil && record.disposable?.writableRoot != true),
            hostname: record.name,
            mounts: mounts(),
            linux: RuntimeSpec.Linux(
                namespaces: ["pid", "ipc", "uts", "mount", "cgroup"].map { RuntimeSpec.Namespace(type: $0) }
                    + [Self.networkNamespace],
                resources: nil, cgroupsPath: containerCgroup, seccomp: .airlockDefault,
                maskedPaths: Self.maskedPaths, readonlyPaths: Self.readonlyPaths))
    }

    /// The process JSON for `exec`: the agent gets no capabilities; root gets a container's.
    public func execProcess(
        args: [String], uid: UInt32, gid: UInt32, userName: String, home: String, cwd: String?, tty: Bool,
        extraEnvironment: [String]
    ) -> RuntimeSpec.Process {
        let isRoot = uid == 0
        var args = args
        var rlimits = rlimits
        if let processes = rlimits?.first(where: { $0.type == "RLIMIT_NPROC" }), let prlimit = trustedPrlimit {
            // The runtime would set the process count while its helper still runs as the
            // sandbox's root, whose count holds the threads of every `exec` in flight: forty
            // at once, and the helper cannot start a thread. The command's own user gets it.
            rlimits = rlimits?.filter { $0.type != "RLIMIT_NPROC" }
            args = [prlimit, "--nproc=\(processes.soft):\(processes.hard)", "--"] + args
        }
        return RuntimeSpec.Process(
            terminal: tty, user: RuntimeSpec.User(uid: uid, gid: gid, additionalGids: nil), args: args,
            env: environment(user: userName, home: home, extra: extraEnvironment),
            cwd: cwd ?? record.workingDir ?? record.workspace,
            capabilities: isRoot ? .root : .agent,
            rlimits: rlimits?.isEmpty == true ? nil : rlimits,
            // setuid sudo needs privileges to rise; without sudo nothing in the sandbox may.
            noNewPrivileges: !user.sudo, oomScoreAdj: Self.oomScoreAdjustment)
    }

    /// What the init waits on: `sleep infinity`, or Airlock's pause where the image has no
    /// `sleep` (it was added to the tree in its place, ``PauseProgram``).
    var waitCommand: [String] {
        var info = stat()
        let added = lstat(imageRootfs + PauseProgram.path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
        return added ? [PauseProgram.path] : ["sleep", "infinity"]
    }

    /// util-linux's `prlimit` inside, where nothing in the sandbox can replace it: a disposable
    /// sandbox's root is read-only. Elsewhere the runtime sets the limit itself.
    var trustedPrlimit: String? {
        let path = "/usr/bin/prlimit"
        guard let disposable = record.disposable, disposable.writableRoot != true else { return nil }
        var info = stat()
        guard lstat(imageRootfs + path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o111 != 0
        else { return nil }
        return path
    }

    /// Under gVisor the process count is its kernel's to keep (RLIMIT_NPROC, which it
    /// enforces): the host's cgroup sees gVisor's own threads and a stub per address space,
    /// and a bomb that reached the cgroup's bound would stop gVisor's kernel, not the bomb.
    var isGVisor: Bool { record.runtime == RuntimeDriver.Kind.runsc.rawValue }

    /// The bounds the host's cgroup gets. Under gVisor they hold its kernel too, which needs
    /// threads and memory of its own beyond the sandbox's processes': the cgroup gets room for
    /// them, and the sandbox's own limits are gVisor's to enforce (the process count; memory
    /// past the bound ends the sandbox, gVisor's kernel being what the host's OOM killer sees).
    public static func hostLimits(_ record: SandboxRecord) -> SandboxRecord.Limits {
        guard record.runtime == RuntimeDriver.Kind.runsc.rawValue else { return record.limits }
        var limits = record.limits
        limits.pids = limits.pids.map { $0 * 2 + 256 }
        limits.memoryBytes = limits.memoryBytes.map { $0 + max(128 << 20, $0 / 4) }
        return limits
    }

    /// What the sandbox's processes add to their OOM badness. The sandbox init (Airlock's own
    /// binary) shares the sandbox's memory cgroup and is larger than a shell: without this, an
    /// over-limit sandbox could lose its init, and with it every process, instead of the
    /// process that ran over. A host-wide shortage also takes sandbox processes first.
    public static let oomScoreAdjustment = 500

    /// Per-process limits, which hold where no cgroup can be written: the number of processes
    /// of one user in the sandbox's own user namespace, and for a disposable sandbox (whose
    /// programs are known) the data segment of each process as well. Disposable sandboxes get
    /// them under a cgroup too, as a second bound.
    public var rlimits: [RuntimeSpec.Rlimit]? {
        guard record.disposable != nil || limitsBy == .rlimits || isGVisor else { return nil }
        var limits: [RuntimeSpec.Rlimit] = []
        if let memory = record.limits.memoryBytes, memory > 0, record.disposable != nil {
            limits.append(RuntimeSpec.Rlimit(type: "RLIMIT_DATA", hard: UInt64(memory), soft: UInt64(memory)))
        }
        if let pids = record.limits.pids, pids > 0 {
            limits.append(RuntimeSpec.Rlimit(type: "RLIMIT_NPROC", hard: UInt64(pids), soft: UInt64(pids)))
        }
        return limits.isEmpty ? nil : limits
    }

    func mounts() -> [RuntimeSpec.Mount] {
        typealias Mount = RuntimeSpec.Mount
        // `--tmp-size`, or a disposable sandbox's disk size, or half the memory: tmpfs pages
        // count against the memory limit but belong to no process, so a full /tmp must say
        // ENOSPC before the OOM killer has nothing left to take but the sandbox itself.
        // One option per element: gVisor reads no comma-joined list.
        let tmpSize =
            (record.limits.tmpBytes ?? record.disposable?.diskBytes).map { ["size=\($0)"] }
            ?? record.limits.memoryBytes.map { ["size=\(max($0 / 2, 1 << 20))"] } ?? []
        var mounts =
            Self.kernelMounts + [
                Mount(
                    destination: "/tmp", type: "tmpfs", source: "tmpfs",
                    options: ["nosuid", "nodev", "mode=1777"] + tmpSize),
                Mount.bind(paths.etc + "/hosts", at: "/etc/hosts", readOnly: true),
                Mount.bind(paths.etc + "/hostname", at: "/etc/hostname", readOnly: true),
                Mount.bind(paths.etc + "/resolv.conf", at: "/etc/resolv.conf", readOnly: true),
                Mount.bind(paths.etc + "/gitconfig", at: "/etc/gitconfig", readOnly: true),
                Mount.bind(paths.etc + "/apt-proxy.conf", at: "/etc/apt/apt.conf.d/90airlock-proxy", readOnly: true),
            ]
        if record.networkMode == .policy {
            mounts.append(Mount.bind(paths.caBundle, at: Self.trustBundle, readOnly: true))
            mounts.append(Mount.bind(paths.etc + "/airlock-ca.crt", at: Self.trustAnchor, readOnly: true))
        }
        if record.docker == true { mounts += DockerEngine.agentMounts(paths) }
        if gvisorSudo != nil {
            mounts.append(Mount.bind(paths.etc + "/" + Self.gvisorSudoFile, at: "/usr/local/bin/sudo", readOnly: true))
        }
        if let disposable = record.disposable {
            // Nothing of the host: the home and the workspace are the sandbox's own, in memory.
            // Both the user's: an image's own user (a server's, say) may be another than the agent.
            let owner = record.account.map { ($0.uid, $0.gid) } ?? (SandboxIdentityIDs.agent, SandboxIdentityIDs.agent)
            let options = [
                "nosuid", "nodev", "mode=755", "uid=\(owner.0)", "gid=\(owner.1)", "size=\(disposable.diskBytes)",
            ]
            // A build's root keeps what its steps write, in the home too (as `docker build` does).
            if disposable.writableRoot != true {
                mounts.append(Mount(destination: homeDirectory, type: "tmpfs", source: "tmpfs", options: options))
            }
            mounts.append(Mount(destination: record.workspace, type: "tmpfs", source: "tmpfs", options: options))
        } else if record.clone == true {
            // The agent's work happens in the clone; the workspace is there to read, and the
            // clone's config and hooks, which run on the host's `git fetch`, cannot change.
            mounts.append(Mount.bind(paths.home, at: homeDirectory, readOnly: false))
            mounts.append(Mount.bind(paths.clone, at: record.workspace, readOnly: false))
            for protected in GitClone.protectedPaths {
                mounts.append(
                    Mount.bind(paths.clone + "/" + protected, at: record.workspace + "/" + protected, readOnly: true))
            }
            mounts.append(Mount.bind(record.workspace, at: GitClone.originPath, readOnly: true))
        } else {
            mounts.append(Mount.bind(paths.home, at: homeDirectory, readOnly: false))
            // Following its source: a filter the supervisor mounts over a new repository's
            // .git while the sandbox runs appears inside (see ``GitGuardPlan``).
            mounts.append(
                Mount.bind(
                    record.workspace, at: record.workspace, readOnly: false,
                    following: gitGuard.roots.contains { $0.inside == record.workspace }))
            for path in protectedPaths { mounts.append(Mount.bind(path, at: path, readOnly: true)) }
        }
        if let shared = record.sharedState, record.disposable == nil {
            for path in shared.paths {
                mounts.append(
                    Mount.bind(shared.directory + "/" + path, at: homeDirectory + "/" + path, readOnly: false))
            }
        }
        for extra in record.mounts {
            mounts.append(
                Mount.bind(
                    extra.source, at: extra.destination, readOnly: extra.readOnly,
                    following: gitGuard.roots.contains { $0.inside == extra.destination }))
        }
        // Last: over the workspace and the mounts they guard.
        for filter in gitGuard.filtered {
            mounts.append(Mount.bind(filter.mountPoint, at: filter.inside, readOnly: false))
        }
        for bind in gitGuard.readOnly { mounts.append(Mount.bind(bind.host, at: bind.inside, readOnly: true)) }
        return mounts
    }

    /// What every container of a sandbox has from the kernel: its own /proc, /dev, ptys, shared
    /// memory and message queues, and a read-only /sys.
    static let kernelMounts: [RuntimeSpec.Mount] = [
        RuntimeSpec.Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
        RuntimeSpec.Mount(
            destination: "/dev", type: "tmpfs", source: "tmpfs",
            options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        RuntimeSpec.Mount(
            destination: "/dev/pts", type: "devpts", source: "devpts",
            options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        RuntimeSpec.Mount(
            destination: "/dev/shm", type: "tmpfs", source: "shm",
            options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        RuntimeSpec.Mount(
            destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
        RuntimeSpec.Mount(
            destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
    ]

    /// The network namespace the sandbox init made and configured (it is pid 1 where the
    /// runtime runs). Named by path so that `runc exec` joins it too.
    static let networkNamespace = RuntimeSpec.Namespace(type: "network", path: "/proc/1/ns/net")

    static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]

    static let readonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    /// Under gVisor, `sudo` cannot work: gVisor's kernel ignores setuid bits (as if every
    /// process had no_new_privs; google/gvisor#212), and the real sudo's complaint sends the
    /// user looking at container settings. This one, ahead of it on `PATH`, says what to do.
    var gvisorSudo: String? {
        guard record.runtime == RuntimeDriver.Kind.runsc.rawValue, user.sudo else { return nil }
        return """
            #!/bin/sh
            echo "sudo: not available under gVisor isolation (gVisor ignores setuid bits): from the host, run \
            airlock exec -u root \(record.name) -- COMMAND, or recreate the sandbox with --isolation container" >&2
            exit 1

            """
    }

    static let gvisorSudoFile = "gvisor-sudo"

    /// Files under `paths.etc` that the spec binds over the image's.
    public func etcFiles() -> [String: String] {
        let policy = record.networkMode == .policy
        return [
            "hosts": "127.0.0.1\tlocalhost \(record.name)\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "hostname": record.name + "\n",
            "resolv.conf": policy
                ? "# airlock: names the network policy allows resolve through the sandbox's proxy\n"
                    + "nameserver 127.0.0.1\noptions ndots:0\n"
                : "# airlock: this sandbox has no network access\nnameserver 127.0.0.1\n",
            "gitconfig": (policy ? "[http]\n\tproxy = \(Self.proxyURL)\n" : "") + gitUserSection,
            "apt-proxy.conf": policy
                ? "Acquire::http::Proxy \"\(Self.proxyURL)\";\nAcquire::https::Proxy \"\(Self.proxyURL)\";\n" : "",
        ]
    }

    /// The host user's git identity as a gitconfig section (empty when there is none).
    var gitUserSection: String {
        guard let identity = record.gitIdentity else { return "" }
        var lines: [String] = []
        for (key, value) in [("name", identity.name), ("email", identity.email)] {
            // A value with a line break could add sections of its own: left out.
            guard let value, !value.isEmpty, !value.contains(where: \.isNewline) else { continue }
            let quoted = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            lines.append("\t\(key) = \"\(quoted)\"")
        }
        return lines.isEmpty ? "" : "[user]\n" + lines.joined(separator: "\n") + "\n"
    }

    static let proxyURL = "http://127.0.0.1:3128"
    /// Debian's bundle (replaced by the image's plus the user's Airlock CA) and the CA alone.
    static let trustBundle = "/etc/ssl/certs/ca-certificates.crt"
    static let trustAnchor = "/usr/local/share/ca-certificates/airlock.crt"

    /// Where the TLS stacks that do not read the system bundle look for trust.
    static let trustEnvironment = [
        "SSL_CERT_FILE=\(trustBundle)", "REQUESTS_CA_BUNDLE=\(trustBundle)", "CURL_CA_BUNDLE=\(trustBundle)",
        "GIT_SSL_CAINFO=\(trustBundle)", "PIP_CERT=\(trustBundle)", "NODE_EXTRA_CA_CERTS=\(trustAnchor)",
    ]

    /// What points programs at the sandbox's proxy: the usual variables in both cases, and
    /// the settings of package managers that read their own (git and apt read files).
    static let proxyEnvironment: [String] = {
        var env: [String] = []
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            env += ["\(name)=\(proxyURL)", "\(name.lowercased())=\(proxyURL)"]
        }
        env += ["NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1"]
        env += [
            "npm_config_proxy=\(proxyURL)", "npm_config_https_proxy=\(proxyURL)", "PIP_PROXY=\(proxyURL)",
            "YARN_HTTP_PROXY=\(proxyURL)", "YARN_HTTPS_PROXY=\(proxyURL)",
        ]
        return env
    }()
}

/// Fixed ids inside every sandbox.
public enum SandboxIdentityIDs {
    public static let agent: UInt32 = 1000
}
