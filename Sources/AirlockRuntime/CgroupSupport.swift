import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this host lets Airlock enforce memory, CPU and pids limits, and if not, why.
public struct CgroupSupport: Sendable, Equatable {
    public enum Version: String, Sendable, Codable {
        case v1, hybrid, v2
    }

    public var version: Version
    /// nil when limits can be enforced; otherwise the reason and the fix.
    public var note: String?

    public static func detect() -> CgroupSupport {
        let unified = Files.exists("/sys/fs/cgroup/cgroup.controllers")
        let hybrid = Files.exists("/sys/fs/cgroup/unified")
        let version: Version = unified ? .v2 : (hybrid ? .hybrid : .v1)
        if getuid() == 0 {
            return CgroupSupport(
                version: version,
                note:
                    "limits are not applied yet when airlock runs as root on cgroup \(version.rawValue); run as an ordinary user on a cgroup v2 host with systemd delegation"
            )
        }
        switch version {
        case .v1, .hybrid:
            return CgroupSupport(
                version: version,
                note:
                    "cgroup \(version.rawValue): an unprivileged user cannot be delegated cgroups, so memory/CPU/pids limits are not enforced (fix: boot with systemd.unified_cgroup_hierarchy=1)"
            )
        case .v2:
            let own = (try? Files.read("/proc/self/cgroup"))?.split(separator: "\n").first { $0.hasPrefix("0::") }
            let path = own.map { "/sys/fs/cgroup" + $0.dropFirst(3) } ?? "/sys/fs/cgroup"
            if access(path + "/cgroup.procs", W_OK) == 0 {
                return CgroupSupport(
                    version: .v2,
                    note:
                        "cgroup v2 delegation works but limits are not wired up yet; run under `systemd-run --user --scope`"
                )
            }
            return CgroupSupport(
                version: .v2,
                note:
                    "cgroup v2 without delegation to this user (fix: run airlock under `systemd-run --user --scope -p Delegate=yes`)"
            )
        }
    }
}
