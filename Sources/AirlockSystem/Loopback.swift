#if canImport(Glibc)
    import Glibc
#endif

/// Configures the loopback-only network namespace a sandbox lives in.
///
/// Run by the sandbox init, which is root of the user namespace that owns the network
/// namespace. After ``configure()``, every IPv4 address is local: a connection to any address
/// lands on a listener bound to the wildcard address, which learns the address the program
/// meant from `getsockname` (transparent capture without iptables or extra privileges).
public enum Loopback {
    /// Brings `lo` up and routes every IPv4 destination to it.
    public static func configure() throws {
        try bringUp()
        try addLocalDefaultRoute()
    }

    /// `ip link set lo up`.
    private static func bringUp() throws {
        var message = Bytes()
        // struct ifinfomsg: family, padding, type, index, flags, change mask.
        message.bytes += [UInt8(AF_UNSPEC), 0]
        message.u16(0)
        message.u32(1)  // lo is always interface 1 in a new namespace
        message.u32(Netlink.interfaceUp)
        message.u32(Netlink.interfaceUp)
        try Netlink.send(type: Netlink.newLink, flags: 0, payload: message.bytes, what: "bring up loopback")
    }

    /// `ip route add local 0.0.0.0/0 dev lo table local`.
    private static func addLocalDefaultRoute() throws {
        var message = Bytes()
        // struct rtmsg, then one attribute: the output interface.
        message.bytes += [
            UInt8(AF_INET), 0, 0, 0, Netlink.localTable, Netlink.bootProtocol, Netlink.hostScope,
            Netlink.localRouteType,
        ]
        message.u32(0)  // rtm_flags
        message.u16(8)
        message.u16(Netlink.outputInterface)
        message.u32(1)
        try Netlink.send(
            type: Netlink.newRoute, flags: Netlink.create | Netlink.exclusive, payload: message.bytes,
            what: "add the local default route")
    }

    /// A listening socket bound inside the current network namespace.
    public static func listener(
        address: String, port: UInt16, datagram: Bool = false, backlog: Int32 = 1024
    ) throws -> Int32 {
        let type = datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        // TCP only: on UDP the option would let a later socket share the port and take its
        // datagrams (root inside could answer the sandbox's DNS).
        if !datagram {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sin.sin_addr)
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw SystemCallError("bind \(address):\(port)", errno: code)
        }
        if !datagram {
            guard listen(fd, backlog) == 0 else {
                let code = errno
                close(fd)
                throw SystemCallError("listen \(address):\(port)", errno: code)
            }
        }
        return fd
    }
}

/// The constants of <linux/rtnetlink.h> and <linux/if.h> used here (not all are in Glibc's module).
private enum Netlink {
    static let family: Int32 = 16  // AF_NETLINK
    static let route: Int32 = 0  // NETLINK_ROUTE
    static let newLink: UInt16 = 16  // RTM_NEWLINK
    static let newRoute: UInt16 = 24  // RTM_NEWROUTE
    static let request: UInt16 = 0x1
    static let acknowledge: UInt16 = 0x4
    static let exclusive: UInt16 = 0x200
    static let create: UInt16 = 0x400
    static let localTable: UInt8 = 255  // RT_TABLE_LOCAL
    static let bootProtocol: UInt8 = 3  // RTPROT_BOOT
    static let hostScope: UInt8 = 254  // RT_SCOPE_HOST
    static let localRouteType: UInt8 = 2  // RTN_LOCAL
    static let outputInterface: UInt16 = 4  // RTA_OIF
    static let interfaceUp: UInt32 = 0x1  // IFF_UP

    /// Sends one request to the kernel and waits for its acknowledgement.
    static func send(type: UInt16, flags: UInt16, payload: [UInt8], what: String) throws {
        let fd = socket(family, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), route)
        guard fd >= 0 else { throw SystemCallError("netlink socket", errno: errno) }
        defer { close(fd) }
        var message = Bytes()
        message.u32(UInt32(16 + payload.count))
        message.u16(type)
        message.u16(request | acknowledge | flags)
        message.u32(1)  // sequence
        message.u32(0)  // to the kernel
        message.bytes += payload
        let sent = message.bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.bytes.count else { throw SystemCallError("netlink send", errno: errno) }
        var reply = [UInt8](repeating: 0, count: 512)
        let received = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard received >= 20 else { throw SystemCallError("netlink receive", errno: errno) }
        // NLMSG_ERROR carries a negative errno (0 is the acknowledgement).
        let code = reply[16..<20].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let error = Int32(bitPattern: code)
        guard error == 0 else { throw SystemCallError(what, errno: -error) }
    }
}

/// Little-endian message building for netlink.
private struct Bytes {
    var bytes: [UInt8] = []

    mutating func u16(_ value: UInt16) {
        bytes += [UInt8(value & 0xff), UInt8(value >> 8)]
    }

    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }
}
