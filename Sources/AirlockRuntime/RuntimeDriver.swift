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

    /// How gVisor's Sentry intercepts the sandbox's system calls.
    public enum GVisorPlatform: String, Sendable, Codable, CaseIterable {
        /// seccomp traps and shared-memory stubs: the faster, where the kernel allows it.
        case systrap
        /// ptrace: slower, works on any host.
        case ptrace
    }

    public let kind: Kind
    /// Under runsc: the platform its probe found working (``HostDoctor/gvisor(_:)``).
    public var gvisorPlatform: GVisorPlatform = .systrap
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
        gvisorPlatform = record.gvisorPlatform.flatMap(GVisorPlatform.init(rawValue:)) ?? .systrap
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
        // The sandbox's processes use gVisor's kernel, whose sockets are the host's in the
        // loopback-only namespace the init prepared (`host`): the same listeners serve them.
        // Writes go to the sandbox's own upper directory (no overlay of gVisor's in memory),
        // and the init already runs in the sandbox's cgroup, which holds all of runsc.
        case .runsc:
            [
                binary, "--root", stateRoot, "--platform=\(gvisorPlatform.rawValue)", "--network=host",
                "--overlay2=none", "--ignore-cgroups", "--oci-seccomp",
            ]
        }
    }

    /// Creates and starts the container, then returns (the init keeps running).
    /// The container inherits the runtime's stdio, so the runtime gets a log file for its
    /// errors and /dev/null for stdio: nothing inside can reach a host file through /proc/1/fd.
    public func runArguments(bundle: String, id: String, pidFile: String, logFile: String) -> [String] {
        let log: [String] =
            switch kind {
            case .runc: ["--log", logFile]
            case .crun: ["--log=file:" + logFile]
            case .runsc: ["--log=" + logFile, "--log-format=json"]
            }
        return globalArguments + log + ["run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id]
    }

    /// Starts one more process in the container, described by an OCI process JSON file; the
    /// runtime's own errors go to `logFile` too, where ``execFailure(status:log:)`` reads them.
    public func execArguments(
        id: String, processFile: String, tty: Bool, pidFile: String? = nil, logFile: String? = nil
    ) -> [String] {
        // runsc has no --tty: the process's `terminal` asks for one, on the caller's terminal.
        globalArguments + (logFile.map(logArguments) ?? []) + ["exec"] + (tty && kind != .runsc ? ["--tty"] : [])
            + (pidFile.map { ["--pid-file", $0] } ?? [])
            + (kind == .runsc ? pidFile.map { ["--internal-pid-file", Self.guestPIDFile($0)] } ?? [] : [])
            + ["--process", processFile, id]
    }

    /// Under runsc: where `exec` writes the command's pid in gVisor's kernel, which
    /// ``signalArguments(id:guestPID:signal:)`` needs (the host pid is runsc's own).
    static func guestPIDFile(_ pidFile: String) -> String { pidFile + ".guest" }

    /// Sends `signal` to one process of the container, by its pid in gVisor's kernel: a signal
    /// to `runsc exec` ends runsc, not the command.
    func signalArguments(id: String, guestPID: Int32, signal: Int32) -> [String] {
        globalArguments + ["kill", "--pid", String(guestPID), id, String(signal)]
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
            throw AirlockError(.notFound, "runtime \(kind.rawValue) is not installed (\(Self.installHint(kind)))")
        }
        return path
    }

    /// How to get a working `kind` on this host.
    public static func installHint(_ kind: Kind) -> String {
        switch kind {
        case .runc, .crun: "try: sudo apt-get install \(kind.rawValue)"
        case .runsc: GVisorInstall.hint
        }
    }
}
