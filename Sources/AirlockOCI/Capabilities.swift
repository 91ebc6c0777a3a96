extension RuntimeSpec.Capabilities {
    /// The capability set Docker grants root in a container: enough for apt and sudo inside the
    /// sandbox's user namespace, and meaningless outside it.
    public static let containerRootSet = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// For the agent: nothing effective, only what a setuid `sudo` may pick up.
    public static var agent: Self {
        Self(bounding: containerRootSet, effective: [], inheritable: [], permitted: [], ambient: [])
    }

    /// For root inside the sandbox (`exec -u root`).
    public static var root: Self {
        Self(
            bounding: containerRootSet, effective: containerRootSet, inheritable: [], permitted: containerRootSet,
            ambient: [])
    }
}

extension RuntimeSpec.Capabilities {
    /// Every capability: what a container engine's root gets. In the sandbox's user namespace
    /// they reach only what that namespace owns (its mounts, its network), never the host's.
    public static let allInUserNamespace = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]
}
