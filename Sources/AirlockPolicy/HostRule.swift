/// A host pattern of a policy: `example.com` (exactly that host), `*.example.com` (its
/// subdomains, not the domain itself), either with an optional `:port`.
public struct HostRule: Hashable, Sendable, CustomStringConvertible {
    public enum Pattern: Hashable, Sendable {
        case exact(String)
        case subdomains(of: String)
    }

    public let pattern: Pattern
    public let port: UInt16?

    public init(pattern: Pattern, port: UInt16?) {
        self.pattern = pattern
        self.port = port
    }

    /// Parses a rule; nil when it is not a host name pattern.
    public init?(_ text: String) {
        var hostPart = Substring(text)
        var port: UInt16?
        if let colon = hostPart.lastIndex(of: ":") {
            guard let value = UInt16(hostPart[hostPart.index(after: colon)...]), value > 0 else { return nil }
            port = value
            hostPart = hostPart[..<colon]
        }
        let host = HostName.normalize(String(hostPart))
        if host.hasPrefix("*.") {
            let domain = String(host.dropFirst(2))
            guard HostName.isValid(domain) else { return nil }
            self.init(pattern: .subdomains(of: domain), port: port)
        } else {
            guard HostName.isValid(host) else { return nil }
            self.init(pattern: .exact(host), port: port)
        }
    }

    /// Whether the rule covers `host` (already normalized) on `port`.
    public func matches(host: String, port: UInt16) -> Bool {
        if let own = self.port, own != port { return false }
        switch pattern {
        case .exact(let name): return host == name
        case .subdomains(let domain): return host.hasSuffix("." + domain)
        }
    }

    public var description: String {
        let host =
            switch pattern {
            case .exact(let name): name
            case .subdomains(let domain): "*." + domain
            }
        return port.map { "\(host):\($0)" } ?? host
    }
}

/// Host name checks shared by rules and requests.
public enum HostName {
    /// Lower-cases and drops one trailing dot: `Example.COM.` and `example.com` are one host.
    public static func normalize(_ host: String) -> String {
        var lower = host.lowercased()
        if lower.hasSuffix(".") { lower.removeLast() }
        return lower
    }

    /// LDH labels of 1 to 63 characters, 253 in all (underscores allowed, as real names use them).
    public static func isValid<S: StringProtocol>(_ host: S) -> Bool {
        guard !host.isEmpty, host.count <= 253 else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
