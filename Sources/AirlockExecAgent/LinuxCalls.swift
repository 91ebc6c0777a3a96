import AirlockOCI
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The few Linux calls the exec agent needs that Swift's Glibc module does not export
/// (`prctl` is variadic in C; the others are newer than its headers' defaults), looked up in
/// the C library once. Each returns what the C call does.
public enum LinuxCalls {
    private typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    private typealias Setns = @convention(c) (Int32, Int32) -> Int32
    private typealias CloseRange = @convention(c) (UInt32, UInt32, Int32) -> Int32
    private typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    private typealias Capset = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        dlsym(nil, name).map { unsafeBitCast($0, to: type) }
    }

    private static let prctlCall = symbol("prctl", as: Prctl.self)
    private static let setnsCall = symbol("setns", as: Setns.self)
    private static let closeRangeCall = symbol("close_range", as: CloseRange.self)
    private static let pidfdOpenCall = symbol("pidfd_open", as: PidfdOpen.self)
    private static let capsetCall = symbol("capset", as: Capset.self)

    static func prctl(_ option: Int32, _ a: UInt = 0, _ b: UInt = 0, _ c: UInt = 0, _ d: UInt = 0) -> Int32 {
        guard let call = prctlCall else { return missing() }
        return call(option, a, b, c, d)
    }

    /// `setns(2)`: joins the namespace `fd` names (of `type`, a CLONE_NEW* flag, or 0).
    public static func setns(_ fd: Int32, _ type: Int32) -> Int32 {
        guard let call = setnsCall else { return missing() }
        return call(fd, type)
    }

    /// Marks every descriptor from `first` close-on-exec.
    static func closeOnExec(from first: UInt32) -> Int32 {
        guard let call = closeRangeCall else { return missing() }
        return call(first, UInt32.max, 4)  // CLOSE_RANGE_CLOEXEC
    }

    static func pidfdOpen(_ pid: pid_t) -> Int32 {
        guard let call = pidfdOpenCall else { return missing() }
        return call(pid, 0)
    }

    /// Sets the calling thread's effective, permitted and inheritable capabilities (64-bit
    /// masks, bit N for capability N), with the version 3 interface.
    static func capset(effective: UInt64, permitted: UInt64, inheritable: UInt64) -> Int32 {
        guard let call = capsetCall else { return missing() }
        var header: (UInt32, Int32) = (0x2008_0522, 0)  // _LINUX_CAPABILITY_VERSION_3, this thread
        var data: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            UInt32(truncatingIfNeeded: effective), UInt32(truncatingIfNeeded: permitted),
            UInt32(truncatingIfNeeded: inheritable), UInt32(truncatingIfNeeded: effective >> 32),
            UInt32(truncatingIfNeeded: permitted >> 32), UInt32(truncatingIfNeeded: inheritable >> 32)
        )
        return withUnsafeMutableBytes(of: &header) { header in
            withUnsafeMutableBytes(of: &data) { data in
                guard let header = header.baseAddress, let data = data.baseAddress else { return -1 }
                return call(header, data)
            }
        }
    }

    private static func missing() -> Int32 {
        errno = ENOSYS
        return -1
    }

    // Namespace types (CLONE_NEW*)
    static let newMountNamespace: Int32 = 0x0002_0000
    static let newCgroupNamespace: Int32 = 0x0200_0000
    static let newUTSNamespace: Int32 = 0x0400_0000
    static let newIPCNamespace: Int32 = 0x0800_0000
    static let newPIDNamespace: Int32 = 0x2000_0000

    // Pseudo-terminal ioctls: TIOCSPTLCK, TIOCGPTPEER
    static let unlockTerminal: UInt = 0x4004_5431
    static let openTerminalPeer: UInt = 0x5441

    // prctl options
    static let setParentDeathSignal: Int32 = 1
    static let setDumpable: Int32 = 4
    static let setKeepCapabilities: Int32 = 8
    static let dropBoundingCapability: Int32 = 24
    static let setNoNewPrivileges: Int32 = 38
    static let ambientCapability: Int32 = 47
    static let ambientRaise: UInt = 2
    static let ambientClearAll: UInt = 4

    /// The kernel's capability numbers, in their order (``RuntimeSpec/Capabilities/allInUserNamespace``
    /// lists them so: CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE 40).
    static func capabilityMask(_ names: [String]) -> UInt64 {
        var mask: UInt64 = 0
        for name in names {
            if let number = capabilityNumbers[name] { mask |= 1 << UInt64(number) }
        }
        return mask
    }

    static let capabilityNumbers: [String: Int] = {
        var numbers: [String: Int] = [:]
        for (number, name) in RuntimeSpec.Capabilities.allInUserNamespace.enumerated() { numbers[name] = number }
        return numbers
    }()

    /// The highest capability this kernel knows, read once (each command's child drops the rest).
    static let lastCapability: Int = {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/cap_last_cap", encoding: .utf8)) ?? ""
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 40
    }()

    static let rlimitNumbers: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]
}
