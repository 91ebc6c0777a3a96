#if canImport(Glibc)
    import Glibc
#endif

/// Numeric IP addresses as text, without resolving anything.
public enum IPAddressText {
    public static func isAddress(_ text: String) -> Bool { family(of: text) != nil }

    /// AF_INET or AF_INET6 for a numeric address, nil for anything else.
    public static func family(of text: String) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 { return AF_INET }
        if inet_pton(AF_INET6, text, &buffer) == 1 { return AF_INET6 }
        return nil
    }

    /// `1.2.3.4:80` or `[::1]:80`.
    public static func withPort(_ address: String, _ port: UInt16) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// Calls `body` with the socket address of numeric `address` and `port` (and its family);
    /// nil when `address` is not numeric.
    public static func withSocketAddress<T>(
        _ address: String, port: UInt16, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> T
    ) -> T? {
        guard let family = family(of: address) else { return nil }
        if family == AF_INET6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            inet_pton(AF_INET6, address, &sin6.sin6_addr)
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body(family, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sin.sin_addr)
        return withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body(family, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
