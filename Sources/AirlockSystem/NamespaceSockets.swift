import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Fresh TCP sockets made in a sandbox's network namespace, for a process outside it.
///
/// A socket belongs to the namespace it was created in, whatever process later connects it.
/// The sandbox init (inside the namespace) serves ``serve(on:)`` on its end of a Unix socket
/// pair; the supervisor (outside) asks for one socket at a time and connects it itself to a
/// port on the sandbox's loopback. The init only makes sockets: it parses nothing but a
/// one-byte request, and nothing in the sandbox holds either end of the pair.
public final class NamespaceSockets: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()

    /// The supervisor's end of the pair; this object owns it.
    public init(fd: Int32) {
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// A new, unconnected, non-blocking TCP socket of `family` (AF_INET or AF_INET6) in the
    /// sandbox's namespace.
    public func make(family: Int32) throws -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        var request = UInt8(family == AF_INET6 ? 6 : 4)
        guard Glibc.write(fd, &request, 1) == 1 else {
            throw SystemCallError("asking the sandbox for a socket", errno: errno)
        }
        do {
            guard let socket = try DescriptorPassing.receive(from: fd).first else {
                throw SystemCallError("the sandbox made no socket", errno: EPROTO)
            }
            return socket
        } catch let error as SystemCallError where error.errno == EPROTO {
            // The init answers a failed `socket()` with a bare byte.
            throw SystemCallError("the sandbox could not make a socket", errno: EMFILE)
        }
    }

    /// Serves requests on `fd` from a thread of its own until the other end closes. Runs in
    /// the sandbox init, inside the namespace.
    public static func serve(on fd: Int32) {
        let thread = Thread {
            var request: UInt8 = 0
            while Glibc.read(fd, &request, 1) == 1 {
                let family = request == 6 ? AF_INET6 : AF_INET
                let socket = Glibc.socket(
                    family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                    0)
                if socket >= 0, (try? DescriptorPassing.send([socket], over: fd)) != nil {
                    Glibc.close(socket)
                    continue
                }
                if socket >= 0 { Glibc.close(socket) }
                var refusal: UInt8 = 0
                guard Glibc.write(fd, &refusal, 1) == 1 else { break }
            }
            Glibc.close(fd)
        }
        thread.start()
    }
}
