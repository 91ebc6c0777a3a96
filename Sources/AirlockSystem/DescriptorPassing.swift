#if canImport(Glibc)
    import Glibc
#endif

/// Sends open descriptors to another process over a Unix socket (SCM_RIGHTS).
///
/// A socket belongs to the network namespace it was created in, so the sandbox init creates
/// the listeners inside the sandbox's namespace and hands them to the supervisor, which
/// serves them from outside, where the sandbox cannot reach it.
public enum DescriptorPassing {
    /// A connected pair of Unix stream sockets, both close-on-exec.
    public static func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SystemCallError("socketpair", errno: errno)
        }
        return (fds[0], fds[1])
    }

    public static func send(_ descriptors: [Int32], over socket: Int32) throws {
        precondition(!descriptors.isEmpty && descriptors.count <= maxDescriptors)
        var marker = UInt8(descriptors.count)
        let controlLength = cmsgSpace(descriptors.count)
        var control = [UInt8](repeating: 0, count: controlLength)
        let sent = withUnsafeMutablePointer(to: &marker) { markerPointer in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(markerPointer), iov_len: 1)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                    guard let control = controlBytes.baseAddress else { return -1 }
                    let header = control.assumingMemoryBound(to: cmsghdr.self)
                    header.pointee.cmsg_len = cmsgLength(descriptors.count)
                    header.pointee.cmsg_level = SOL_SOCKET
                    header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                    let data = control + MemoryLayout<cmsghdr>.size
                    for (index, fd) in descriptors.enumerated() {
                        data.storeBytes(of: fd, toByteOffset: index * 4, as: Int32.self)
                    }
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlLength
                    return sendmsg(socket, &message, 0)
                }
            }
        }
        guard sent == 1 else { throw SystemCallError("sendmsg (passing descriptors)", errno: errno) }
    }

    /// Receives descriptors sent by ``send(_:over:)``; they arrive close-on-exec.
    public static func receive(from socket: Int32) throws -> [Int32] {
        var marker: UInt8 = 0
        let controlLength = cmsgSpace(maxDescriptors)
        var control = [UInt8](repeating: 0, count: controlLength)
        let received = withUnsafeMutablePointer(to: &marker) { markerPointer in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(markerPointer), iov_len: 1)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlLength
                    return recvmsg(socket, &message, Int32(MSG_CMSG_CLOEXEC))
                }
            }
        }
        guard received == 1 else {
            throw SystemCallError("recvmsg (receiving descriptors)", errno: received == 0 ? EPIPE : errno)
        }
        let header = control.withUnsafeBytes { $0.load(as: cmsghdr.self) }
        guard header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS) else {
            throw SystemCallError("recvmsg: no descriptors", errno: EPROTO)
        }
        let count = (Int(header.cmsg_len) - MemoryLayout<cmsghdr>.size) / 4
        let descriptors = control.withUnsafeBytes { bytes in
            (0..<count).map { bytes.load(fromByteOffset: MemoryLayout<cmsghdr>.size + $0 * 4, as: Int32.self) }
        }
        guard count == Int(marker) else {
            for fd in descriptors { close(fd) }
            throw SystemCallError("recvmsg: descriptors lost", errno: EPROTO)
        }
        return descriptors
    }

    /// The most one message carries: at least the git guard's filters, which the sandbox init
    /// sends in one go (a workspace with many repositories has one each).
    public static let maxDescriptors = 64

    private static func cmsgLength(_ count: Int) -> Int { MemoryLayout<cmsghdr>.size + count * 4 }

    private static func cmsgSpace(_ count: Int) -> Int {
        let align = MemoryLayout<Int>.size
        return (cmsgLength(count) + align - 1) / align * align
    }
}
