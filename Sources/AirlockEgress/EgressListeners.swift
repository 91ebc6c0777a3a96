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
    /// The same stub at an address a Docker engine's containers reach (`--docker`): their
    /// networks route to the sandbox's, where every address is the sandbox's own, but a
    /// reply must come from the address they asked, which loopback's cannot.
    case engineDNSUDP
    case engineDNSTCP

    /// What every sandbox under the policy gets.
    public static let all: [EgressListener] = [.proxy, .http, .https, .dnsUDP, .dnsTCP]
    public static let proxyPort: UInt16 = 3128
    /// Where a Docker engine's containers find the DNS stub.
    public static let engineDNSAddress = "192.0.2.53"

    /// The listeners a sandbox gets when `ports` of its own are published: a server inside may
    /// use 80 and 443, so capture leaves a published one to it (a program that ignores the
    /// proxy then reaches that server, never the network). With a Docker engine, the stub
    /// listens at its address too.
    public static func serving(publishing ports: [UInt16], engine: Bool = false) -> [EgressListener] {
        all.filter { listener in !(listener.isCapture && ports.contains(listener.port)) }
            + (engine ? [.engineDNSUDP, .engineDNSTCP] : [])
    }

    /// Transparent capture, which binds its port on every address of the sandbox.
    public var isCapture: Bool { self == .http || self == .https }

    var address: String {
        switch self {
        case .proxy, .dnsUDP, .dnsTCP: "127.0.0.1"
        case .http, .https: "0.0.0.0"
        case .engineDNSUDP, .engineDNSTCP: Self.engineDNSAddress
        }
    }

    public var port: UInt16 {
        switch self {
        case .proxy: Self.proxyPort
        case .http: 80
        case .https: 443
        case .dnsUDP, .dnsTCP, .engineDNSUDP, .engineDNSTCP: 53
        }
    }

    public func open() throws -> Int32 {
        try Loopback.listener(address: address, port: port, datagram: self == .dnsUDP || self == .engineDNSUDP)
    }
}
