/// Address ranges egress never reaches unless the user names them with `--allow-cidr`:
/// private, loopback, link-local (cloud metadata), CGNAT, unique-local and the rest of the
/// special-purpose registry that never leads to a public service.
public enum BlockedRanges {
    /// Each range with the reason a blocked request reports.
    public static let all: [(range: AddressRange, reason: String)] = [
        ("0.0.0.0/8", "'this network' address"),
        ("10.0.0.0/8", "private address"),
        ("100.64.0.0/10", "carrier-grade NAT address"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address (cloud metadata)"),
        ("172.16.0.0/12", "private address"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation address"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("224.0.0.0/4", "multicast address"),
        ("240.0.0.0/4", "reserved address"),
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("fe80::/10", "link-local address"),
        ("fc00::/7", "unique-local address (includes fd00:ec2::254 metadata)"),
        ("ff00::/8", "multicast address"),
        ("2001:db8::/32", "documentation address"),
        ("100::/64", "discard-only address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("fec0::/10", "site-local address"),
        ("2001::/32", "Teredo address"),
        ("::ffff:0:0:0/96", "IPv4-translated address"),
    ].compactMap { text, reason in AddressRange(text).map { ($0, reason) } }

    /// Why `address` is blocked, or nil when it is an ordinary public address.
    public static func reason(for address: IPAddress) -> String? {
        all.first { $0.range.contains(address) }?.reason
    }
}
