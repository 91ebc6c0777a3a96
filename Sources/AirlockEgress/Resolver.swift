import AirlockPolicy
import AirlockSystem
import AirlockWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Real name resolution, on the host, after the policy allowed the name.
///
/// Static entries (`--add-host`) come first. Otherwise the host's resolver (`getaddrinfo`,
/// so /etc/hosts and nsswitch apply), or, when `AIRLOCK_DNS_SERVER` names one, that server
/// queried directly (tests count what reaches it).
public struct Resolver: Sendable {
    public var server: (address: String, port: UInt16)?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let value = environment["AIRLOCK_DNS_SERVER"], let host = value.split(separator: ":").first {
            let port = value.split(separator: ":").dropFirst().first.flatMap { UInt16($0) }
            server = (String(host), port ?? 53)
        }
    }

    /// Blocking: call it on a thread pool.
    public func resolve(_ host: String, staticHosts: [String: [IPAddress]]) throws -> [IPAddress] {
        if let known = staticHosts[host] { return known }
        if let server { return try query(host, server: server) }
        return try Self.getaddrinfo(host)
    }

    static func getaddrinfo(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            throw AirlockError(.notFound, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var node = list
        while let entry = node?.pointee {
            if let pointer = entry.ai_addr, let address = IPAddress(socketAddress: pointer),
                !addresses.contains(address)
            {
                addresses.append(address)
            }
            node = entry.ai_next
        }
        return addresses
    }

    private func query(_ host: String, server: (address: String, port: UInt16)) throws -> [IPAddress] {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = server.port.bigEndian
        inet_pton(AF_INET, server.address, &target.sin_addr)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw SystemCallError("connect to DNS server", errno: errno) }
        let id = UInt16.random(in: 0...UInt16.max)
        let request = try DNSMessage.query(id: id, name: host, type: DNSType.a)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else {
            throw SystemCallError("send to DNS server", errno: errno)
        }
        var reply = [UInt8](repeating: 0, count: 4096)
        let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw AirlockError(.notFound, "cannot resolve \(host): no answer from the DNS server") }
        let answer = try DNSMessage.addresses(inResponse: reply[0..<count], id: id)
        guard answer.rcode == 0, !answer.addresses.isEmpty else {
            throw AirlockError(.notFound, "cannot resolve \(host): DNS answered with code \(answer.rcode)")
        }
        return answer.addresses
    }
}

extension IPAddress {
    /// Reads an IPv4 or IPv6 socket address.
    init?(socketAddress pointer: UnsafePointer<sockaddr>) {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            let value = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            self = .v4(UInt32(bigEndian: value))
        case AF_INET6:
            let bytes = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
            }
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(high: high, low: low)
        default:
            return nil
        }
    }
}
