/// A CIDR range such as `10.0.0.0/8` or `fc00::/7`.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    public let base: IPAddress
    public let prefix: Int

    /// Parses `ADDRESS/PREFIX` (a bare address is a single-address range).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let base = IPAddress(parsing: String(first)) else { return nil }
        let limit = base.isV4 ? 32 : 128
        let prefix = parts.count == 2 ? Int(parts[1]) : limit
        guard let prefix, (0...limit).contains(prefix) else { return nil }
        self.init(base: base, prefix: prefix)
    }

    public init(base: IPAddress, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    /// Whether `address` lies in the range. IPv4 ranges also match IPv6 forms that carry an
    /// IPv4 address (mapped, compatible, NAT64, 6to4).
    public func contains(_ address: IPAddress) -> Bool {
        switch (base, address) {
        case (.v4(let start), _):
            guard let value = address.embeddedV4 else { return false }
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix)
            return value & mask == start & mask
        case (.v6(let startHigh, let startLow), .v6(let high, let low)):
            let highMask: UInt64 = prefix >= 64 ? ~0 : (prefix == 0 ? 0 : ~UInt64(0) << UInt64(64 - prefix))
            let lowMask: UInt64 = prefix <= 64 ? 0 : (prefix == 128 ? ~0 : ~UInt64(0) << UInt64(128 - prefix))
            return high & highMask == startHigh & highMask && low & lowMask == startLow & lowMask
        case (.v6, .v4):
            return false
        }
    }

    public var description: String { "\(base)/\(prefix)" }
}

extension IPAddress {
    var isV4: Bool {
        if case .v4 = self { return true }
        return false
    }
}
