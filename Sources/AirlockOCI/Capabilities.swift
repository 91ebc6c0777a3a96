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
