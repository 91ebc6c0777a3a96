import AirlockSystem

/// The OCI runtime specification (config.json), as far as Airlock writes it.
///
/// Field names follow opencontainers/runtime-spec 1.0.2; optional fields are left out of the
/// JSON when nil, so golden files stay small and every runtime reads them.
public struct RuntimeSpec: Codable, Sendable, Equatable {
    public var ociVersion: String = "1.0.2"
    public var process: Process
    public var root: Root
    public var hostname: String?
    public var mounts: [Mount]
    public var linux: Linux

    public init(process: Process, root: Root, hostname: String?, mounts: [Mount], linux: Linux) {
        self.process = process
        self.root = root
        self.hostname = hostname
        self.mounts = mounts
        self.linux = linux
    }

    /// The process to run (also the shape of `runc exec --process`).
    public struct Process: Codable, Sendable, Equatable {
        public var terminal: Bool
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities?
        public var rlimits: [Rlimit]?
        public var noNewPrivileges: Bool?
        /// Added to the process's OOM badness (`/proc/PID/oom_score_adj`); raising it needs no privilege.
        public var oomScoreAdj: Int?

        public init(
            terminal: Bool, user: User, args: [String], env: [String], cwd: String,
            capabilities: Capabilities?, rlimits: [Rlimit]?, noNewPrivileges: Bool?, oomScoreAdj: Int? = nil
        ) {
            self.terminal = terminal
            self.user = user
            self.args = args
            self.env = env
            self.cwd = cwd
            self.capabilities = capabilities
            self.rlimits = rlimits
            self.noNewPrivileges = noNewPrivileges
            self.oomScoreAdj = oomScoreAdj
        }
    }

    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]?

        public init(uid: UInt32, gid: UInt32, additionalGids: [UInt32]? = nil) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
        }
    }

    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]
        public var effective: [String]
        public var inheritable: [String]
        public var permitted: [String]
        public var ambient: [String]

        public init(
            bounding: [String], effective: [String], inheritable: [String], permitted: [String], ambient: [String]
        ) {
            self.bounding = bounding
            self.effective = effective
            self.inheritable = inheritable
            self.permitted = permitted
            self.ambient = ambient
        }
    }

    public struct Rlimit: Codable, Sendable, Equatable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64

        public init(type: String, hard: UInt64, soft: UInt64) {
            self.type = type
            self.hard = hard
            self.soft = soft
        }
    }

    public struct Root: Codable, Sendable, Equatable {
        public var path: String
        public var readonly: Bool

        public init(path: String, readonly: Bool) {
            self.path = path
            self.readonly = readonly
        }
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String
        public var source: String
        public var options: [String]

        public init(destination: String, type: String, source: String, options: [String]) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }

        /// A bind mount of a host path; a `following` one is a slave of its source, so mounts
        /// made there later appear in the container too.
        public static func bind(_ source: String, at destination: String, readOnly: Bool, following: Bool = false)
            -> Mount
        {
            Mount(
                destination: destination, type: "bind", source: source,
                options: ["rbind", "nosuid", "nodev", readOnly ? "ro" : "rw"] + (following ? ["rslave"] : []))
        }
    }

    public struct Linux: Codable, Sendable, Equatable {
        public var namespaces: [Namespace]
        /// With a `user` namespace: how its ids line up with the runtime's (joined by path, the
        /// runtime only checks them).
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var resources: Resources?
        public var cgroupsPath: String?
        public var seccomp: Seccomp?
        public var maskedPaths: [String]
        public var readonlyPaths: [String]
        /// How the root's mounts propagate (`rslave`: mounts made on a source later appear
        /// inside). runc makes them slaves when this is not set; crun makes them private.
        public var rootfsPropagation: String?

        public init(
            namespaces: [Namespace], resources: Resources?, cgroupsPath: String?, seccomp: Seccomp?,
            maskedPaths: [String], readonlyPaths: [String]
        ) {
            self.namespaces = namespaces
            self.resources = resources
            self.cgroupsPath = cgroupsPath
            self.seccomp = seccomp
            self.maskedPaths = maskedPaths
            self.readonlyPaths = readonlyPaths
        }
    }

    public struct Namespace: Codable, Sendable, Equatable {
        public var type: String
        public var path: String?

        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    public struct Resources: Codable, Sendable, Equatable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?

        public init(memory: Memory?, cpu: CPU?, pids: Pids?) {
            self.memory = memory
            self.cpu = cpu
            self.pids = pids
        }

        public struct Memory: Codable, Sendable, Equatable {
            public var limit: Int64
            public var swap: Int64?

            public init(limit: Int64, swap: Int64?) {
                self.limit = limit
                self.swap = swap
            }
        }

        public struct CPU: Codable, Sendable, Equatable {
            public var quota: Int64
            public var period: UInt64

            public init(quota: Int64, period: UInt64) {
                self.quota = quota
                self.period = period
            }
        }

        public struct Pids: Codable, Sendable, Equatable {
            public var limit: Int64

            public init(limit: Int64) { self.limit = limit }
        }
    }
}
