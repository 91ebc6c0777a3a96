import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How an ordinary user gets cgroups of its own on a cgroup v2 host: from the user's systemd
/// manager (`user@UID.service`), which owns its part of the tree and, by Debian's default,
/// has the memory, pids and cpu controllers delegated to it.
///
/// A user cannot move a process of its login session into that part itself (the kernel wants
/// write access to the common ancestor, which is root's), so each sandbox's supervisor starts
/// in a transient scope the manager makes for it, `airlock-NAME.scope` with `Delegate=yes` in
/// `airlock.slice`, the way rootless Podman starts its containers. The manager moves the
/// process in (asking the system manager where it may not), hands the scope's subtree to the
/// user, and removes the scope once its last process is gone. Root uses the system manager
/// the same way.
public struct SystemdDelegation: Sendable, Equatable {
    public let uid: uid_t
    /// The manager's cgroup, relative to the v2 root (`""` for the system manager).
    public let managerGroup: String

    public init(uid: uid_t) {
        self.uid = uid
        self.managerGroup = uid == 0 ? "" : "/user.slice/user-\(uid).slice/user@\(uid).service"
    }

    /// The slice the sandboxes' scopes go in.
    public static let slice = "airlock.slice"

    /// Where the scopes are, relative to the v2 root.
    public var sliceGroup: String { managerGroup + "/" + Self.slice }

    /// The manager's private socket, which `systemd-run` talks to without a D-Bus daemon.
    public var managerSocket: String {
        uid == 0 ? "/run/systemd/private" : runtimeDirectory + "/systemd/private"
    }

    /// `$XDG_RUNTIME_DIR` as logind makes it.
    public var runtimeDirectory: String { "/run/user/\(uid)" }

    /// Why the manager cannot give the sandboxes their cgroups, with the fix; nil when it can.
    public func problem(user: String, controllers wanted: [String]) -> String? {
        guard Files.isDirectory("/run/systemd/system") else {
            return
                "cgroup v2 without systemd as init: Airlock takes v2 cgroups from systemd, so memory and CPU are not limited and processes only per process (fix: boot with systemd, or use a cgroup v1 host)"
        }
        guard Executables.find("systemd-run") != nil else {
            return
                "cgroup v2: systemd-run is not installed, so memory and CPU are not limited and processes only per process (fix: sudo apt-get install systemd)"
        }
        guard Files.exists(managerSocket) else {
            let fix =
                uid == 0
                ? "boot with systemd as init"
                : "sudo loginctl enable-linger \(user), or log in through a session that starts one"
            return
                "cgroup v2: no systemd \(uid == 0 ? "" : "user ")manager runs for \(user), so memory and CPU are not limited and processes only per process (fix: \(fix))"
        }
        let path = CgroupSupport.root + managerGroup + "/cgroup.controllers"
        let offered = Set(((try? Files.read(path)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        let missing = wanted.filter { !offered.contains($0) }
        guard missing.isEmpty else {
            return
                "cgroup v2: systemd does not delegate \(missing.joined(separator: ", ")) to \(user)'s manager, so those limits are not enforced (fix: \(Self.delegationCommand))"
        }
        return nil
    }

    /// The drop-in that has systemd delegate the controllers to every user's manager (what
    /// `scripts/install.sh` writes); it holds from the user's next login.
    public static let delegationCommand =
        "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=pids memory cpu\\n' | sudo tee /etc/systemd/system/user@.service.d/airlock-delegate.conf && sudo systemctl daemon-reload, then restart your manager: log out everywhere and in again, or reboot"

    /// The scope unit of the sandbox group `name`.
    public static func unit(_ name: String) -> String { "airlock-" + name + ".scope" }

    /// The command prefix that starts `argv` in the scope `unit` (a name systemd picks when
    /// nil), with its subtree delegated.
    public func scopePrefix(unit: String?) -> [String] {
        manager("systemd-run") + ["--scope", "--quiet", "--collect", "--slice=" + Self.slice]
            + (unit.map { ["--unit=" + $0] } ?? []) + ["--property=Delegate=yes", "--"]
    }

    /// Stops the scope `unit` and everything still in it.
    public func stopCommand(unit: String) -> [String] {
        manager("systemctl") + ["stop", "--quiet", unit]
    }

    /// `tool` talking to this user's manager. `systemd-run --user` finds it through
    /// `XDG_RUNTIME_DIR`, which a `sudo -u` or cron environment lacks and a `su` without `-`
    /// keeps from the other user: set to this user's.
    private func manager(_ tool: String) -> [String] {
        uid == 0 ? [tool] : ["env", "XDG_RUNTIME_DIR=" + runtimeDirectory, tool, "--user"]
    }

    /// The v2 cgroup of process `pid` (`/proc/PID/cgroup`'s `0::` line), relative to the root.
    public static func group(of pid: String = "self") -> String? {
        let text = (try? Files.read("/proc/\(pid)/cgroup")) ?? ""
        return text.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }
}
