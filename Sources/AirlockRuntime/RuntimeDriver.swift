import AirlockState
import AirlockSystem

#if canImport(Glibc)
    import Glibc
#endif

/// An OCI runtime Airlock can drive: runc, crun or gVisor's runsc.
///
/// Drivers only build argument lists; the supervisor and `exec` run them inside the sandbox's
/// user namespace. Keeping them pure lets tests check the exact command lines.
public struct RuntimeDriver: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case runc, crun, runsc
    }

    public let kind: Kind
    /// Directory for the runtime's container state (`--root`).
    public let stateRoot: String

    /// The program to run: its absolute path when installed, so no `PATH` search happens
    /// inside the sandbox's namespaces.
    public let binary: String

    public init(kind: Kind, stateRoot: String) {
        self.init(kind: kind, stateRoot: stateRoot, binary: Executables.find(kind.rawValue) ?? kind.rawValue)
    }

    /// The driver a sandbox was created with, keeping its state in the sandbox's directory.
    public init(record: SandboxRecord, paths: SandboxPaths) {
        self.init(kind: Kind(rawValue: record.runtime) ?? .runc, stateRoot: paths.runtimeRoot)
    }

    public init(kind: Kind, stateRoot: String, binary: String) {
        self.kind = kind
        self.stateRoot = stateRoot
        self.binary = binary
    }

    /// Flags every invocation needs.
    var globalArguments: [String] {
        switch kind {
        case .runc: [binary, "--root", stateRoot]
        // The sandbox init already runs in the sandbox's cgroup and everything stays there
        // (see ``UnifiedCgroupMask``).
        case .crun: [binary, "--root", stateRoot, "--cgroup-manager=disabled"]
        // ptrace works on any host; the sandbox's network namespace is the runtime's own.
        case .runsc:
            [binary, "--root", stateRoot, "--platform=ptrace", "--network=none", "--ignore-cgroups", "--oci-seccomp"]
        }
    }

    /// Creates and starts the container, then returns (the init keeps running).
    /// The container inherits the runtime's stdio, so runc and crun get a log file for their
    /// errors and /dev/null for stdio: nothing inside can reach a host file through /proc/1/fd.
    public func runArguments(bundle: String, id: String, pidFile: String, logFile: String) -> [String] {
        let log: [String] =
            switch kind {
            case .runc: ["--log", logFile]
            case .crun: ["--log=file:" + logFile]
            case .runsc: []
            }
        return globalArguments + log + ["run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id]
    }

    /// Whether errors go to the log file rather than stderr (runsc writes them to stderr, and
    /// keeps the container's stdio inside its own kernel).
    public var logsToFile: Bool { kind != .runsc }

    /// Starts one more process in the container, described by an OCI process JSON file; the
    /// runtime's own errors go to `logFile` too, where ``execFailure(status:log:)`` reads them.
    public func execArguments(
        id: String, processFile: String, tty: Bool, pidFile: String? = nil, logFile: String? = nil
    ) -> [String] {
        globalArguments + (logFile.map(logArguments) ?? []) + ["exec"] + (tty ? ["--tty"] : [])
            + (pidFile.map { ["--pid-file", $0] } ?? []) + ["--process", processFile, id]
    }

    /// What `runc exec` gives a command that `crun exec` leaves to its caller, set on the way
    /// in (each is inherited): the OOM score adjustment, which crun applies only to a
    /// container's first process, and an open-files soft limit at the hard one (runc, a Go
    /// program, raises its own and passes it on; the exec agent gives the same).
    public func execPrefix(oomScoreAdj: Int) -> [String] {
        guard kind == .crun, let prlimit = Executables.find("prlimit") else { return [] }
        var files = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        // The score at best effort: a caller held above it (a service's OOMScoreAdjust) still runs.
        return [
            "/bin/sh", "-c", "echo \(oomScoreAdj) > /proc/self/oom_score_adj 2>/dev/null; exec \"$@\"", "airlock-exec",
            prlimit, "--nofile=\(files.rlim_max)", "--",
        ]
    }

    public func killArguments(id: String, signal: String, all: Bool) -> [String] {
        globalArguments + ["kill"] + (all && kind != .runsc ? ["--all"] : []) + [id, signal]
    }

    public func deleteArguments(id: String) -> [String] {
        globalArguments + ["delete", "--force", id]
    }

    public func stateArguments(id: String) -> [String] {
        globalArguments + ["state", id]
    }

    /// The program's path, or an error that says how to install it.
    public func requireInstalled() throws -> String {
        guard let path = Executables.find(kind.rawValue) else {
            throw AirlockError(
                .notFound, "runtime \(kind.rawValue) is not installed (try: sudo apt-get install \(kind.rawValue))")
        }
        return path
    }
}
