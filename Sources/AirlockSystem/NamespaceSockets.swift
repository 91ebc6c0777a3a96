import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Fresh TCP sockets made in a sandbox's network namespace, for a process outside it.
///
/// A socket belongs to the namespace it was created in, whatever process later connects it.
/// The sandbox init (inside the namespace) serves ``serve(on:)`` on its end of a Unix socket
/// pair; the supervisor (outside) asks for a few sockets at a time and connects each itself to
/// a port on the sandbox's loopback. The init only makes sockets: it parses nothing but a
/// one-byte request, and nothing in the sandbox holds either end of the pair.
public final class NamespaceSockets: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()

    /// The supervisor's end of the pair; this object owns it.
    public init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        Glibc.close(fd)
        for socket in spareIPv4 + spareIPv6 { Glibc.close(socket) }
    }

    /// A new, unconnected, non-blocking TCP socket of `family` (AF_INET or AF_INET6) in the
    /// sandbox's namespace. They come from the init a batch at a time, so a burst of
    /// connections does not wait on a round trip each.
    public func make(family: Int32) throws -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        let six = family == AF_INET6
        if let ready = six ? spareIPv6.popLast() : spareIPv4.popLast() { return ready }
        var request = UInt8(Self.batch << 4) | (six ? 6 : 4)
        guard Glibc.write(fd, &request, 1) == 1 else {
            throw SystemCallError("asking the sandbox for a socket", errno: errno)
        }
        var sockets: [Int32]
        do {
            sockets = try DescriptorPassing.receive(from: fd)
        } catch let error as SystemCallError where error.errno == EPROTO {
            // The init answers a failed `socket()` with a bare byte.
            throw SystemCallError("the sandbox could not make a socket", errno: EMFILE)
        }
        guard let socket = sockets.popLast() else { throw SystemCallError("the sandbox made no socket", errno: EPROTO) }
        if six { spareIPv6 += sockets } else { spareIPv4 += sockets }
        return socket
    }

    /// Sockets asked for at once. Unconnected sockets in the sandbox's namespace lead nowhere;
    /// a few kept ready cost a descriptor each.
    static let batch = 8
    private var spareIPv4: [Int32] = []
    private var spareIPv6: [Int32] = []

    /// Serves requests on `fd` from a thread of its own until the other end closes. Runs in
    /// the sandbox init, inside the namespace.
    public static func serve(on fd: Int32) {
        let thread = Thread {
            var request: UInt8 = 0
            while Glibc.read(fd, &request, 1) == 1 {
                // Low nibble: 4 or 6, the family; high nibble: how many (1 to 15).
                let family = request & 0x0F == 6 ? AF_INET6 : AF_INET
                let count = max(1, min(Int(request >> 4), DescriptorPassing.maxDescriptors))
                var sockets: [Int32] = []
                for _ in 0..<count {
                    let socket = Glibc.socket(
                        family,
                        Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                    guard socket >= 0 else { break }
                    sockets.append(socket)
                }
                let sent = !sockets.isEmpty && (try? DescriptorPassing.send(sockets, over: fd)) != nil
                for socket in sockets { Glibc.close(socket) }
                if sent { continue }
                var refusal: UInt8 = 0
                guard Glibc.write(fd, &refusal, 1) == 1 else { break }
            }
            Glibc.close(fd)
        }
        thread.start()
    }
}
