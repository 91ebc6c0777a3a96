import AirlockEgress
import AirlockGitGuard
import AirlockPolicy
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// One sandbox as `ls --json` and `inspect` show it.
struct SandboxReport: Codable {
    var name: String
    var status: String
    var agent: String
    var workspace: String
    var template: String
    var image: String
    /// The tier (`container` or `gvisor`) and the runtime that provides it.
    var isolation: String
    var runtime: String
    /// Under gVisor: how its kernel intercepts system calls (`systrap` or `ptrace`).
    var gvisorPlatform: String?
    var created: Date
    var command: [String]
    var environment: [String]?
    var mounts: [SandboxRecord.MountRequest]?
    var stateDirectory: String?
    var supervisorPID: Int32?
    var initPID: Int32?
    var started: Date?
    var limits: Limits?
    /// `policy` (through the proxy) or `none`, and the sandbox's own policy layer.
    var network: String?
    var networkPolicy: PolicySettings?
    /// The caps and timeouts its proxy applies, from every policy layer and the defaults.
    var connections: ConnectionLimits?
    /// For a sandbox a program made for itself: its owner process and tmpfs size.
    var disposable: SandboxRecord.Disposable?
    /// What the git guard refused or moved away and not yet cleared (`airlock guard`).
    var guardEvents: Int?
    /// Bytes on disk of the sandbox's own layer, home, workspace and engine (`inspect`, `ls --size`).
    var disk: DiskUsage?
    /// Its published ports, and while it runs, the host ports they got.
    var ports: [Port.Listed]?
    /// `--docker`: the engine's socket and what it is granted beyond the agent.
    var docker: DockerEngine.Report?

    struct Limits: Codable {
        var requested: SandboxRecord.Limits
        /// True when a cgroup holds memory, CPU and pids for every process of the sandbox.
        var enforced: Bool
        /// What enforces each limit (memory, cpus, pids) on this host.
        var enforcedBy: [String: String]
        /// Processes the kernel's OOM killer ended while the sandbox ran (when a cgroup counts).
        var oomKills: Int?
        /// The sandbox's group: under each v1 controller (`/sys/fs/cgroup/<controller>` + this),
        /// or on v2 `/sys/fs/cgroup` + this.
        var cgroup: String?
        var note: String?
    }

    init(record: SandboxRecord, paths: SandboxPaths, detailed: Bool, measure identity: SandboxIdentity? = nil) {
        let running = paths.isRunning
        let status = running ? paths.loadStatus() : nil
        name = record.name
        self.status = running ? "running" : "stopped"
        agent = record.agent
        workspace = record.workspace
        template = record.template
        image = record.image
        isolation = Isolation(runtimeName: record.runtime).rawValue
        runtime = record.runtime
        gvisorPlatform = isolation == Isolation.gvisor.rawValue ? record.gvisorPlatform ?? "systrap" : nil
        created = record.created
        command = record.command
        let events = GuardJournal(file: paths.guardJournal).events().count
        guardEvents = events > 0 ? events : nil
        if let identity { disk = DiskUsage.measure(record, paths: paths, identity: identity) }
        if let published = record.ports {
            ports = published.map { spec in
                Port.Listed(SandboxPorts.Entry(spec: spec, active: status?.ports?.first { $0.spec == spec }))
            }
        }
        guard detailed else { return }
        environment = record.environment
        mounts = record.mounts
        stateDirectory = paths.directory
        supervisorPID = status?.supervisorPID
        initPID = status?.initPID
        started = status?.started
        network = record.networkMode.rawValue
        networkPolicy = record.networkMode == .policy ? (try? PolicyStore.load(paths.policy)) ?? nil : nil
        if record.networkMode == .policy {
            let files = PolicyStore.Files(paths: paths, userNarrowsOnly: record.ownPolicyOnly ?? false)
            connections = (try? PolicyStore(files: files).current().get().connections)?.enforced
        }
        disposable = record.disposable
        if record.docker == true { docker = DockerEngine.Report(paths: paths) }
        let support = CgroupSupport.detect()
        let cgroup = SandboxCgroup(paths, support: support)
        limits = Limits(
            requested: record.limits, enforced: support.note == nil,
            enforcedBy: support.enforcement(disposable: record.disposable != nil),
            oomKills: running ? cgroup.oomKills() : nil,
            cgroup: cgroup.reportedPath, note: support.note)
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
