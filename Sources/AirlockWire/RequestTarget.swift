import AirlockPolicy

/// A host and port a request names: the CONNECT target, the authority of an absolute URL or
/// a `Host` field.
public struct Authority: Sendable, Equatable, CustomStringConvertible {
    /// Lower-cased, without a trailing dot; an IPv6 address without its brackets. IP addresses
    /// keep the client's spelling (`127.1`); compare them through `IPAddress`.
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 address so the port stays readable.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `host[:port]` or `[v6]:port`; `defaultPort` fills a missing port, and nil makes a
    /// port required (CONNECT).
    ///
    /// Rejects what could make two readers see different hosts: userinfo (`user@host`, the
    /// classic `good.com@evil.com`), percent-encoding and any other character outside names
    /// and addresses, an unbracketed IPv6 address, an empty port (`host:`), port 0 and ports
    /// that are not 1 to 5 plain digits.
    ///
    /// ```swift
    /// Authority.parse("Example.COM:8443", defaultPort: 443)  // example.com:8443
    /// Authority.parse("[::1]", defaultPort: 80)             // [::1]:80
    /// ```
    public static func parse(_ text: String, defaultPort: UInt16?) -> Authority? {
        let bytes = Array(text.utf8)
        let hostText: String
        var portText: ArraySlice<UInt8>?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            let inside = bytes[1..<close]
            guard inside.allSatisfy(isIPv6Character) else { return nil }
            hostText = String(decoding: inside, as: UTF8.self)
            guard case .v6 = IPAddress(parsing: hostText) else { return nil }
            let rest = bytes[(close + 1)...]
            if let first = rest.first {
                guard first == HTTPSyntax.colon else { return nil }
                portText = rest.dropFirst()
            }
        } else {
            let colons = bytes.indices.filter { bytes[$0] == HTTPSyntax.colon }
            guard colons.count <= 1 else { return nil }
            let hostEnd = colons.first ?? bytes.endIndex
            guard bytes[..<hostEnd].allSatisfy(isNameCharacter) else { return nil }
            hostText = String(decoding: bytes[..<hostEnd], as: UTF8.self)
            if let colon = colons.first { portText = bytes[(colon + 1)...] }
        }
        let host = HostName.normalize(hostText)
        guard !host.isEmpty, IPAddress(parsing: host) != nil || HostName.isValid(host) else { return nil }
        guard let port = portText.map(parsePort) ?? defaultPort else { return nil }
        return Authority(host: host, port: port)
    }

    /// 1 to 5 ASCII digits, 1 to 65535. `UInt16("+80")` would take a sign, so digits are
    /// checked first.
    private static func parsePort(_ digits: ArraySlice<UInt8>) -> UInt16? {
        guard (1...5).contains(digits.count), digits.allSatisfy(HTTPSyntax.isDigit) else { return nil }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard (1...65_535).contains(value) else { return nil }
        return UInt16(value)
    }

    /// Letters, digits, `-`, `_` and `.`: every host name and every IPv4 spelling, and nothing
    /// a URL parser would decode or treat as a delimiter (`%`, `\`, `@`, a sign that
    /// `IPAddress` would let through as in `+127.0.0.1`).
    private static func isNameCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a, UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
        default: false
        }
    }

    /// Hex digits, `:` and the `.` of an embedded IPv4 tail; no zone (`%`), no IPvFuture.
    private static func isIPv6Character(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x46, 0x61...0x66, HTTPSyntax.colon, UInt8(ascii: "."): true
        default: false
        }
    }
}

/// The request-target of a request line, in the form RFC 9112 section 3.2 allows for its
/// method: what the proxy reads the destination from.
public enum RequestTarget: Sendable, Equatable {
    /// `host:port`, the target of CONNECT and only of CONNECT.
    case authority(Authority)
    /// `scheme://authority/path?query`, as sent to a forward proxy; `path` is the
    /// origin-form to forward (`/` when the URL had none).
    case absolute(scheme: String, authority: Authority, path: String)
    /// `/path?query`, as sent to the origin server itself.
    case origin(String)
    /// `*`, only for `OPTIONS`.
    case asterisk

    /// Classifies `target` for `method`; nil when the form does not fit the method, the scheme
    /// is not `http`, `https`, `ws` or `wss`, the authority is not one ``Authority`` accepts,
    /// or the target carries a fragment (clients never send one, so one is a probe).
    ///
    /// ```swift
    /// RequestTarget.parse(method: "CONNECT", target: "api.example.com:443")
    /// // .authority(api.example.com:443)
    /// RequestTarget.parse(method: "GET", target: "http://example.com?q")
    /// // .absolute(scheme: "http", authority: example.com:80, path: "/?q")
    /// ```
    public static func parse(method: String, target: String) -> RequestTarget? {
        // Visible ASCII, as the head parser guarantees; checked again because the searches
        // below work on characters, and a combining mark would hide a `/` or `#` from them.
        guard target.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        if method == "CONNECT" {
            return Authority.parse(target, defaultPort: nil).map { .authority($0) }
        }
        if target == "*" {
            return method == "OPTIONS" ? .asterisk : nil
        }
        guard !target.contains("#") else { return nil }
        if target.hasPrefix("/") {
            return .origin(target)
        }
        guard let separator = target.firstRange(of: "://") else { return nil }
        let scheme = target[..<separator.lowerBound].lowercased()
        let defaultPort: UInt16
        switch scheme {
        case "http", "ws": defaultPort = 80
        case "https", "wss": defaultPort = 443
        default: return nil
        }
        let rest = target[separator.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        guard let authority = Authority.parse(String(rest[..<authorityEnd]), defaultPort: defaultPort) else {
            return nil
        }
        let pathAndQuery = rest[authorityEnd...]
        let path = pathAndQuery.hasPrefix("/") ? String(pathAndQuery) : "/" + pathAndQuery
        return .absolute(scheme: scheme, authority: authority, path: path)
    }

    /// Whether a `Host` field names the same host and port as `authority`, so a request cannot
    /// pass the policy for one host and be routed by the server to another. A port missing from
    /// the field is `defaultPort`; IP addresses compare as addresses (`127.1` is `127.0.0.1`),
    /// names compare normalized.
    public static func hostMatches(_ hostHeader: String, _ authority: Authority, defaultPort: UInt16) -> Bool {
        guard let named = Authority.parse(hostHeader, defaultPort: defaultPort), named.port == authority.port else {
            return false
        }
        switch (IPAddress(parsing: named.host), IPAddress(parsing: authority.host)) {
        case (.some(let left), .some(let right)): return left == right
        case (.none, .none): return named.host.utf8.elementsEqual(HostName.normalize(authority.host).utf8)
        default: return false
        }
    }
}
