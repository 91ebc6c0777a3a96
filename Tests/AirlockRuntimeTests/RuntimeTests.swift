import AirlockImages
import AirlockOCI
import AirlockPolicy
import AirlockState
import AirlockSystem
import Foundation
import Testing

@testable import AirlockRuntime

@Suite struct RuntimeDriverTests {
    @Test func runcCommandLines() {
        let runc = RuntimeDriver(kind: .runc, stateRoot: "/s/runc", binary: "runc")
        #expect(
            runc.runArguments(bundle: "/s/bundle", id: "box", pidFile: "/s/runc/box.pid", logFile: "/s/log") == [
                "runc", "--root", "/s/runc", "--log", "/s/log", "run", "--detach", "--pid-file", "/s/runc/box.pid",
                "--bundle",
                "/s/bundle", "box",
            ])
        #expect(
            runc.execArguments(id: "box", processFile: "/proc/self/fd/5", tty: true)
                == ["runc", "--root", "/s/runc", "exec", "--tty", "--process", "/proc/self/fd/5", "box"])
        #expect(
            runc.killArguments(id: "box", signal: "TERM", all: true) == [
                "runc", "--root", "/s/runc", "kill", "--all", "box", "TERM",
            ])
    }

    @Test func crunManagesNoCgroupAndExecGetsWhatRuncGives() {
        let crun = RuntimeDriver(kind: .crun, stateRoot: "/s/c", binary: "crun")
        #expect(
            crun.runArguments(bundle: "/s/b", id: "box", pidFile: "/s/c/box.pid", logFile: "/s/log") == [
                "crun", "--root", "/s/c", "--cgroup-manager=disabled", "--log=file:/s/log", "run", "--detach",
                "--pid-file", "/s/c/box.pid", "--bundle", "/s/b", "box",
            ])
        let prefix = crun.execPrefix(oomScoreAdj: 500)
        #expect(prefix.count == 7 && prefix[2].hasPrefix("echo 500 > /proc/self/oom_score_adj"))
        #expect(prefix[5].hasPrefix("--nofile=") && prefix.last == "--")
        #expect(RuntimeDriver(kind: .runc, stateRoot: "/s/r", binary: "runc").execPrefix(oomScoreAdj: 500).isEmpty)
    }

    @Test func aRuntimeNamedInTheEnvironmentMustExist() throws {
        let store = StateStore(root: NSTemporaryDirectory() + "airlock-choice-\(getpid())")
        let choice = RuntimeChoice(store: store, environment: ["AIRLOCK_RUNTIME": "kata"])
        #expect(throws: AirlockError.self) { try choice.kind(named: nil) }
        #expect(try RuntimeChoice(store: store, environment: ["AIRLOCK_RUNTIME": "crun"]).kind(named: "runc") == .runc)
        #expect(RuntimeChoice.key(.runc)?.contains("runc") == true)
    }

    @Test func runscUsesTheSandboxsNamespaceAndItsUpperDirectory() {
        var runsc = RuntimeDriver(kind: .runsc, stateRoot: "/s/r", binary: "runsc")
        let args = runsc.stateArguments(id: "box")
        #expect(args.starts(with: ["runsc", "--root", "/s/r"]))
        // The loopback-only namespace the init prepared, and writes to Airlock's own layer.
        #expect(args.contains("--network=host") && args.contains("--overlay2=none"))
        #expect(args.contains("--platform=systrap"))
        runsc.gvisorPlatform = .ptrace
        #expect(runsc.stateArguments(id: "box").contains("--platform=ptrace"))
        #expect(!runsc.killArguments(id: "box", signal: "KILL", all: true).contains("--all"))
        // Errors go to a log file, so the container's stdio can be /dev/null.
        #expect(
            runsc.runArguments(bundle: "/b", id: "box", pidFile: "/p", logFile: "/l").suffix(9) == [
                "--log=/l", "--log-format=json", "run", "--detach", "--pid-file", "/p", "--bundle", "/b", "box",
            ])
    }

    @Test func runscExecAsksForATerminalInTheProcessAndKeepsTheGuestPid() {
        let runsc = RuntimeDriver(kind: .runsc, stateRoot: "/s/r", binary: "runsc")
        let args = runsc.execArguments(id: "box", processFile: "/p.json", tty: true, pidFile: "/x.pid")
        #expect(!args.contains("--tty"))
        #expect(
            args.suffix(7) == [
                "--pid-file", "/x.pid", "--internal-pid-file", "/x.pid.guest", "--process", "/p.json", "box",
            ])
        #expect(
            runsc.signalArguments(id: "box", guestPID: 7, signal: 15).suffix(5) == ["kill", "--pid", "7", "box", "15"])
        let runc = RuntimeDriver(kind: .runc, stateRoot: "/s/r", binary: "runc")
        #expect(runc.execArguments(id: "box", processFile: "/p.json", tty: true, pidFile: "/x.pid").contains("--tty"))
        #expect(
            !runc.execArguments(id: "box", processFile: "/p.json", tty: true, pidFile: "/x.pid").contains(
                "--internal-pid-file"))
    }
}

@Suite struct SandboxNamingTests {
    @Test(arguments: [
        ("shell", "/home/u/My Project", "shell-my-project"),
        ("shell", "/srv/api.v2", "shell-api.v2"),
        ("claude", "/x/_tmp", "claude-_tmp"),
    ])
    func defaultName(agent: String, workspace: String, expected: String) throws {
        let name = Sandboxes.defaultName(agent: agent, workspace: workspace)
        #expect(name == expected)
        try Sandboxes.validate(name: name)
    }

    @Test(arguments: ["", "UPPER", "-dash", "a/b", String(repeating: "a", count: 64)])
    func rejectsBadNames(name: String) {
        #expect(throws: AirlockError.self) { try Sandboxes.validate(name: name) }
    }

    @Test(arguments: [
        ("512m", Int64(512 << 20)), ("2g", Int64(2 << 30)), ("1.5G", Int64(1536 << 20)), ("10485760", Int64(10 << 20)),
    ])
    func parsesSizes(text: String, bytes: Int64) throws {
        #expect(try Sandboxes.parseBytes(text) == bytes)
    }

    @Test(arguments: ["lots", "-1g", "1k", ""])
    func rejectsBadSizes(text: String) {
        #expect(throws: AirlockError.self) { try Sandboxes.parseBytes(text) }
    }

    @Test(arguments: ["/", "/home/u", "/home"])
    func refusesWorkspacesHoldingTheHome(workspace: String) {
        #expect(throws: AirlockError.self) { try Sandboxes.checkWorkspace(workspace, home: "/home/u") }
    }

    @Test(arguments: ["/home/u/project", "/srv/code", "/home/user2"])
    func acceptsProjectDirectories(workspace: String) throws {
        try Sandboxes.checkWorkspace(workspace, home: "/home/u")
    }

    @Test func parsesVolumes() throws {
        let tmp =
            NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        let real = Files.absolute(tmp)
        #expect(try Sandboxes.parseVolume(tmp) == .init(source: real, destination: real, readOnly: false))
        #expect(
            try Sandboxes.parseVolume(tmp + ":/data:ro") == .init(source: real, destination: "/data", readOnly: true))
        #expect(try Sandboxes.parseVolume(tmp + ":ro") == .init(source: real, destination: real, readOnly: true))
        #expect(throws: AirlockError.self) { try Sandboxes.parseVolume("/no/such/dir") }
        #expect(throws: AirlockError.self) { try Sandboxes.parseVolume(tmp + ":relative") }
        #expect(throws: AirlockError.self) { try Sandboxes.parseVolume(tmp + ":/a/../etc") }
    }
}

@Suite struct SandboxSpecTests {
    func spec(sudo: Bool = true) -> SandboxSpec {
        let record = SandboxRecord(
            name: "shell-demo", agent: "shell", workspace: "/home/u/demo", template: "shell", image: "abc",
            user: "agent", sudo: true, runtime: "runc",
            command: ["bash"], environment: ["FOO=bar", "LANG=de_DE.UTF-8"],
            mounts: [.init(source: "/data", destination: "/data", readOnly: true)], limits: .init(), created: Date())
        return SandboxSpec(
            record: record, paths: StateStore(root: "/s").sandbox("shell-demo"), imageRootfs: "/s/images/abc/rootfs",
            user: .init(name: "agent", sudo: sudo), limitsBy: .cgroupV1)
    }

    @Test func mountsOnlyTheWorkspaceHomeAndAskedPaths() {
        let mounts = spec().runtimeSpec().mounts
        let binds = mounts.filter { $0.type == "bind" }
        #expect(
            Set(binds.map(\.source))
                == [
                    "/home/u/demo", "/s/sandboxes/shell-demo/home", "/data", "/s/sandboxes/shell-demo/etc/hosts",
                    "/s/sandboxes/shell-demo/etc/hostname", "/s/sandboxes/shell-demo/etc/resolv.conf",
                    "/s/sandboxes/shell-demo/etc/gitconfig", "/s/sandboxes/shell-demo/etc/apt-proxy.conf",
                    "/s/sandboxes/shell-demo/etc/ca-certificates.crt", "/s/sandboxes/shell-demo/etc/airlock-ca.crt",
                ])
        #expect(binds.first { $0.source == "/home/u/demo" }?.destination == "/home/u/demo")
        #expect(binds.first { $0.source == "/data" }?.options.contains("ro") == true)
        #expect(mounts.first { $0.destination == "/sys" }?.options.contains("ro") == true)
        #expect(mounts.first { $0.destination == "/tmp" }?.type == "tmpfs")
    }

    @Test func isolatesEveryNamespaceButTheSharedUserOne() {
        let spec = spec().runtimeSpec()
        #expect(Set(spec.linux.namespaces.map(\.type)) == ["pid", "ipc", "uts", "mount", "network", "cgroup"])
        // The init's loopback-only namespace, by path, so `runc exec` joins it as well.
        #expect(spec.linux.namespaces.first { $0.type == "network" }?.path == "/proc/1/ns/net")
        #expect(spec.hostname == "shell-demo")
        #expect(spec.linux.seccomp == .airlockDefault)
        #expect(spec.linux.maskedPaths.contains("/proc/kcore"))
    }

    @Test func proxySettingsOnlyWhenTheNetworkGoesThroughThePolicy() {
        var offline = spec()
        offline.record.network = SandboxRecord.NetworkMode.none
        let policyEnv = spec().runtimeSpec().process.env
        #expect(policyEnv.contains("HTTPS_PROXY=http://127.0.0.1:3128"))
        #expect(policyEnv.contains("https_proxy=http://127.0.0.1:3128"))
        #expect(policyEnv.contains("NO_PROXY=localhost,127.0.0.1,::1"))
        #expect(!offline.runtimeSpec().process.env.contains { $0.lowercased().contains("proxy") })
        #expect(spec().etcFiles()["gitconfig"]?.contains("proxy = http://127.0.0.1:3128") == true)
        #expect(offline.etcFiles()["gitconfig"] == "")
    }

    @Test func agentProcessHasNoCapabilitiesAndNoNewPrivsWithoutSudo() {
        let agent = spec(sudo: false).execProcess(
            args: ["bash"], uid: 1000, gid: 1000, userName: "agent", home: "/home/agent", cwd: nil, tty: false,
            extraEnvironment: [])
        #expect(agent.capabilities == .agent)
        #expect(agent.noNewPrivileges == true)
        #expect(agent.cwd == "/home/u/demo")
        let root = spec().execProcess(
            args: ["id"], uid: 0, gid: 0, userName: "root", home: "/root", cwd: "/", tty: true, extraEnvironment: [])
        #expect(root.capabilities == .root)
    }

    @Test func userEnvironmentOverridesDefaults() {
        let env = spec().environment(user: "agent", home: "/home/agent", extra: ["FOO=baz"])
        #expect(env.contains("LANG=de_DE.UTF-8") && !env.contains("LANG=C.UTF-8"))
        #expect(env.contains("FOO=baz") && !env.contains("FOO=bar"))
        #expect(env.contains("AIRLOCK_SANDBOX=shell-demo"))
    }
}

@Suite struct CgroupLimitTests {
    @Test func writesEachRequestedLimitAndLiftsTheRest() {
        let set = Dictionary(
            uniqueKeysWithValues: SandboxCgroup.v1Settings(.init(memoryBytes: 64 << 20, cpus: 1.5, pids: 100)))
        #expect(set["memory.limit_in_bytes"] == "67108864")
        #expect(set["memory.memsw.limit_in_bytes"] == "67108864")
        #expect(set["pids.max"] == String(100 + SandboxCgroup.execReserve))
        #expect(set["cpu.cfs_quota_us"] == "150000" && set["cpu.cfs_period_us"] == "100000")
        let none = Dictionary(uniqueKeysWithValues: SandboxCgroup.v1Settings(.init()))
        #expect(none["memory.limit_in_bytes"] == "-1" && none["pids.max"] == "max" && none["cpu.cfs_quota_us"] == "-1")
    }

    @Test func groupsLiveInTheUsersDelegatedSubtree() {
        let support = CgroupSupport(
            version: .hybrid, mechanism: .cgroupV1, note: nil, base: CgroupSupport.base(user: "ann"))
        let cgroup = SandboxCgroup(name: "shell-demo", support: support)
        #expect(cgroup.directory("pids") == "/sys/fs/cgroup/pids/airlock/ann/shell-demo")
        let prefix = cgroup.joinPrefix()
        #expect(
            prefix.first == "/bin/sh" && prefix.contains("/sys/fs/cgroup/memory/airlock/ann/shell-demo/cgroup.procs"))
        // The sandbox's own processes go one level down in pids (the exec agent moves up).
        #expect(prefix.contains("/sys/fs/cgroup/pids/airlock/ann/shell-demo/own/cgroup.procs"))
        #expect(CgroupSupport.delegationCommand(user: "ann").contains("chown ann: /sys/fs/cgroup/memory/airlock/ann"))
    }

    @Test func withoutACgroupNothingIsPrefixedAndRlimitsStand() {
        let support = CgroupSupport(version: .v1, mechanism: .rlimits, note: "no", base: "/airlock/ann")
        #expect(SandboxCgroup(name: "x", support: support).joinPrefix().isEmpty)
        #expect(SandboxCgroup.counter("oom_kill", in: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3)
    }

    /// A workspace with 17 repositories crashed the sandbox init: it sends every filter's
    /// descriptor in one message, which held 16 at most.
    @Test func everyGitFilterFitsTheMessageThatCarriesThem() {
        #expect(GitGuardPlan.maxFilters <= DescriptorPassing.maxDescriptors)
    }

    @Test func onCgroupV2TheLimitsAreTheV2FilesWithTheReserve() {
        let set = Dictionary(
            uniqueKeysWithValues: UnifiedSandboxGroup.settings(.init(memoryBytes: 64 << 20, cpus: 0.5, pids: 64)))
        #expect(set["memory.max"] == "67108864" && set["memory.swap.max"] == "0")
        #expect(set["pids.max"] == String(64 + SandboxCgroup.execReserve))
        #expect(set["cpu.max"] == "50000 100000")
        let none = Dictionary(uniqueKeysWithValues: UnifiedSandboxGroup.settings(.init()))
        #expect(none["memory.max"] == "max" && none["memory.swap.max"] == "max")
        #expect(none["pids.max"] == "max" && none["cpu.max"] == "max 100000")
    }

    @Test func onCgroupV2TheSupervisorStartsInAScopeOfTheUsersManager() {
        let delegation = SystemdDelegation(uid: 1000)
        let support = CgroupSupport(
            version: .v2, mechanism: .cgroupV2, note: nil, base: delegation.sliceGroup, delegation: delegation)
        let cgroup = SandboxCgroup(name: "shell-demo-0badf00d", support: support)
        let scope = "/user.slice/user-1000.slice/user@1000.service/airlock.slice/airlock-shell-demo-0badf00d.scope"
        #expect(cgroup.unified.scope == "/sys/fs/cgroup" + scope)
        #expect(cgroup.reportedPath == scope + "/sandbox")
        // `sudo -u` and cron environments lack XDG_RUNTIME_DIR, and `su` keeps another user's.
        #expect(
            cgroup.launchPrefix() == [
                "env", "XDG_RUNTIME_DIR=/run/user/1000", "systemd-run", "--user", "--scope", "--quiet", "--collect",
                "--slice=airlock.slice", "--unit=airlock-shell-demo-0badf00d.scope", "--property=Delegate=yes", "--",
            ])
        #expect(cgroup.containerGroup == scope + "/sandbox/own")
        // The init chain joins `own`, the one group that holds --pids for the sandbox's processes.
        #expect(cgroup.joinPrefix().last == "/sys/fs/cgroup" + scope + "/sandbox/own/cgroup.procs")
        #expect(cgroup.joinPrefix().filter { $0.hasSuffix("cgroup.procs") }.count == 1)
        // A runtime's exec chain starts in the caller's login session: it asks for a scope of
        // its own first (any name), then joins `own` (runc: the reserve's leaf, and runc moves the
        // command into `own`, which it is given); the exec agent and runsc need neither.
        let crun = cgroup.execJoinPrefix(runtime: .crun)
        #expect(crun.starts(with: ["env", "XDG_RUNTIME_DIR=/run/user/1000", "systemd-run", "--user", "--scope"]))
        #expect(!crun.contains { $0.hasPrefix("--unit=") })
        #expect(crun.last == "/sys/fs/cgroup" + scope + "/sandbox/own/cgroup.procs")
        #expect(cgroup.execJoinPrefix(runtime: .runc).last == "/sys/fs/cgroup" + scope + "/sandbox/exec/cgroup.procs")
        #expect(cgroup.execJoinPrefix(runtime: .runsc).isEmpty)
        #expect(
            delegation.stopCommand(unit: "u") == [
                "env", "XDG_RUNTIME_DIR=/run/user/1000", "systemctl", "--user", "stop", "--quiet", "u",
            ])
        // Root asks the system manager.
        let root = SystemdDelegation(uid: 0)
        #expect(root.sliceGroup == "/airlock.slice" && !root.scopePrefix(unit: "u").contains("--user"))
    }
}

@Suite struct SupervisorEnvironmentTests {
    @Test func keepsLocationsAndProxiesButNotKeys() {
        let kept = Sandboxes.supervisorEnvironment([
            "PATH": "/usr/bin", "HOME": "/home/u", "HTTPS_PROXY": "http://proxy:3128", "AIRLOCK_HOME": "/s",
            "ANTHROPIC_API_KEY": "sk-real", "GH_TOKEN": "ghp", "AWS_SECRET_ACCESS_KEY": "x",
        ])
        #expect(Set(kept.keys) == ["PATH", "HOME", "HTTPS_PROXY", "AIRLOCK_HOME"])
    }
}

@Suite struct AddedHostTests {
    @Test func anAddedHostOnABlockedAddressGetsANoteUnlessACIDROpensIt() {
        let policy = PolicySettings(
            allowCIDRs: ["127.0.0.2/32"],
            addHosts: ["api.test:127.0.0.1", "other.test:127.0.0.2", "public.test:93.184.216.34"])
        let notes = Sandboxes.unreachableAddedHosts(policy)
        #expect(notes.count == 1)
        #expect(notes.first?.contains("127.0.0.1 is a loopback address") == true)
        #expect(notes.first?.contains("--allow-cidr 127.0.0.1/32") == true)
    }
}

@Suite struct DefaultLimitTests {
    @Test func halfTheMemoryAtMost32GiBAllCPUsButOne() {
        let small = DefaultLimits.forHost(memoryBytes: 8 << 30, cpus: 2)
        #expect(small.memoryBytes == 4 << 30 && small.cpus == 1 && small.pids == DefaultLimits.pids)
        let big = DefaultLimits.forHost(memoryBytes: 256 << 30, cpus: 64)
        #expect(big.memoryBytes == 32 << 30 && big.cpus == 63)
        #expect(DefaultLimits.forHost(memoryBytes: 1 << 30, cpus: 1).cpus == 1)
    }

    @Test func whatTheUserAskedForWins() {
        let filled = DefaultLimits.filling(.init(memoryBytes: 1 << 30), from: .init(memoryBytes: 9, cpus: 3, pids: 7))
        #expect(filled == SandboxRecord.Limits(memoryBytes: 1 << 30, cpus: 3, pids: 7))
    }
}

@Suite struct SandboxTrustStoreTests {
    static func pem(_ body: String) -> String { "-----BEGIN CERTIFICATE-----\n\(body)\n-----END CERTIFICATE-----\n" }

    @Test func addsTheHostsCertificatesOnceAndNeverAKey() {
        let image = Self.pem("IMAGE") + Self.pem("SHARED")
        let host =
            "# comment\n" + Self.pem("SHARED") + "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n"
            + Self.pem("CORPORATE")
        let trust = SandboxTrustStore(image: image, host: host, airlock: Self.pem("AIRLOCK"))
        #expect(trust.bundle == image + Self.pem("AIRLOCK") + Self.pem("CORPORATE"))
        #expect(trust.anchors == Self.pem("AIRLOCK") + Self.pem("CORPORATE"))
        #expect(!trust.bundle.contains("SECRET") && !trust.bundle.contains("comment"))
    }

    @Test func withoutTheHostOnlyImageAndAirlock() {
        let trust = SandboxTrustStore(image: Self.pem("IMAGE"), host: "", airlock: Self.pem("AIRLOCK"))
        #expect(trust.bundle == Self.pem("IMAGE") + Self.pem("AIRLOCK"))
        #expect(trust.anchors == Self.pem("AIRLOCK"))
    }
}

@Suite struct OverlayRootfsTests {
    @Test func mountsWithUserXattrsSoImageDirectoriesCanBeRemoved() {
        let overlay = OverlayRootfs(lower: "/img", upper: "/s/upper", work: "/s/work", target: "/s/rootfs")
        #expect(overlay.options == "lowerdir=/img,upperdir=/s/upper,workdir=/s/work,userxattr")
    }
}
