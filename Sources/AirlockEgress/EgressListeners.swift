import AirlockSystem

/// The sockets a sandbox's way out consists of, created inside its network namespace by the
/// sandbox init and served by the supervisor. The order of ``all`` is the order in which they
/// are passed.
public enum EgressListener: Int, CaseIterable, Sendable {
    /// The explicit HTTP/HTTPS proxy that `HTTP_PROXY` and friends name.
    case proxy
    /// Transparent capture of plain HTTP to any address.
    case http
    /// Transparent capture of TLS to any address.
    case https
    /// The DNS stub `/etc/resolv.conf` names.
    case dnsUDP
    case dnsTCP

    public static let all = allCases
    public static let proxyPort: UInt16 = 3128

    /// The listeners a sandbox gets when `ports` of its own are published: a server inside may
    /// use 80 and 443, so capture leaves a published one to it (a program that ignores the
    /// proxy then reaches that server, never the network).
    public static func serving(publishing ports: [UInt16]) -> [EgressListener] {
        all.filter { listener in !(listener.isCapture && ports.contains(listener.port)) }
    }

    /// Transparent capture, which binds its port on every address of the sandbox.
    public var isCapture: Bool { self == .http || self == .https }

    var address: String {
        switch self {
        case .proxy, .dnsUDP, .dnsTCP: "127.0.0.1"
        case .http, .https: "0.0.0.0"
        }
    }

    public var port: UInt16 {
        switch self {
        case .proxy: Self.proxyPort
        case .http: 80
        case .https: 443
        case .dnsUDP, .dnsTCP: 53
        }
    }

    public func open() throws -> Int32 {
        try Loopback.listener(address: address, port: port, datagram: self == .dnsUDP)
    }
}
