import AirlockSystem
import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Moves the bytes of tunnels the proxy does not look into (after the SNI check, a CONNECT or
/// captured TLS stream without a credential to inject) in the kernel: `splice(2)` from one
/// socket into a pipe and from the pipe into the other, never through the proxy's memory.
///
/// One thread serves every tunnel of a sandbox with `poll`. Each direction has its own pipe;
/// a side is read only while its pipe is empty (so a fast sender cannot outrun a slow
/// receiver), a finished direction half-closes the other socket once its pipe is drained, and a
/// tunnel ends when both directions have, on an error, or after `idle` seconds with nothing
/// either way. Its end reports the bytes each way.
final class SpliceTunnels: Sendable {
    /// What a tunnel moved, once it has ended.
    struct Totals: Sendable {
        var toUpstream: Int
        var fromUpstream: Int
    }

    /// Wakes the thread for tunnels handed over from the event loops.
    private let wake: Pipe2
    private let incoming = Mutex<[Tunnel]>([])

    init() throws {
        guard Self.spliceCall != nil else { throw SystemCallError("splice", errno: ENOSYS) }
        wake = try Pipe2()
        _ = fcntl(wake.read, F_SETFL, O_NONBLOCK)
        _ = fcntl(wake.write, F_SETFL, O_NONBLOCK)
        Thread.detachNewThread { [self] in serve() }
    }

    /// Takes over a tunnel between two connected sockets (descriptors this now owns):
    /// `first` bytes go to the upstream before anything else, `done` runs (on this object's
    /// thread) once it has ended and both are closed. False, with nothing taken, when the
    /// pipes cannot be made or `first` does not fit in one.
    func start(
        client: Int32, upstream: Int32, first: [UInt8], idle: Double, done: @escaping @Sendable (Totals) -> Void
    ) -> Bool {
        guard let tunnel = Tunnel(client: client, upstream: upstream, idle: idle, done: done),
            tunnel.preload(first)
        else { return false }
        incoming.withLock { $0.append(tunnel) }
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
        return true
    }

    // MARK: - The thread

    private func serve() -> Never {
        // Named in /proc (Foundation names only a thread that names itself).
        typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
        if let setName = dlsym(nil, "pthread_setname_np").map({ unsafeBitCast($0, to: SetName.self) }) {
            _ = setName(pthread_self(), "airlock-splice")
        }
        var tunnels: [Tunnel] = []
        var lastSweep = Monotonic.now()
        var drain = [UInt8](repeating: 0, count: 64)
        while true {
            var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            for tunnel in tunnels {
                // A negative descriptor is one poll leaves out.
                for (fd, events) in [
                    (tunnel.client, tunnel.interest.client), (tunnel.upstream, tunnel.interest.upstream),
                ] {
                    fds.append(pollfd(fd: tunnel.hungUp.contains(fd) ? -1 : fd, events: events, revents: 0))
                }
            }
            let count = poll(&fds, nfds_t(fds.count), 1000)
            if count > 0 {
                for (index, tunnel) in tunnels.enumerated() {
                    let (client, upstream) = (fds[1 + 2 * index].revents, fds[2 + 2 * index].revents)
                    guard client | upstream != 0 else { continue }
                    if client & Int16(POLLERR | POLLNVAL) != 0 || upstream & Int16(POLLERR | POLLNVAL) != 0 {
                        tunnel.close()
                        continue
                    }
                    // A socket shut down both ways reports a hang-up at every poll: once it
                    // moves nothing, it is left out until the tunnel ends, so that what the
                    // other direction still holds is delivered, without waking this loop forever.
                    if !pump(tunnel) {
                        if client & Int16(POLLHUP) != 0 { tunnel.hungUp.insert(tunnel.client) }
                        if upstream & Int16(POLLHUP) != 0 { tunnel.hungUp.insert(tunnel.upstream) }
                    }
                }
                if fds[0].revents != 0 {
                    while read(wake.read, &drain, drain.count) > 0 {}
                    let arrived = incoming.withLock { list in
                        defer { list = [] }
                        return list
                    }
                    for tunnel in arrived { pump(tunnel) }
                    tunnels += arrived
                }
            }
            let now = Monotonic.now()
            if now - lastSweep >= 1 {
                lastSweep = now
                for tunnel in tunnels where !tunnel.ended && now - tunnel.lastActivity > tunnel.idle { tunnel.close() }
            }
            tunnels.removeAll { $0.ended }
        }
    }

    /// Moves what can be moved; whether anything was (or the tunnel ended).
    @discardableResult
    private func pump(_ tunnel: Tunnel) -> Bool {
        guard !tunnel.ended else { return true }
        let outward = tunnel.outward.pump()
        let inward = tunnel.inward.pump()
        if outward == .failed || inward == .failed || (tunnel.outward.finished && tunnel.inward.finished) {
            tunnel.close()
            return true
        }
        tunnel.updateInterest()
        guard outward == .moved || inward == .moved else { return false }
        tunnel.lastActivity = Monotonic.now()
        return true
    }

    /// `splice(2)`, which Swift's Glibc module leaves out (it needs `_GNU_SOURCE`).
    fileprivate typealias SpliceCall =
        @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int
    fileprivate static let spliceCall: SpliceCall? = dlsym(nil, "splice").map { unsafeBitCast($0, to: SpliceCall.self) }

    /// One tunnel: two sockets, and a direction (with its pipe) each way.
    private final class Tunnel: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        let outward: Direction
        let inward: Direction
        let idle: Double
        var lastActivity = Monotonic.now()
        private(set) var ended = false
        /// Sockets that hung up and moved nothing more: left out of the poll.
        var hungUp: Set<Int32> = []
        /// What `poll` waits for on each socket.
        private(set) var interest: (client: Int16, upstream: Int16) = (0, 0)
        private let done: @Sendable (Totals) -> Void

        init?(client: Int32, upstream: Int32, idle: Double, done: @escaping @Sendable (Totals) -> Void) {
            guard let outward = Direction(from: client, to: upstream) else { return nil }
            guard let inward = Direction(from: upstream, to: client) else {
                outward.closePipe()
                return nil
            }
            self.client = client
            self.upstream = upstream
            self.outward = outward
            self.inward = inward
            self.idle = idle
            self.done = done
            for fd in [client, upstream] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        }

        /// Puts `bytes` in the outward pipe, ahead of what the client sends next.
        func preload(_ bytes: [UInt8]) -> Bool {
            guard outward.preload(bytes) else {
                outward.closePipe()
                inward.closePipe()
                return false
            }
            return true
        }

        /// Reads a side only while its direction's pipe is empty; waits to write while it is not.
        func updateInterest() {
            let input = Int16(POLLIN)
            let output = Int16(POLLOUT)
            interest = (
                client: (outward.wantsInput ? input : 0) | (inward.wantsOutput ? output : 0),
                upstream: (inward.wantsInput ? input : 0) | (outward.wantsOutput ? output : 0)
            )
        }

        func close() {
            guard !ended else { return }
            ended = true
            outward.closePipe()
            inward.closePipe()
            Glibc.close(client)
            Glibc.close(upstream)
            done(Totals(toUpstream: outward.moved, fromUpstream: inward.moved))
        }
    }

    /// Bytes one way: source socket, pipe, destination socket.
    private final class Direction {
        enum Progress { case moved, waiting, failed }

        let source: Int32
        let destination: Int32
        /// Bytes in the pipe, not yet written on.
        private var inPipe = 0
        private var sourceEnded = false
        private(set) var finished = false
        /// Bytes taken from the source (the preloaded ones included).
        private(set) var moved = 0
        private var blockedOnOutput = false
        private let pipe: Pipe2
        /// What a pipe of the default size holds.
        private let capacity = 1 << 16

        init?(from source: Int32, to destination: Int32) {
            // Close-on-exec from the start (a child the supervisor spawns meanwhile gets none),
            // and of the default size: a larger one counts against the host user's pipe
            // allowance (fs.pipe-user-pages-soft), which every pipe of theirs shares.
            guard let pipe = try? Pipe2() else { return nil }
            self.pipe = pipe
            self.source = source
            self.destination = destination
        }

        var wantsInput: Bool { !sourceEnded && inPipe == 0 }
        var wantsOutput: Bool { inPipe > 0 && blockedOnOutput }

        func preload(_ bytes: [UInt8]) -> Bool {
            guard !bytes.isEmpty else { return true }
            _ = fcntl(pipe.write, F_SETFL, O_NONBLOCK)
            let written = bytes.withUnsafeBytes { write(pipe.write, $0.baseAddress, $0.count) }
            guard written == bytes.count else { return false }
            inPipe = written
            moved = written
            return true
        }

        /// Moves what it can without blocking.
        func pump() -> Progress {
            var progress = Progress.waiting
            while !finished {
                if inPipe > 0 {
                    let written = SpliceTunnels.spliceCall?(pipe.read, nil, destination, nil, inPipe, Self.flags) ?? -1
                    if written > 0 {
                        inPipe -= written
                        blockedOnOutput = false
                        progress = .moved
                        continue
                    }
                    if written < 0 && errno == EINTR { continue }
                    if written < 0 && errno == EAGAIN {
                        blockedOnOutput = true
                        return progress
                    }
                    return .failed
                }
                if sourceEnded {
                    // All of it written: the other side hears the end, as the sender meant it.
                    shutdown(destination, Int32(SHUT_WR))
                    finished = true
                    return .moved
                }
                let read = SpliceTunnels.spliceCall?(source, nil, pipe.write, nil, capacity, Self.flags) ?? -1
                if read > 0 {
                    inPipe += read
                    moved += read
                    progress = .moved
                } else if read == 0 {
                    sourceEnded = true
                    progress = .moved
                } else if errno == EINTR {
                    continue
                } else if errno == EAGAIN {
                    return progress
                } else {
                    return .failed
                }
            }
            return progress
        }

        func closePipe() {
            pipe.closeRead()
            pipe.closeWrite()
        }

        /// SPLICE_F_MOVE | SPLICE_F_NONBLOCK.
        private static let flags: UInt32 = 1 | 2
    }
}

/// The socket under a SwiftNIO channel, duplicated, so that a tunnel can leave the event loop.
///
/// NIO does not hand out its descriptors; its socket classes keep them in stored properties
/// that reflection reaches. The copy is checked against the channel's own addresses, so a
/// change in NIO's layout gives nil (the tunnel then stays in NIO), never a wrong descriptor.
enum ChannelDescriptor {
    static func duplicate(_ channel: Channel) -> Int32? {
        guard let socket = child("socket", of: channel), let fd = child("descriptor", of: socket) as? Int32, fd >= 0
        else { return nil }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { return nil }
        guard port(copy, peer: false) == channel.localAddress?.port,
            port(copy, peer: true) == channel.remoteAddress?.port
        else {
            close(copy)
            return nil
        }
        return copy
    }

    private static func child(_ label: String, of value: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let found = current.children.first(where: { $0.label == label }) { return found.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    /// The local or peer port of a TCP socket (IPv4 or IPv6; both keep it at the same offset).
    private static func port(_ fd: Int32, peer: Bool) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard result == 0, storage.ss_family == sa_family_t(AF_INET) || storage.ss_family == sa_family_t(AF_INET6)
        else { return nil }
        return withUnsafeBytes(of: &storage) { Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self))) }
    }
}
