import AirlockState
import AirlockSystem
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Serves a sandbox's published ports from its supervisor, on the host.
///
/// Each published port is a listener in the host's network namespace. A connection it accepts
/// is carried, byte for byte, to a socket the sandbox init made in the sandbox's namespace
/// (``NamespaceSockets``) and the supervisor connected to the port on the sandbox's loopback:
/// 127.0.0.1 first, then ::1, so a server inside is reached whether it listens on 0.0.0.0,
/// 127.0.0.1 or `::`. The destination is fixed by the published port: nothing in the sandbox
/// can make the supervisor dial anything else, and the host side never connects anywhere.
public final class PortForwarder: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let threadPool = NIOThreadPool(numberOfThreads: 2)
    private let sockets: NamespaceSockets
    private let lock = NSLock()
    private var listeners: [(port: ActivePort, channel: Channel)] = []
    /// How long a dial into the sandbox may take (a server whose queue is full).
    static let dialTimeout: Int32 = 5000

    public init(sockets: NamespaceSockets) {
        self.sockets = sockets
        threadPool.start()
    }

    /// The ports being served now.
    public var active: [ActivePort] {
        lock.withLock { listeners.map(\.port) }
    }

    /// Listens for `spec` on the host; throws one line when the host port is taken or the
    /// address is not this host's.
    @discardableResult
    public func publish(_ spec: PublishedPort) throws -> ActivePort {
        try lock.withLock {
            if let same = listeners.first(where: { $0.port.spec == spec || $0.port.spec.sharesHostPort(with: spec) }) {
                throw AirlockError(
                    .conflict, "\(same.port.hostEndpoint) is already published (to port \(same.port.spec.port))")
            }
            let channel: Channel
            do {
                channel = try bootstrap(port: spec.port).bind(host: spec.hostAddress, port: Int(spec.hostPort)).wait()
            } catch {
                throw Self.bindError(error, spec: spec)
            }
            let port = ActivePort(spec: spec, hostPort: UInt16(channel.localAddress?.port ?? Int(spec.hostPort)))
            listeners.append((port, channel))
            return port
        }
    }

    /// Closes the listener on `hostPort` (of `hostAddress`, when given) at once; connections
    /// it already carries go on until either side ends them. Nil if none matches.
    public func unpublish(hostPort: UInt16, hostAddress: String? = nil) -> ActivePort? {
        let removed: (port: ActivePort, channel: Channel)? = lock.withLock {
            guard
                let index = listeners.firstIndex(where: {
                    $0.port.hostPort == hostPort && (hostAddress == nil || $0.port.spec.hostAddress == hostAddress)
                })
            else { return nil }
            return listeners.remove(at: index)
        }
        guard let removed else { return nil }
        try? removed.channel.close().wait()
        return removed.port
    }

    public func stop() {
        let channels = lock.withLock { listeners.map(\.channel) }
        for channel in channels { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
        try? threadPool.syncShutdownGracefully()
    }

    private func bootstrap(port: UInt16) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: EgressEngine.receiveBuffers)
            .childChannelOption(.writeBufferWaterMark, value: EgressEngine.writeBuffers)
            .childChannelInitializer { [sockets, threadPool] accepted in
                // Joined before the accepted channel is registered: nothing it reads is lost.
                let (outside, inside) = RelayHandler.pair()
                do {
                    try accepted.pipeline.syncOperations.addHandler(outside)
                } catch {
                    return accepted.eventLoop.makeFailedFuture(error)
                }
                let inner = NIOLoopBound(inside, eventLoop: accepted.eventLoop)
                let dialled = threadPool.runIfActive(eventLoop: accepted.eventLoop) {
                    try Self.dial(port: port, sockets: sockets)
                }
                return dialled.flatMap { fd in
                    ClientBootstrap(group: accepted.eventLoop)
                        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .channelOption(.recvAllocator, value: EgressEngine.receiveBuffers)
                        .channelOption(.writeBufferWaterMark, value: EgressEngine.writeBuffers)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(inner.value)
                            }
                        }
                        .withConnectedSocket(fd)
                        .map { _ in () }
                }
            }
    }

    /// A socket of the sandbox connected to `port` on its loopback.
    static func dial(port: UInt16, sockets: NamespaceSockets) throws -> Int32 {
        var lastError: Int32 = ECONNREFUSED
        for (family, address) in [(AF_INET, "127.0.0.1"), (AF_INET6, "::1")] {
            let fd = try sockets.make(family: family)
            let result = connect(fd, address: address, port: port)
            if result == 0 { return fd }
            close(fd)
            lastError = result
            // Refused on 127.0.0.1: a server on ::1 alone may still be there.
            guard result == ECONNREFUSED || result == EADDRNOTAVAIL || result == ENETUNREACH else { break }
        }
        throw SystemCallError("connect to port \(port) inside the sandbox", errno: lastError)
    }

    /// Connects a non-blocking socket, waiting at most ``dialTimeout``; 0 or the errno.
    private static func connect(_ fd: Int32, address: String, port: UInt16) -> Int32 {
        let started = IPAddressText.withSocketAddress(address, port: port) { _, address, length in
            Glibc.connect(fd, address, length)
        }
        if started == 0 { return 0 }
        guard errno == EINPROGRESS else { return errno }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, dialTimeout) == 1 else { return ETIMEDOUT }
        var code: Int32 = 0
        var codeLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &codeLength) == 0 else { return errno }
        return code
    }

    /// One line for a host listener that cannot be opened.
    static func bindError(_ error: Error, spec: PublishedPort) -> AirlockError {
        guard let error = error as? IOError else {
            return AirlockError(
                .failed, "cannot listen on \(IPAddressText.withPort(spec.hostAddress, spec.hostPort)): \(error)")
        }
        return bindError(errno: error.errnoCode, spec: spec)
    }

    /// One line for a host listener that cannot be opened, from bind's errno.
    public static func bindError(errno code: Int32, spec: PublishedPort) -> AirlockError {
        let endpoint = IPAddressText.withPort(spec.hostAddress, spec.hostPort)
        switch code {
        case EADDRINUSE:
            return AirlockError(
                .conflict, "host port \(endpoint) is already in use; publish another (or 0 to pick one)")
        case EADDRNOTAVAIL:
            return AirlockError(
                .invalidArgument, "\(spec.hostAddress) is not an address of this host; use 127.0.0.1 or one of its own")
        case EACCES:
            return AirlockError(
                .failed,
                "host port \(endpoint) is below the first port an ordinary user may listen on (/proc/sys/net/ipv4/ip_unprivileged_port_start); publish one above it"
            )
        default:
            return AirlockError(.failed, "cannot listen on \(endpoint): \(String(cString: strerror(code)))")
        }
    }
}
