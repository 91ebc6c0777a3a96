import AirlockSystem

/// A port of the sandbox opened on the host on purpose (`--publish`, `airlock port`): a
/// connection accepted at `hostAddress:hostPort` is carried to `port` on the sandbox's own
/// loopback. Nothing flows the other way: the host side only accepts, the sandbox side is only
/// dialled.
public struct PublishedPort: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The host address the listener binds (default 127.0.0.1: this machine only).
    public var hostAddress: String
    /// The host port; 0 picks a free one each time the sandbox starts.
    public var hostPort: UInt16
    /// The port inside the sandbox.
    public var port: UInt16

    public static let defaultHostAddress = "127.0.0.1"

    public init(hostAddress: String = Self.defaultHostAddress, hostPort: UInt16, port: UInt16) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.port = port
    }

    /// Parses `[HOSTIP:]HOSTPORT:PORT` as `docker run -p` writes it; an IPv6 host address goes
    /// in brackets (`[::1]:8080:80`). A lone `PORT` publishes it on a host port picked at start.
    public init(spec: String) throws {
        func invalid(_ why: String) -> AirlockError {
            AirlockError(.invalidArgument, "invalid port '\(spec)': \(why) (expected [HOSTIP:]HOSTPORT:PORT)")
        }
        var rest = Substring(spec.hasSuffix("/tcp") ? String(spec.dropLast(4)) : spec)
        var address = Self.defaultHostAddress
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw invalid("an IPv6 address needs its closing bracket and a port after it")
            }
            address = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(close, offsetBy: 2)...]
        }
        var parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if !spec.hasPrefix("["), parts.count == 3 {
            address = parts.removeFirst()
        }
        guard parts.count <= 2, !parts.contains(where: \.isEmpty) else {
            throw invalid("give a host port and the sandbox's port")
        }
        guard IPAddressText.isAddress(address) else {
            throw invalid("'\(address)' is not an IP address of this host")
        }
        func number(_ text: String, what: String, zero: Bool) throws -> UInt16 {
            guard let value = UInt16(text), value > 0 || zero else {
                throw invalid("\(what) '\(text)' is not a port number (1-65535)")
            }
            return value
        }
        let port = try number(parts[parts.count - 1], what: "the sandbox port", zero: false)
        let hostPort = parts.count == 2 ? try number(parts[0], what: "the host port", zero: true) : 0
        self.init(hostAddress: address, hostPort: hostPort, port: port)
    }

    /// `127.0.0.1:8080 -> 80`, `[::1]:0 -> 80`.
    public var description: String {
        "\(IPAddressText.withPort(hostAddress, hostPort)) -> \(port)"
    }

    /// Whether `other` asks for the same host listener (so both cannot be published).
    public func sharesHostPort(with other: PublishedPort) -> Bool {
        hostPort != 0 && hostPort == other.hostPort
    }
}

/// A published port while the sandbox runs: the spec it came from and the host port it got.
public struct ActivePort: Codable, Sendable, Equatable {
    public var spec: PublishedPort
    public var hostPort: UInt16

    public init(spec: PublishedPort, hostPort: UInt16) {
        self.spec = spec
        self.hostPort = hostPort
    }

    /// Where a client on the host connects: `127.0.0.1:8080`.
    public var hostEndpoint: String { IPAddressText.withPort(spec.hostAddress, hostPort) }
}
