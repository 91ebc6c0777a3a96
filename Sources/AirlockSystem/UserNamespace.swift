import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A user and mount namespace held open by a small `sleep` process, with Airlock's id map.
///
/// Everything that touches files owned by subordinate ids (unpacking an image, deleting a
/// sandbox's upper layer) and the sandbox itself runs inside one of these. The holder dies with
/// the process that made it (`PR_SET_PDEATHSIG`), so a killed Airlock leaves no holder behind.
public final class UserNamespace: @unchecked Sendable {
    public let holder: ChildProcess
    public let identity: SandboxIdentity

    /// Starts the holder and writes its id maps (with `newuidmap`, or directly as root).
    public init(identity: SandboxIdentity) throws {
        self.identity = identity
        let sleep = try Executables.require("sleep")
        holder = try ChildProcess.spawn(
            [
                try Executables.require("setpriv"), "--pdeathsig", "SIGKILL", "--",
                try Executables.require("unshare"), "--user", "--mount", "--propagation", "private", "--",
                sleep, "infinity",
            ], stdin: .null, stdout: .null)
        do {
            try waitForNamespace()
            try writeMaps()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Kills the holder; the namespaces go when their last process does.
    public func close() {
        holder.signal(SIGKILL)
        _ = holder.poll() ?? holder.wait()
    }

    /// The command prefix that enters this namespace as its root.
    public var enterPrefix: [String] {
        ["nsenter", "-t", String(holder.pid), "-U", "-m", "--"]
    }

    /// Runs a command inside as root and fails with its last stderr line.
    @discardableResult
    public func run(_ argv: [String], what: String) throws -> ChildProcess.Output {
        let output = try ChildProcess.run(enterPrefix + argv)
        guard output.status == 0 else {
            throw AirlockError(.failed, "\(what) failed: \(output.lastErrorLine)")
        }
        return output
    }

    /// Removes paths that may hold files owned by subordinate ids.
    public func removeTree(_ paths: [String]) throws {
        let existing = paths.filter { Files.exists($0) }
        guard !existing.isEmpty else { return }
        try run(["rm", "-rf", "--one-file-system", "--"] + existing, what: "removing \(existing[0])")
    }

    private func waitForNamespace() throws {
        let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
        let deadline = Monotonic.now() + 5
        while Monotonic.now() < deadline {
            if let exited = holder.poll() {
                throw AirlockError(
                    .unsupported,
                    "cannot create a user namespace (unshare exited with \(exited)); run `airlock doctor`")
            }
            let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.pid)/ns/user")
            let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.pid)/exe")
            if let theirs, theirs != own, exe?.hasSuffix("sleep") == true { return }
            usleep(1000)
        }
        throw AirlockError(.failed, "timed out waiting for the user namespace holder")
    }

    private func writeMaps() throws {
        let pid = holder.pid
        if getuid() == 0 {
            try Self.writeMap("/proc/\(pid)/uid_map", identity.uidMappings)
            try Self.writeMap("/proc/\(pid)/gid_map", identity.gidMappings)
            return
        }
        // Both at once: each is a set-id program's start, a few milliseconds of every sandbox start.
        let tools = [("newuidmap", identity.uidMappings), ("newgidmap", identity.gidMappings)]
        let outputs = Mutex<[Result<ChildProcess.Output, any Error>?]>([nil, nil])
        DispatchQueue.concurrentPerform(iterations: tools.count) { index in
            let (tool, maps) = tools[index]
            let output = Result { try ChildProcess.run([tool] + Self.mapArguments(pid: pid, maps)) }
            outputs.withLock { $0[index] = output }
        }
        for (index, result) in outputs.withLock({ $0 }).enumerated() {
            guard let output = try result?.get(), output.status == 0 else {
                throw AirlockError(
                    .unsupported,
                    "\(tools[index].0) refused the sandbox id map: \((try? result?.get())?.lastErrorLine ?? ""); run `airlock doctor`"
                )
            }
        }
    }

    /// `newuidmap PID inside outside count ...` arguments.
    public static func mapArguments(pid: pid_t, _ maps: [IDMapping]) -> [String] {
        [String(pid)] + maps.flatMap { [String($0.containerID), String($0.hostID), String($0.size)] }
    }

    static func writeMap(_ path: String, _ maps: [IDMapping]) throws {
        let text = maps.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(path)", errno: errno) }
        defer { Glibc.close(fd) }
        let written = text.withCString { write(fd, $0, strlen($0)) }
        guard written >= 0 else { throw SystemCallError("write \(path)", errno: errno) }
    }
}
