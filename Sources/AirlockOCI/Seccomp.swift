/// A seccomp filter in OCI form.
public struct Seccomp: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var architectures: [String]
    public var syscalls: [Rule]

    public init(defaultAction: String, architectures: [String], syscalls: [Rule]) {
        self.defaultAction = defaultAction
        self.architectures = architectures
        self.syscalls = syscalls
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var names: [String]
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Arg]?

        public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [Arg]? = nil) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
        }
    }

    public struct Arg: Codable, Sendable, Equatable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64?
        public var op: String

        public init(index: UInt32, value: UInt64, valueTwo: UInt64? = nil, op: String) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }
    }
}

extension Seccomp {
    /// The host's architecture and the compat ABIs its kernel also accepts: a filter must cover
    /// them all, or a 32-bit syscall would slip past it; foreign ones only cost compile time.
    public static var nativeArchitectures: [String] {
        #if arch(x86_64)
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        #elseif arch(arm64)
            ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        #else
            []
        #endif
    }

    /// Compares only the low 32 bits: `socket`'s family and `ioctl`'s request are 32-bit in
    /// the kernel, so a plain 64-bit comparison is dodged by setting an upper bit.
    static func low32(index: UInt32, equals value: UInt64) -> Arg {
        Arg(index: index, value: 0xffff_ffff, valueTwo: value, op: "SCMP_CMP_MASKED_EQ")
    }

    static let eperm: UInt32 = 1
    static let enosys: UInt32 = 38
    static let eafnosupport: UInt32 = 97

    /// Airlock's filter (DESIGN invariant 5): allow by default, deny the kernel interfaces that
    /// agents never need and that keep turning up in container escapes.
    public static var airlockDefault: Seccomp { filter(denying: deniedToAll) }

    /// What nothing in a sandbox may call.
    static let deniedToAll = [
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "userfaultfd", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "open_by_handle_at",
        "name_to_handle_at", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
        "fsmount", "fsconfig", "fspick", "mount_setattr", "unshare", "setns", "swapon", "swapoff",
        "reboot", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "syslog",
        "lookup_dcookie", "quotactl", "nfsservctl", "uselib", "vhangup",
    ]

    /// What a container engine needs beyond an agent (measured: without any one of them dockerd
    /// or its containers fail): mounts, pivot_root, and joining namespaces. New namespaces come
    /// from clone (never a user namespace); unshare, the new mount API and the rest stay denied,
    /// to the engine and to every container it starts (their filters stack on this one).
    static let engineNeeds = ["mount", "umount2", "pivot_root", "setns"]

    /// The engine's filter (`--docker`, ``engineNeeds``). Keyrings answer "not implemented",
    /// which runtimes take as a kernel without them (they would fail on "not permitted").
    public static var engine: Seccomp {
        var seccomp = filter(denying: deniedToAll.filter { !engineNeeds.contains($0) && !keyrings.contains($0) })
        seccomp.syscalls.insert(Rule(names: keyrings, action: "SCMP_ACT_ERRNO", errnoRet: enosys), at: 1)
        return seccomp
    }

    static let keyrings = ["keyctl", "add_key", "request_key"]

    static func filter(denying denied: [String]) -> Seccomp {
        let cloneNewUser: UInt64 = 0x1000_0000
        let tiocsti: UInt64 = 0x5412
        let tioclinux: UInt64 = 0x541C
        return Seccomp(
            defaultAction: "SCMP_ACT_ALLOW",
            architectures: nativeArchitectures,
            syscalls: [
                Rule(names: denied, action: "SCMP_ACT_ERRNO", errnoRet: eperm),
                // clone3 takes its flags in a struct the filter cannot read; ENOSYS makes libc
                // fall back to clone, whose flags it can.
                Rule(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: enosys),
                Rule(
                    names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: eperm,
                    args: [Arg(index: 0, value: cloneNewUser, valueTwo: cloneNewUser, op: "SCMP_CMP_MASKED_EQ")]),
                Rule(
                    names: ["socket", "socketpair"], action: "SCMP_ACT_ERRNO", errnoRet: eafnosupport,
                    args: [low32(index: 0, equals: 40)]),  // AF_VSOCK
                Rule(
                    names: ["socket", "socketpair"], action: "SCMP_ACT_ERRNO", errnoRet: eafnosupport,
                    args: [low32(index: 0, equals: 38)]),  // AF_ALG
                Rule(
                    names: ["socket", "socketpair"], action: "SCMP_ACT_ERRNO", errnoRet: eafnosupport,
                    args: [low32(index: 0, equals: 17)]),  // AF_PACKET
                Rule(
                    names: ["ioctl"], action: "SCMP_ACT_ERRNO", errnoRet: eperm,
                    args: [low32(index: 1, equals: tiocsti)]),
                Rule(
                    names: ["ioctl"], action: "SCMP_ACT_ERRNO", errnoRet: eperm,
                    args: [low32(index: 1, equals: tioclinux)]),
            ])
    }
}
