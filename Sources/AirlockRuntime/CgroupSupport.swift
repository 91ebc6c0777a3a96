import AirlockOCI
import AirlockState
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

    /// The v1 controllers Airlock limits, and where they are mounted.
    static let controllers = ["memory", "pids", "cpu"]
    static let root = "/sys/fs/cgroup"

    public static func detect() -> CgroupSupport {
        let unified = Files.exists(root + "/cgroup.controllers")
        let hybrid = Files.exists(root + "/unified")
        let version: Version = unified ? .v2 : (hybrid ? .hybrid : .v1)
        switch version {
        case .v1, .hybrid:
            if getuid() == 0 {
                let missing = controllers.filter { !Files.isDirectory(root + "/" + $0) }
                guard missing.isEmpty else {
                    return CgroupSupport(
                        version: version,
                        note:
                            "cgroup controllers \(missing.joined(separator: ", ")) are not mounted (fix: mount them under \(root))"
                    )
                }
                return CgroupSupport(version: version, note: nil)
            }
            return CgroupSupport(
                version: version,
                note:
                    "cgroup \(version.rawValue): an unprivileged user cannot be delegated cgroups, so memory/CPU/pids limits are not enforced (fix: boot with systemd.unified_cgroup_hierarchy=1)"
            )
        case .v2:
            return CgroupSupport(
                version: .v2,
                note:
                    "cgroup v2: limits are not wired up yet on cgroup v2 hosts (fix: none yet; limits are recorded and shown by inspect)"
            )
        }
    }

    /// The OCI resources for a sandbox's requested limits.
    public static func resources(for limits: SandboxRecord.Limits) -> RuntimeSpec.Resources? {
        guard !limits.isEmpty else { return nil }
        let period: UInt64 = 100_000
        return RuntimeSpec.Resources(
            memory: limits.memoryBytes.map { RuntimeSpec.Resources.Memory(limit: $0, swap: nil) },
            cpu: limits.cpus.map { RuntimeSpec.Resources.CPU(quota: Int64($0 * Double(period)), period: period) },
            pids: limits.pids.map { RuntimeSpec.Resources.Pids(limit: $0) })
    }

    /// The cgroup path of a sandbox, relative to each hierarchy's root.
    public static func path(for name: String) -> String { "/airlock/" + name }

    /// Creates the sandbox's v1 cgroups and hands them to the sandbox's root, so the runtime,
    /// which runs as that root inside the user namespace, can write the limits (root only).
    public static func delegate(name: String, to owner: UInt32) throws {
        for controller in controllers {
            let dir = root + "/" + controller + path(for: name)
            try Files.makeDirectory(dir)
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for entry in [""] + entries.map({ "/" + $0 }) where chown(dir + entry, owner, owner) != 0 {
                throw AirlockError(
                    .failed, "cannot hand cgroup \(dir) to the sandbox", cause: SystemCallError("chown", errno: errno))
            }
        }
    }

    /// Removes the sandbox's v1 cgroups once its processes are gone.
    public static func release(name: String) {
        // The kernel reaps the sandbox's last processes just after its init exits.
        let deadline = Monotonic.now() + 2
        for controller in controllers {
            let dir = root + "/" + controller + path(for: name)
            while rmdir(dir) != 0 && errno == EBUSY && Monotonic.now() < deadline { usleep(10_000) }
        }
    }
}
