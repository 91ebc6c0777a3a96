import AirlockEgress
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the user's commands may ask of a running sandbox's supervisor: one JSON line each
/// way over its control socket (``SandboxPaths/control``), which only the user's own processes
/// can reach (mode 0600 in the state directory, and the peer's uid is checked).
enum ControlRequest: Codable {
    case publish(PublishedPort)
    case unpublish(hostPort: UInt16, hostAddress: String?)
}

struct ControlReply: Codable {
    var port: ActivePort?
    var error: String?
    /// The name of the error's ``AirlockError/Code``.
    var code: String?
}

/// The supervisor's side: serves requests from a thread of its own while the sandbox runs.
final class SupervisorControl: @unchecked Sendable {
    private let paths: SandboxPaths
    private let forwarder: PortForwarder
    private let egress: EgressServer?
    private let listener: Int32

    init(paths: SandboxPaths, forwarder: PortForwarder, egress: EgressServer?) throws {
        self.paths = paths
        self.forwarder = forwarder
        self.egress = egress
        listener = try UnixSocket.listen(at: paths.control)
    }

    func start() {
        Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                serve(connection)
                close(connection)
            }
        }.start()
    }

    /// Removes the socket; the supervisor is ending.
    func stop() {
        Files.remove(paths.control)
    }

    private func serve(_ connection: Int32) {
        guard UnixSocket.peerUID(connection) == getuid(), let line = UnixSocket.readLine(connection),
            let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8))
        else { return }
        var reply = ControlReply()
        switch request {
        case .publish(let spec):
            do {
                reply.port = try forwarder.publish(spec)
                if let egress, EgressListener.serving(publishing: [spec.port]).count < EgressListener.all.count {
                    egress.releaseCapture(of: spec.port)
                }
            } catch let error as AirlockError {
                reply.error = error.description
                reply.code = error.code.name
            } catch {
                reply.error = "\(error)"
            }
        case .unpublish(let hostPort, let hostAddress):
            reply.port = forwarder.unpublish(hostPort: hostPort, hostAddress: hostAddress)
        }
        saveStatus()
        if let text = try? JSONText.compact(reply) { UnixSocket.writeLine(connection, text) }
    }

    /// The status names the ports being served now, for `port ls` and `inspect`.
    func saveStatus() {
        guard var status = paths.loadStatus() else { return }
        status.ports = forwarder.active
        try? paths.save(status)
    }

    /// The command's side: sends one request to the running supervisor of `paths`.
    static func send(_ request: ControlRequest, to paths: SandboxPaths, name: String) throws -> ControlReply {
        let fd: Int32
        do {
            fd = try UnixSocket.connect(to: paths.control)
        } catch {
            throw AirlockError(
                .unsupported,
                "sandbox \(name) was started by an earlier Airlock, which cannot publish ports while it runs; `airlock stop \(name)` and run it again"
            )
        }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard UnixSocket.writeLine(fd, try JSONText.compact(request)), let line = UnixSocket.readLine(fd),
            let reply = try? JSONDecoder().decode(ControlReply.self, from: Data(line.utf8))
        else { throw AirlockError(.failed, "the supervisor of sandbox \(name) did not answer (see its log)") }
        return reply
    }
}
