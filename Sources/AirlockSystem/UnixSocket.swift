import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets at a path, for a command to talk to a process of the same user.
///
/// A socket's path is limited to 107 bytes, and a state directory can be deeper than that; the
/// path is reached through a descriptor of its directory (`/proc/self/fd/N/NAME`), which is
/// always short.
public enum UnixSocket {
    /// A listening socket at `path` (a stale one there is replaced), mode 0600.
    public static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        Files.remove(path)
        let bound = try withAddress(of: path) { address, length in bind(fd, address, length) }
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw SystemCallError("listen on \(path)", errno: code)
        }
        return fd
    }

    /// A socket connected to the listener at `path`.
    public static func connect(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        let connected = try withAddress(of: path) { address, length in Glibc.connect(fd, address, length) }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw SystemCallError("connect to \(path)", errno: code)
        }
        return fd
    }

    /// The user id of the process at the other end.
    public static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred (pid, uid, gid) and SO_PEERCRED, which Glibc does not export to Swift.
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        let peerCredentials: Int32 = 17
        guard getsockopt(fd, SOL_SOCKET, peerCredentials, &credentials, &length) == 0 else { return nil }
        return credentials.uid
    }

    /// One line (without its newline) of at most `limit` bytes; nil at the end or past the limit.
    public static func readLine(_ fd: Int32, limit: Int = 1 << 16) -> String? {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while line.count < limit {
            // Looked at first, then taken up to the newline and no further: what follows (a
            // message that carries descriptors, the next line) stays for its reader. Two calls
            // for a line, where reading byte by byte took one per byte.
            let peeked = recv(fd, &chunk, min(chunk.count, limit - line.count), Int32(MSG_PEEK))
            if peeked < 0 && errno == EINTR { continue }
            if peeked < 0 && errno == ENOTSOCK { return readLineByteByByte(fd, limit: limit, line: line) }
            guard peeked > 0 else { return nil }
            let newline = chunk[0..<peeked].firstIndex(of: UInt8(ascii: "\n"))
            let take = newline.map { $0 + 1 } ?? peeked
            var taken = 0
            while taken < take {
                let count = chunk.withUnsafeMutableBytes { buffer -> Int in
                    guard let base = buffer.baseAddress else { return -1 }
                    return recv(fd, base + taken, take - taken, 0)
                }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return nil }
                taken += count
            }
            line += chunk[0..<(newline ?? take)]
            if newline != nil { return String(decoding: line, as: UTF8.self) }
        }
        return nil
    }

    /// The same from a pipe, which cannot be looked at without taking.
    private static func readLineByteByByte(_ fd: Int32, limit: Int, line: [UInt8]) -> String? {
        var line = line
        var byte: UInt8 = 0
        while line.count < limit {
            let count = read(fd, &byte, 1)
            if count == 1 {
                if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
                line.append(byte)
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return nil
            }
        }
        return nil
    }

    /// Writes `line` and a newline, all of it.
    @discardableResult
    public static func writeLine(_ fd: Int32, _ line: String) -> Bool {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private static func withAddress(of path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) throws
        -> Int32
    {
        let directory = (path as NSString).deletingLastPathComponent
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw SystemCallError("open \(directory)", errno: errno) }
        defer { close(directoryFD) }
        let short = "/proc/self/fd/\(directoryFD)/" + (path as NSString).lastPathComponent
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard short.utf8.count < capacity else { throw SystemCallError("socket path \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in short.utf8.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
