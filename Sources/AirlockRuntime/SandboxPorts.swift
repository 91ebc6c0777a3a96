import AirlockEgress
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A sandbox's published ports, as the user's commands see and change them: kept in its
/// record (opened again at every start) and, while it runs, served by its supervisor, which
/// these commands ask over its control socket.
public struct SandboxPorts {
    public let store: StateStore

    public init(store: StateStore) {
        self.store = store
    }

    /// A published port and, while the sandbox runs, the host port it got.
    public struct Entry: Codable, Sendable, Equatable {
        public var spec: PublishedPort
        public var active: ActivePort?

        public init(spec: PublishedPort, active: ActivePort?) {
            self.spec = spec
            self.active = active
        }
    }

    public func list(_ name: String) throws -> [Entry] {
        let paths = try existing(name)
        let record = try paths.loadRecord()
        let active = paths.isRunning ? paths.loadStatus()?.ports ?? [] : []
        return (record.ports ?? []).map { spec in Entry(spec: spec, active: active.first { $0.spec == spec }) }
    }

    /// Publishes `spec` and keeps it with the sandbox; returns where it listens, or nil when
    /// the sandbox is stopped (it opens at the next start).
    @discardableResult
    public func publish(_ name: String, _ spec: PublishedPort) throws -> ActivePort? {
        let paths = try existing(name)
        let lock = try FileLock(path: paths.lock)
        try lock.acquire(timeout: 30, what: "sandbox \(name)")
        defer { lock.release() }
        var record = try paths.loadRecord()
        let ports = record.ports ?? []
        if let same = ports.first(where: { $0 == spec || $0.sharesHostPort(with: spec) }) {
            throw AirlockError(.conflict, "sandbox \(name) already publishes \(same)")
        }
        var active: ActivePort?
        if paths.isRunning {
            let reply = try SupervisorControl.send(.publish(spec), to: paths, name: name)
            if let error = reply.error {
                throw AirlockError(.named(reply.code ?? ""), error)
            }
            active = reply.port
        } else {
            try Self.checkAvailable([spec])
        }
        record.ports = ports + [spec]
        try paths.save(record)
        return active
    }

    /// Closes the port published on `hostPort` (the one `port ls` shows; 0 for one a stopped
    /// sandbox gets at start) and forgets it; `port` picks among several with that host port.
    @discardableResult
    public func unpublish(_ name: String, hostPort: UInt16, port: UInt16? = nil) throws -> PublishedPort {
        let paths = try existing(name)
        let lock = try FileLock(path: paths.lock)
        try lock.acquire(timeout: 30, what: "sandbox \(name)")
        defer { lock.release() }
        var record = try paths.loadRecord()
        let running = paths.isRunning
        let active = running ? paths.loadStatus()?.ports ?? [] : []
        func wanted(_ spec: PublishedPort) -> Bool { port == nil || spec.port == port }
        let matches =
            active.filter { $0.hostPort == hostPort && wanted($0.spec) }.map(\.spec)
            + (record.ports ?? []).filter { $0.hostPort == hostPort && wanted($0) && !active.map(\.spec).contains($0) }
        if matches.count > 1 {
            throw AirlockError(
                .invalidArgument,
                "\(matches.count) ports are published on host port \(hostPort); name the sandbox's too: unpublish \(hostPort):PORT"
            )
        }
        guard let spec = matches.first else {
            throw AirlockError(
                .notFound, "sandbox \(name) publishes nothing on host port \(hostPort) (see `airlock port \(name) ls`)")
        }
        if running, let served = active.first(where: { $0.spec == spec }) {
            _ = try SupervisorControl.send(
                .unpublish(hostPort: served.hostPort, hostAddress: spec.hostAddress), to: paths, name: name)
        }
        record.ports = (record.ports ?? []).filter { $0 != spec }
        if record.ports?.isEmpty == true { record.ports = nil }
        try paths.save(record)
        return spec
    }

    /// Refuses specs that ask for the same host port twice, or for one the host already uses,
    /// before anything is made.
    public static func checkAvailable(_ specs: [PublishedPort]) throws {
        for (index, spec) in specs.enumerated() {
            if let twin = specs[..<index].first(where: { $0 == spec || $0.sharesHostPort(with: spec) }) {
                throw AirlockError(.invalidArgument, "--publish \(spec) and \(twin) ask for the same host port")
            }
            guard spec.hostPort != 0 else { continue }
            try probe(spec)
        }
    }

    /// Binds the host port for an instant, as the supervisor will.
    private static func probe(_ spec: PublishedPort) throws {
        guard let family = IPAddressText.family(of: spec.hostAddress) else {
            throw AirlockError(.invalidArgument, "'\(spec.hostAddress)' is not an IP address")
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = IPAddressText.withSocketAddress(spec.hostAddress, port: spec.hostPort) { _, address, length in
            bind(fd, address, length) == 0 && listen(fd, 1) == 0
        }
        guard bound == true else {
            throw PortForwarder.bindError(errno: errno, spec: spec)
        }
    }

    private func existing(_ name: String) throws -> SandboxPaths {
        let paths = store.sandbox(name)
        guard Files.exists(paths.record) else { throw AirlockError(.notFound, "no sandbox named '\(name)'") }
        return paths
    }
}
