import AirlockSystem
import Foundation

/// Where Airlock keeps its state: `$AIRLOCK_HOME`, else `$XDG_DATA_HOME/airlock`, else
/// `~/.local/share/airlock`.
///
/// ```
/// images/<digest>/rootfs        read-only image root filesystems
/// images/.<digest>.lock         build lock per recipe
/// sandboxes/<name>/sandbox.json the sandbox record
/// sandboxes/<name>/{upper,work,home,bundle,runc,exec,supervisor.log,lock,running.lock}
/// agent-state/<agent>/          state directories shared with --share-agent-state
/// ```
public struct StateStore: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// The store for this user, from the environment.
    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment) -> StateStore {
        if let home = environment["AIRLOCK_HOME"], !home.isEmpty { return StateStore(root: Files.absolute(home)) }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return StateStore(root: data + "/airlock") }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return StateStore(root: home + "/.local/share/airlock")
    }

    public var imagesDirectory: String { root + "/images" }
    public var sandboxesDirectory: String { root + "/sandboxes" }
    /// The user's certificate authority for TLS interception, and stored secrets (mode 0700).
    public var caDirectory: String { root + "/ca" }
    public var secretsDirectory: String { root + "/secrets" }

    /// The state every sandbox of `agent` created with `--share-agent-state` shares.
    public func sharedAgentState(_ agent: String) -> String {
        root + "/agent-state/" + agent
    }

    /// The read-only root filesystem of the image with `digest`.
    public func imageRootfs(_ digest: String) -> String {
        imagesDirectory + "/" + digest + "/rootfs"
    }

    public func sandbox(_ name: String) -> SandboxPaths {
        SandboxPaths(directory: sandboxesDirectory + "/" + name)
    }

    public func prepare() throws {
        try Files.makeDirectory(root, mode: 0o700)
        try Files.makeDirectory(imagesDirectory)
        try Files.makeDirectory(sandboxesDirectory)
    }

    /// Names of every sandbox with a record, sorted.
    public func sandboxNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: sandboxesDirectory)) ?? []
        // Hidden entries are sandboxes being removed.
        return names.filter { !$0.hasPrefix(".") && Files.exists(sandboxesDirectory + "/" + $0 + "/sandbox.json") }
            .sorted()
    }

    /// Every sandbox record that can be read.
    public func records() -> [SandboxRecord] {
        sandboxNames().compactMap { try? sandbox($0).loadRecord() }
    }
}

/// The files of one sandbox.
public struct SandboxPaths: Sendable {
    public let directory: String

    public var record: String { directory + "/sandbox.json" }
    public var upper: String { directory + "/upper" }
    public var work: String { directory + "/work" }
    public var home: String { directory + "/home" }
    public var bundle: String { directory + "/bundle" }
    public var runtimeRoot: String { directory + "/runc" }
    public var rootfs: String { directory + "/rootfs" }
    public var log: String { directory + "/supervisor.log" }
    public var etc: String { directory + "/etc" }
    /// The private clone of the workspace in clone mode.
    public var clone: String { directory + "/clone" }
    /// Process descriptions of running `exec`s, one file each.
    public var execDirectory: String { directory + "/exec" }
    /// The exec agent's socket (see `ExecAgentServer`), while the sandbox runs.
    public var execSocket: String { directory + "/exec.sock" }
    public var execAgentLog: String { directory + "/exec-agent.log" }
    /// The sandbox's own network policy layer (flags of `create`, changed by `network policy`).
    public var policy: String { directory + "/policy.json" }
    /// API keys taken from the host environment at create, for the proxy to inject (0600).
    public var credentials: String { directory + "/credentials.json" }
    /// The certificate bundle the sandbox trusts: the image's plus the user's Airlock CA.
    public var caBundle: String { etc + "/ca-certificates.crt" }
    /// One JSON line per egress decision.
    public var networkLog: String { directory + "/network.log" }
    /// Workspace directories the host-persistence guard made at start, removed at stop if empty.
    public var guardMade: String { directory + "/guard-made" }
    /// The git guard's plan for the current start: filtered git directories, read-only binds.
    public var gitGuardPlan: String { directory + "/git-guard.json" }
    /// Mount points of the filters in front of `.git`, one directory each.
    public var gitFilters: String { directory + "/git-filters" }
    /// What the git guard refused or moved away, one JSON line each.
    public var guardJournal: String { directory + "/guard-journal.jsonl" }
    /// Repositories the git guard moved out of the workspace.
    public var quarantine: String { directory + "/quarantine" }
    /// The files that run on the host, as they were when the sandbox last started.
    public var hostRunSnapshot: String { directory + "/host-run-files.json" }
    /// What the sandbox's MCP gateway (`--mcp`) logs.
    public var mcpGatewayLog: String { directory + "/mcp-gateway.log" }
    /// The tool calls through the sandbox's gateway, as JSON lines (rotated; `airlock mcp log`).
    public var mcpCallLog: String { directory + "/mcp-calls.log" }
    /// Held for the length of one command that changes the sandbox.
    public var lock: String { directory + "/lock" }
    /// Held by the supervisor for as long as the sandbox runs.
    public var runningLock: String { directory + "/running.lock" }
    /// Written by the supervisor once the sandbox is ready.
    public var status: String { directory + "/status.json" }
    /// Where the running supervisor takes requests from the user's commands (`airlock port`).
    public var control: String { directory + "/control.sock" }

    public func loadRecord() throws -> SandboxRecord {
        let data = try Files.read(record)
        do {
            return try JSONDecoder().decode(SandboxRecord.self, from: Data(data.utf8))
        } catch {
            throw AirlockError(.failed, "sandbox record \(record) is damaged: \(error)")
        }
    }

    public func save(_ value: SandboxRecord) throws {
        try Files.writeAtomically(record, try Self.encode(value))
    }

    public func loadStatus() -> RunningStatus? {
        guard let text = try? Files.read(status) else { return nil }
        return try? JSONDecoder().decode(RunningStatus.self, from: Data(text.utf8))
    }

    public func save(_ value: RunningStatus) throws {
        try Files.writeAtomically(status, try Self.encode(value))
    }

    /// Whether a supervisor is alive for this sandbox.
    public var isRunning: Bool { FileLock.isHeld(path: runningLock) }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        try JSONText.pretty(value) + "\n"
    }
}

/// Where the user's Airlock configuration lives: `$XDG_CONFIG_HOME/airlock`, else
/// `~/.config/airlock` (templates, policy, catalogs).
public enum UserConfig {
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let config =
            environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        return config + "/airlock"
    }

    /// The organisation's policy, which nothing a user or a workspace sets can loosen.
    public static let organisationPolicy = "/etc/airlock/policy.yaml"
}
