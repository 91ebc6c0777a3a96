import AirlockState

#if canImport(Glibc)
    import Glibc
#endif

/// The limits a sandbox gets when `create` is not told otherwise, as Docker Sandboxes gives
/// them: memory half the host's (at most 32 GiB), every CPU but one (at least one), and a
/// process count no build needs to pass but a fork bomb reaches at once.
public enum DefaultLimits {
    public static let maximumMemory: Int64 = 32 << 30
    public static let pids: Int64 = 4096

    /// The defaults for a host with `memoryBytes` of memory and `cpus` CPUs.
    public static func forHost(memoryBytes: Int64, cpus: Int) -> SandboxRecord.Limits {
        SandboxRecord.Limits(
            memoryBytes: min(memoryBytes / 2, maximumMemory), cpus: Double(max(1, cpus - 1)), pids: pids)
    }

    /// The defaults for this host.
    public static func current() -> SandboxRecord.Limits {
        let pages = Int64(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
        return forHost(memoryBytes: pages * pageSize, cpus: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// `requested` with each limit it leaves out taken from the defaults.
    public static func filling(_ requested: SandboxRecord.Limits, from defaults: SandboxRecord.Limits = current())
        -> SandboxRecord.Limits
    {
        SandboxRecord.Limits(
            memoryBytes: requested.memoryBytes ?? defaults.memoryBytes, cpus: requested.cpus ?? defaults.cpus,
            pids: requested.pids ?? defaults.pids, tmpBytes: requested.tmpBytes)
    }
}
