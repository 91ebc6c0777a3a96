/// An IPv4 or IPv6 address, parsed from every spelling a resolver or URL parser accepts.
///
/// The egress policy checks addresses, not strings: `127.1`, `0x7f000001`, `2130706433`,
/// `0177.0.0.1`, `::ffff:127.0.0.1` and `64:ff9b::7f00:1` are all loopback, and each must be
/// blocked like `127.0.0.1` is.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    /// Parses a host the way `inet_aton` and URL parsers do: IPv4 in one to four parts, each
    /// decimal, `0x` hex or `0` octal; IPv6 with or without brackets, with an embedded IPv4
    /// tail, and without a zone. Returns nil for anything else (a host name).
    public init?(parsing text: String) {
        var host = Substring(text)
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host.contains(":") {
            guard let (high, low) = Self.parseV6(host) else { return nil }
            self = .v6(high: high, low: low)
        } else {
            guard let value = Self.parseV4(host) else { return nil }
            self = .v4(value)
        }
    }

    /// The IPv4 address this one carries or stands for, if any: IPv4 itself, IPv4-mapped
    /// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
    /// (`2002:AABB:CCDD::/16`).
    public var embeddedV4: UInt32? {
        switch self {
        case .v4(let value):
            return value
        case .v6(let high, let low):
            let lowWord = UInt32(truncatingIfNeeded: low)
            if high == 0 && (low >> 32) == 0xffff { return lowWord }  // ::ffff:a.b.c.d
            if high == 0 && (low >> 32) == 0 && lowWord > 1 { return lowWord }  // ::a.b.c.d
            if high == 0x0064_ff9b_0000_0000 && (low >> 32) == 0 { return lowWord }  // NAT64
            if (high >> 48) == 0x2002 { return UInt32(truncatingIfNeeded: high >> 16) }  // 6to4
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let value):
            return [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xff) }.joined(separator: ".")
        case .v6(let high, let low):
            let groups =
                [48, 32, 16, 0].map { UInt16(truncatingIfNeeded: high >> UInt64($0)) }
                + [48, 32, 16, 0].map { UInt16(truncatingIfNeeded: low >> UInt64($0)) }
            return groups.map { String($0, radix: 16) }.joined(separator: ":")
        }
    }

    static func parseV4<S: StringProtocol>(_ text: S) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard let value = parseV4Part(part) else { return nil }
            values.append(value)
        }
        // All parts but the last are one byte; the last fills the remaining bytes.
        var result: UInt64 = 0
        for value in values.dropLast() {
            guard value <= 0xff else { return nil }
            result = result << 8 | value
        }
        guard let last = values.last else { return nil }
        let remainingBits = UInt64(8 * (5 - values.count))
        guard last < (1 << remainingBits) else { return nil }
        return UInt32(result << remainingBits | last)
    }

    static func parseV4Part<S: StringProtocol>(_ part: S) -> UInt64? {
        guard !part.isEmpty else { return nil }
        let lower = part.lowercased()
        if lower.hasPrefix("0x") {
            let digits = lower.dropFirst(2)
            return digits.isEmpty ? 0 : (digits.count <= 8 ? UInt64(digits, radix: 16) : nil)
        }
        if lower.count > 1 && lower.hasPrefix("0") {
            return lower.count <= 12 ? UInt64(lower.dropFirst(), radix: 8) : nil
        }
        guard lower.allSatisfy(\.isASCII), lower.count <= 10 else { return nil }
        return UInt64(lower, radix: 10)
    }

    static func parseV6<S: StringProtocol>(_ text: S) -> (UInt64, UInt64)? {
        guard !text.contains("%") else { return nil }  // zones name local links: never egress
        let whole = String(text)
        var halves = [whole]
        if let gap = whole.firstRange(of: "::") {
            halves = [String(whole[..<gap.lowerBound]), String(whole[gap.upperBound...])]
            guard !halves[1].contains("::") else { return nil }
        }
        func groups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowV4Tail && index == pieces.count - 1 && piece.contains(".") {
                    // A dotted tail must be a plain dotted quad.
                    guard piece.split(separator: ".").count == 4, piece.allSatisfy({ $0.isNumber || $0 == "." }),
                        let v4 = parseV4(piece)
                    else { return nil }
                    result += [UInt16(v4 >> 16), UInt16(v4 & 0xffff)]
                } else {
                    guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                    result.append(value)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowV4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        let high = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }
}
