import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Hides the lone cgroup v2 hierarchy of a hybrid host (`/sys/fs/cgroup/unified`, which holds
/// no controller) from crun, in the sandbox init's own mount namespace.
///
/// crun decides how cgroups are laid out before it reads `--cgroup-manager`, and refuses a
/// v1 tree with a v2 hierarchy beside it. Airlock never asks crun to manage cgroups (the init
/// already runs in the sandbox's group, and every process it starts stays there), so an empty
/// read-only tmpfs over that one directory changes nothing but crun's answer. Only this
/// namespace sees it; the container has a sysfs of its own.
enum UnifiedCgroupMask {
    static let path = CgroupSupport.root + "/unified"

    /// Whether this host has the hierarchy crun refuses: v1 controllers with a v2 hierarchy
    /// beside them.
    static var isNeeded: Bool {
        !Files.exists(CgroupSupport.root + "/cgroup.controllers") && Files.exists(path + "/cgroup.controllers")
    }

    /// Mounts the tmpfs when `kind` needs it and this host has the hierarchy; the caller is
    /// root of a user namespace and owns its mount namespace.
    static func apply(for kind: RuntimeDriver.Kind) throws {
        guard kind == .crun, isNeeded else { return }
        guard
            Glibc.mount(
                "airlock-no-cgroup2", path, "tmpfs", UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), "size=4k")
                == 0
        else {
            throw SystemCallError("hide \(path) from crun", errno: errno)
        }
    }

    /// The same, for a command started through a shell (the doctor's probe): `argv` runs with
    /// the hierarchy hidden.
    static func wrapping(_ argv: [String], for kind: RuntimeDriver.Kind) -> [String] {
        guard kind == .crun, isNeeded else { return argv }
        return [
            "/bin/sh", "-c",
            "mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k airlock-no-cgroup2 \(path) && exec \"$@\"", "sh",
        ] + argv
    }
}
