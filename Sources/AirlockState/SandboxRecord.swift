import AirlockSystem
import Foundation

/// What `create` decided about a sandbox; stored as `sandbox.json` and shown by `inspect`.
public struct SandboxRecord: Codable, Sendable, Equatable {
    public var name: String
    public var agent: String
    public var workspace: String
    public var template: String
    public var image: String
    /// The account the agent runs as, and whether it may use sudo (fixed by the image).
    public var user: String
    public var sudo: Bool
    public var runtime: String
    /// Under gVisor (runtime `runsc`): the platform its probe found working at create
    /// (`systrap`, or `ptrace` where systrap is unavailable); nil: systrap.
    public var gvisorPlatform: String?
    public var command: [String]
    public var environment: [String]
    public var mounts: [MountRequest]
    public var limits: Limits
    public var created: Date
    /// How the sandbox reaches the network (nil in records made before it existed: `.policy`).
    public var network: NetworkMode?
    /// Set for a sandbox a program made for itself (the code-sandbox MCP server): no host
    /// workspace, every writable place a sized tmpfs, removed when its owner process ends.
    public var disposable: Disposable?
    /// The user's git name and email, copied from the host at create, so commits made inside
    /// carry them.
    public var gitIdentity: GitIdentity?
    /// Clone mode: the agent works in a private clone of the workspace (mounted at the
    /// workspace's path), the workspace itself is read-only, and the host fetches the clone's
    /// work as the git remote `airlock-<name>`.
    public var clone: Bool?
    /// Workspace paths the user opened to writes (`--unprotect`), which the host-persistence
    /// guard leaves writable.
    public var unprotected: [String]?
    /// `--share-agent-state`: the agent's state directories come from one host directory that
    /// every sandbox of the agent made this way shares (otherwise they live in its own home).
    public var sharedState: SharedState?

    /// The credential services whose stored keys the proxy injects for this sandbox (nil:
    /// every stored one). Sandboxes Airlock makes for programs (code sandboxes, MCP servers)
    /// get none: a key the user stored for an agent is not theirs to use.
    public var credentialServices: [String]?
    /// `--mcp`: the sandbox has an MCP gateway of its own, run by its supervisor on the host and
    /// reached inside as http://mcp.airlock.internal/mcp, through the proxy, which adds the
    /// gateway's token.
    public var mcp: MCPAttachment?
    /// The sandbox's own policy layer alone says what it may reach, within the organisation's:
    /// the user's layer adds only its blocks. An MCP server with `allowHosts` reaches exactly
    /// those hosts, whatever the user allows their agents.
    public var ownPolicyOnly: Bool?
    /// False when the sandbox trusts only its image's CAs and Airlock's, not those of the
    /// host's trust store (`--no-host-ca`); nil in records made before it existed: true.
    public var trustHostCAs: Bool?
    /// The ids and home of `user` when they are not uid 1000 and `/home/USER`: the `User` of
    /// an image an MCP server or code sandbox runs from, or an image's uid-1000 account whose
    /// home is elsewhere. Nil: the agent's usual account.
    public var account: Account?
    /// Where commands start when they name no directory: an image's `WorkingDir`.
    public var workingDir: String?
    /// Ports opened on the host (`--publish`, `airlock port`), opened again at every start.
    public var ports: [PublishedPort]?
    /// `--docker`: a private Docker engine runs beside the agent (``DockerEngine``).
    public var docker: Bool?

    /// An account of the sandbox's image, as commands run as it.
    public struct Account: Codable, Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var home: String

        public init(uid: UInt32, gid: UInt32, home: String) {
            self.uid = uid
            self.gid = gid
            self.home = home
        }
    }

    /// Which servers the sandbox's gateway serves: exactly `servers`, or those of `profile`
    /// (default: the profile 'default') with the dynamic tools to add more.
    public struct MCPAttachment: Codable, Sendable, Equatable {
        public var servers: [String]?
        public var profile: String?

        public init(servers: [String]? = nil, profile: String? = nil) {
            self.servers = servers
            self.profile = profile
        }

        /// The gateway's flags for this choice.
        public var gatewayArguments: [String] {
            if let servers { return ["--servers", servers.joined(separator: ",")] }
            if let profile { return ["--profile", profile] }
            return []
        }
    }

    /// Where shared agent state lives on the host, and which home directories it provides.
    public struct SharedState: Codable, Sendable, Equatable {
        public var directory: String
        public var paths: [String]

        public init(directory: String, paths: [String]) {
            self.directory = directory
            self.paths = paths
        }
    }

    /// `user.name` and `user.email` for commits.
    public struct GitIdentity: Codable, Sendable, Equatable {
        public var name: String?
        public var email: String?

        public init(name: String?, email: String?) {
            self.name = name
            self.email = email
        }
    }

    /// What makes a sandbox disposable: who owns it and how much it may write.
    public struct Disposable: Codable, Sendable, Equatable {
        public var owner: ProcessIdentity
        /// The size of each writable tmpfs: the workspace, the home and `/tmp`.
        public var diskBytes: Int64
        /// A writable root (its own layer on disk, unbounded), for a build's steps; nil: read-only.
        public var writableRoot: Bool?

        public init(owner: ProcessIdentity, diskBytes: Int64, writableRoot: Bool? = nil) {
            self.owner = owner
            self.diskBytes = diskBytes
            self.writableRoot = writableRoot
        }
    }

    /// The sandbox's way out.
    public enum NetworkMode: String, Codable, Sendable, CaseIterable {
        /// Through Airlock's egress proxy, DNS stub and transparent capture, under the policy.
        case policy
        /// Loopback only: nothing leads out.
        case none
    }

    public var networkMode: NetworkMode { network ?? .policy }

    public init(
        name: String, agent: String, workspace: String, template: String, image: String, user: String, sudo: Bool,
        runtime: String,
        command: [String], environment: [String], mounts: [MountRequest], limits: Limits, created: Date,
        network: NetworkMode? = nil, disposable: Disposable? = nil
    ) {
        self.name = name
        self.agent = agent
        self.workspace = workspace
        self.template = template
        self.image = image
        self.user = user
        self.sudo = sudo
        self.runtime = runtime
        self.command = command
        self.environment = environment
        self.mounts = mounts
        self.limits = limits
        self.created = created
        self.network = network
        self.disposable = disposable
    }

    /// An extra mount from `-v HOST[:PATH][:ro]`.
    public struct MountRequest: Codable, Sendable, Equatable {
        public var source: String
        public var destination: String
        public var readOnly: Bool

        public init(source: String, destination: String, readOnly: Bool) {
            self.source = source
            self.destination = destination
            self.readOnly = readOnly
        }
    }

    /// Resource limits the user asked for (nil: none).
    public struct Limits: Codable, Sendable, Equatable {
        public var memoryBytes: Int64?
        public var cpus: Double?
        public var pids: Int64?
        /// The size of `/tmp` inside (a tmpfs: its pages count against the memory limit).
        public var tmpBytes: Int64?

        public init(memoryBytes: Int64? = nil, cpus: Double? = nil, pids: Int64? = nil, tmpBytes: Int64? = nil) {
            self.memoryBytes = memoryBytes
            self.cpus = cpus
            self.pids = pids
            self.tmpBytes = tmpBytes
        }

        public var isEmpty: Bool { memoryBytes == nil && cpus == nil && pids == nil && tmpBytes == nil }
    }
}

/// What the supervisor reports about a running sandbox.
public struct RunningStatus: Codable, Sendable, Equatable {
    public var supervisorPID: Int32
    /// Host pid of the sandbox's init, the process commands enter to reach the sandbox.
    public var initPID: Int32
    public var started: Date
    /// Whether the cgroup limits are enforced, and if not, why.
    public var limitsEnforced: Bool
    public var limitsNote: String?
    /// The published ports the supervisor listens on now, with the host ports they got.
    public var ports: [ActivePort]?

    public init(supervisorPID: Int32, initPID: Int32, started: Date, limitsEnforced: Bool, limitsNote: String?) {
        self.supervisorPID = supervisorPID
        self.initPID = initPID
        self.started = started
        self.limitsEnforced = limitsEnforced
        self.limitsNote = limitsNote
    }
}
