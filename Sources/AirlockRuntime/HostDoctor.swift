import AirlockEgress
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One finding of `airlock doctor`.
public struct HostCheck: Codable, Sendable {
    public enum Level: String, Codable, Sendable {
        case ok, warning, error
    }

    public var name: String
    public var level: Level
    public var detail: String
    /// What to do about it, when something is wrong.
    public var fix: String?
    /// gVisor's check: the platform its probe passed on (`systrap` or `ptrace`).
    public var platform: String?

    public init(name: String, level: Level, detail: String, fix: String?, platform: String? = nil) {
        self.name = name
        self.level = level
        self.detail = detail
        self.fix = fix
        self.platform = platform
    }
}

/// Checks what Airlock needs from the host, each with a fix.
public struct HostDoctor: Sendable {
    public init() {}

    public func run() -> [HostCheck] {
        var checks = [userNamespaces(), apparmor()]
        let identity = subordinateIDs(&checks)
        checks.append(tool("newuidmap", package: "uidmap", purpose: "maps the sandbox's ids"))
        checks.append(tool("mmdebstrap", package: "mmdebstrap", purpose: "builds images"))
        checks.append(tool("nsenter", package: "util-linux", purpose: "enters sandboxes"))
        let support = CgroupSupport.detect()
        checks.append(cgroups(support))
        if let linger = linger(support) { checks.append(linger) }
        checks.append(gitGuard())
        if let proxy = upstreamProxy() { checks.append(proxy) }
        var namespace: UserNamespace?
        if let identity {
            do {
                namespace = try UserNamespace(identity: identity)
                checks.append(
                    HostCheck(
                        name: "user namespace", level: .ok, detail: "created one with the sandbox id map", fix: nil))
            } catch {
                checks.append(
                    HostCheck(
                        name: "user namespace", level: .error, detail: "\(error)",
                        fix: "check the subordinate id ranges and that newuidmap is setuid root"))
            }
        }
        if let namespace {
            checks.append(overlay(namespace))
            for kind in RuntimeDriver.Kind.allCases {
                checks.append(runtime(kind, namespace: namespace))
            }
            namespace.close()
        }
        return checks
    }

    func userNamespaces() -> HostCheck {
        let max = (try? Files.read("/proc/sys/user/max_user_namespaces"))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        if max == "0" {
            return HostCheck(
                name: "user namespaces", level: .error, detail: "user.max_user_namespaces is 0",
                fix: "sudo sysctl -w user.max_user_namespaces=15000")
        }
        if let clone = try? Files.read("/proc/sys/kernel/unprivileged_userns_clone"),
            clone.trimmingCharacters(in: .whitespacesAndNewlines) == "0"
        {
            return HostCheck(
                name: "user namespaces", level: .error, detail: "kernel.unprivileged_userns_clone is 0",
                fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1")
        }
        return HostCheck(name: "user namespaces", level: .ok, detail: "allowed (max \(max ?? "?"))", fix: nil)
    }

    func apparmor() -> HostCheck {
        let path = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
        if let value = try? Files.read(path), value.trimmingCharacters(in: .whitespacesAndNewlines) == "1" {
            return HostCheck(
                name: "AppArmor", level: .error,
                detail: "unprivileged user namespaces are restricted by AppArmor (Ubuntu 23.10+)",
                fix:
                    "add an AppArmor profile granting `userns` to \(Executables.current), or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
            )
        }
        return HostCheck(name: "AppArmor", level: .ok, detail: "no user namespace restriction", fix: nil)
    }

    func subordinateIDs(_ checks: inout [HostCheck]) -> SandboxIdentity? {
        do {
            let identity = try SandboxIdentity.current()
            checks.append(
                HostCheck(
                    name: "subordinate ids", level: .ok,
                    detail:
                        "uids \(identity.uidRange.start)+\(identity.uidRange.count), gids \(identity.gidRange.start)+\(identity.gidRange.count)",
                    fix: nil))
            return identity
        } catch let error as AirlockError {
            let parts = error.message.components(separatedBy: " (fix: ")
            checks.append(
                HostCheck(
                    name: "subordinate ids", level: .error, detail: parts[0],
                    fix: parts.count > 1 ? String(parts[1].dropLast()) : nil))
        } catch {
            checks.append(HostCheck(name: "subordinate ids", level: .error, detail: "\(error)", fix: nil))
        }
        return nil
    }

    func tool(_ name: String, package: String, purpose: String) -> HostCheck {
        if let path = Executables.find(name) {
            return HostCheck(name: name, level: .ok, detail: "\(path) (\(purpose))", fix: nil)
        }
        return HostCheck(
            name: name, level: .error, detail: "not installed (\(purpose))", fix: "sudo apt-get install \(package)")
    }

    func cgroups(_ support: CgroupSupport) -> HostCheck {
        guard let note = support.note else {
            return HostCheck(
                name: "cgroups", level: .ok,
                detail:
                    "\(support.version.rawValue): memory, CPU and pids limits enforced by \(support.mechanism.rawValue)",
                fix: nil)
        }
        let parts = note.components(separatedBy: " (fix: ")
        return HostCheck(
            name: "cgroups", level: .warning, detail: parts[0], fix: parts.count > 1 ? String(parts[1].dropLast()) : nil
        )
    }

    /// On v2 the sandboxes run in scopes of the user's systemd manager, which systemd stops
    /// when the user's last session ends unless the user lingers.
    func linger(_ support: CgroupSupport) -> HostCheck? {
        guard support.mechanism == .cgroupV2, let delegation = support.delegation, delegation.uid != 0 else {
            return nil
        }
        let user = SandboxIdentity.userName(delegation.uid) ?? String(delegation.uid)
        if Files.exists("/var/lib/systemd/linger/" + user) {
            return HostCheck(
                name: "linger", level: .ok, detail: "\(user)'s sandboxes keep running after logout", fix: nil)
        }
        return HostCheck(
            name: "linger", level: .warning,
            detail: "sandboxes run in scopes of \(user)'s systemd manager, which stops at \(user)'s last logout",
            fix: "sudo loginctl enable-linger \(user)")
    }

    /// The host's proxy (`HTTPS_PROXY`), when one is set: the sandboxes' proxy goes through it.
    func upstreamProxy(environment: [String: String] = ProcessInfo.processInfo.environment) -> HostCheck? {
        do throws(AirlockError) {
            guard let proxy = try UpstreamProxy.configured(in: environment) else { return nil }
            let detail = "through \(proxy.authority)" + (proxy.login == nil ? "" : " with a login")
            return HostCheck(name: "upstream proxy", level: .ok, detail: detail, fix: nil)
        } catch {
            return HostCheck(
                name: "upstream proxy", level: .warning, detail: error.message,
                fix: "set HTTPS_PROXY to http://[user:password@]host[:port], the user and password percent-encoded")
        }
    }

    func overlay(_ namespace: UserNamespace) -> HostCheck {
        let dir = NSTemporaryDirectory() + "airlock-doctor-\(getpid())"
        defer { try? namespace.removeTree([dir]) }
        let script =
            "mkdir -p \(dir)/l \(dir)/u \(dir)/w \(dir)/m && mount -t overlay overlay -o lowerdir=\(dir)/l,upperdir=\(dir)/u,workdir=\(dir)/w,userxattr \(dir)/m && umount \(dir)/m"
        do {
            try namespace.run(["sh", "-c", script], what: "overlay mount")
            return HostCheck(name: "overlay", level: .ok, detail: "overlayfs mounts inside a user namespace", fix: nil)
        } catch {
            return HostCheck(
                name: "overlay", level: .error, detail: "\(error)",
                fix: "use Linux 5.11 or newer (overlayfs in user namespaces)")
        }
    }

    /// Runs `ls -la /` in a throwaway container whose root is the host's read-only /usr: a
    /// runtime must start a container and serve the calls Debian's coreutils make (statx).
    func runtime(_ kind: RuntimeDriver.Kind, namespace: UserNamespace) -> HostCheck {
        if kind == .runsc { return gvisor(namespace) }
        guard let path = Executables.find(kind.rawValue) else {
            return HostCheck(
                name: "runtime \(kind.rawValue)", level: kind == .runc ? .error : .warning, detail: "not installed",
                fix: RuntimeDriver.installHint(kind))
        }
        return probe(RuntimeDriver(kind: kind, stateRoot: ""), path: path, namespace: namespace)
    }

    /// gVisor's probe: on the systrap platform, else on ptrace (the check names the platform
    /// that passed). An old runsc fails the probe (its `ls` cannot `statx`) and is refused with the
    /// way to a newer one.
    func gvisor(_ namespace: UserNamespace) -> HostCheck {
        let name = "runtime runsc"
        guard let path = Executables.find("runsc") else {
            return HostCheck(name: name, level: .warning, detail: "not installed", fix: GVisorInstall.hint)
        }
        let version = GVisorInstall.version(of: path).map { " (\($0))" } ?? ""
        var failures: [String] = []
        for platform in RuntimeDriver.GVisorPlatform.allCases {
            var driver = RuntimeDriver(kind: .runsc, stateRoot: "")
            driver.gvisorPlatform = platform
            let check = probe(driver, path: path, namespace: namespace)
            if check.level == .ok {
                let others = failures.isEmpty ? "" : "; \(failures.joined(separator: "; "))"
                return HostCheck(
                    name: name, level: .ok,
                    detail: "\(path)\(version) runs sandboxes here on the \(platform.rawValue) platform\(others)",
                    fix: nil, platform: platform.rawValue)
            }
            failures.append("\(platform.rawValue): \(check.detail)")
        }
        return HostCheck(
            name: name, level: .warning,
            detail: "\(path)\(version) is installed but cannot run a sandbox here: \(failures.joined(separator: "; "))",
            fix: Self.runtimeFix(.runsc))
    }

    private func probe(_ template: RuntimeDriver, path: String, namespace: UserNamespace) -> HostCheck {
        let kind = template.kind
        let name = "runtime \(kind.rawValue)"
        let dir = NSTemporaryDirectory() + "airlock-doctor-\(kind.rawValue)-\(getpid())"
        defer { try? namespace.removeTree([dir]) }
        var driver = RuntimeDriver(kind: kind, stateRoot: dir + "/state")
        driver.gvisorPlatform = template.gvisorPlatform
        let spec = """
            {"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["/usr/bin/ls","-la","/"],\
            "env":["PATH=/usr/bin"],"cwd":"/"},"root":{"path":"rootfs","readonly":true},"hostname":"doctor",\
            "mounts":[{"destination":"/proc","type":"proc","source":"proc"},\
            {"destination":"/usr","type":"bind","source":"/usr","options":["rbind","ro"]},\
            {"destination":"/lib","type":"bind","source":"/lib","options":["rbind","ro"]},\
            {"destination":"/lib64","type":"bind","source":"/lib64","options":["rbind","ro"]}],\
            "linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"uts"},{"type":"network"}]}}
            """
        do {
            for sub in ["rootfs/usr", "rootfs/lib", "rootfs/lib64", "rootfs/proc", "rootfs/dev", "state"] {
                try Files.makeDirectory(dir + "/" + sub)
            }
            try Files.writeAtomically(dir + "/config.json", spec)
            let argv = driver.globalArguments + ["run", "--bundle", dir, "doctor-\(getpid())"]
            let output = try ChildProcess.run(
                namespace.enterPrefix + ["unshare", "--pid", "--fork", "--mount-proc", "--"]
                    + UnifiedCgroupMask.wrapping(argv, for: kind))
            if output.status == 0 {
                return HostCheck(name: name, level: .ok, detail: "\(path) runs sandboxes here", fix: nil)
            }
            return HostCheck(
                name: name, level: kind == .runc ? .error : .warning,
                detail: "\(path) is installed but cannot run a sandbox here: \(SandboxInit.runtimeError(output))",
                fix: Self.runtimeFix(kind))
        } catch {
            return HostCheck(name: name, level: .warning, detail: "\(error)", fix: nil)
        }
    }

    static func runtimeFix(_ kind: RuntimeDriver.Kind) -> String {
        switch kind {
        case .runc: "install runc 1.1 or newer: sudo apt-get install runc"
        case .crun: "install crun 1.8 or newer (sudo apt-get install crun), or use runc"
        case .runsc: GVisorInstall.hint
        }
    }

    /// The filters in front of `.git` need `/dev/fuse`; without it `.git` is read-only inside.
    func gitGuard() -> HostCheck {
        guard let problem = GitGuardPlan.fuseProblem() else {
            return HostCheck(
                name: "git guard", level: .ok, detail: "/dev/fuse usable: agents commit behind a filter", fix: nil)
        }
        return HostCheck(
            name: "git guard", level: .warning,
            detail: "\(problem); until then .git is read-only inside sandboxes (git can read, not commit)",
            fix: "sudo chmod 0666 /dev/fuse (scripts/install.sh does it)")
    }
}
