import PropertyBased
import Testing

@testable import AirlockPolicy

/// Random addresses and names for the matcher's properties.
enum PolicyGen {
    static let v4 = Generator<UInt32, Shrink.None<UInt32>>(run: { rng in
        // Half from the special ranges, so the blocked side is exercised as much as the other.
        let special: [UInt32] = [0x7F00_0000, 0x0A00_0000, 0xA9FE_0000, 0xC0A8_0000, 0x6440_0000, 0xAC10_0000]
        if Bool.random(using: &rng) {
            return special[Int.random(in: 0..<special.count, using: &rng)] | UInt32.random(in: 0...0xFFFF, using: &rng)
        }
        return UInt32.random(in: 0...UInt32.max, using: &rng)
    })

    static let label = Generator<String, Shrink.None<String>>(run: { rng in randomLabel(&rng) })

    static let name = Generator<String, Shrink.None<String>>(run: { rng in
        (0..<Int.random(in: 2...4, using: &rng)).map { _ in randomLabel(&rng) }.joined(separator: ".")
    })

    /// A label that starts with a letter, so a name of such labels is never an IP literal
    /// (`3.0` is 3.0.0.0 to a resolver).
    static func randomLabel(_ rng: inout some RandomNumberGenerator) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let rest = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let first = letters[Int.random(in: 0..<letters.count, using: &rng)]
        let tail = (0..<Int.random(in: 0...11, using: &rng)).map { _ in
            rest[Int.random(in: 0..<rest.count, using: &rng)]
        }
        return String([first] + tail)
    }

    /// Every way a resolver or URL parser accepts to write `value`.
    static func spellings(of value: UInt32) -> [String] {
        let bytes = [value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF]
        let hex = String(value, radix: 16)
        let low24 = value & 0xFF_FFFF
        let low16 = value & 0xFFFF
        return [
            bytes.map(String.init).joined(separator: "."),
            String(value),
            "0x" + hex,
            bytes.map { "0" + String($0, radix: 8) }.joined(separator: "."),
            "\(bytes[0]).\(low24)",
            "\(bytes[0]).\(bytes[1]).\(low16)",
            "::ffff:" + bytes.map(String.init).joined(separator: "."),
            "[::ffff:\(String(value >> 16, radix: 16)):\(String(low16, radix: 16))]",
            "64:ff9b::" + bytes.map(String.init).joined(separator: "."),
        ]
    }
}

@Suite struct PolicyProperties {
    @Test func everySpellingOfAnAddressIsThatAddress() async {
        await propertyCheck(count: 300, input: PolicyGen.v4) { value in
            for spelling in PolicyGen.spellings(of: value) {
                #expect(IPAddress(parsing: spelling)?.embeddedV4 == value, "\(spelling)")
            }
        }
    }

    @Test func aBlockedAddressIsBlockedInEverySpelling() async {
        let policy = EgressPolicy(preset: .open)
        await propertyCheck(count: 300, input: PolicyGen.v4) { value in
            let blocked = BlockedRanges.reason(for: .v4(value)) != nil
            for spelling in PolicyGen.spellings(of: value) {
                #expect(policy.decide(host: spelling, port: 80).isAllowed == !blocked, "\(spelling)")
            }
        }
    }

    @Test func aRangeHoldsExactlyTheAddressesSharingItsPrefix() async {
        let prefixes = Gen.int(in: 0...32)
        await propertyCheck(count: 500, input: PolicyGen.v4, PolicyGen.v4, prefixes) { base, address, prefix in
            guard let range = AddressRange("\(IPAddress.v4(base))/\(prefix)") else {
                Issue.record("\(IPAddress.v4(base))/\(prefix) did not parse")
                return
            }
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            #expect(range.contains(.v4(address)) == ((address & mask) == (base & mask)))
            #expect(range.contains(.v4(base)))
        }
    }

    @Test func anExactRuleMatchesOnlyItsHost() async {
        await propertyCheck(count: 300, input: PolicyGen.name, PolicyGen.label) { name, label in
            guard let rule = HostRule(name) else {
                Issue.record("\(name) is not a rule")
                return
            }
            #expect(rule.matches(host: name, port: 443))
            #expect(!rule.matches(host: label + "." + name, port: 443))
            #expect(!rule.matches(host: label + name, port: 443))
        }
    }

    @Test func aWildcardMatchesSubdomainsOnly() async {
        await propertyCheck(count: 300, input: PolicyGen.name, PolicyGen.label) { domain, label in
            guard let rule = HostRule("*." + domain) else {
                Issue.record("*.\(domain) is not a rule")
                return
            }
            #expect(rule.matches(host: label + "." + domain, port: 443))
            #expect(rule.matches(host: label + ".x." + domain, port: 80))
            #expect(!rule.matches(host: domain, port: 443))
            #expect(!rule.matches(host: label + domain, port: 443))
        }
    }

    @Test func aPortedRuleMatchesOnlyThatPort() async {
        await propertyCheck(count: 300, input: PolicyGen.name, Gen.int(in: 1...65_535), Gen.int(in: 1...65_535)) {
            name, port, other in
            guard let rule = HostRule("\(name):\(port)") else {
                Issue.record("\(name):\(port) is not a rule")
                return
            }
            #expect(rule.matches(host: name, port: UInt16(port)))
            #expect(rule.matches(host: name, port: UInt16(other)) == (port == other))
        }
    }

    @Test func denyBeatsAllow() async {
        await propertyCheck(count: 300, input: PolicyGen.name) { name in
            let rules = [HostRule(name)].compactMap { $0 }
            let policy = EgressPolicy(preset: .open, allowHosts: rules, blockHosts: rules)
            #expect(!policy.decide(host: name, port: 443).isAllowed)
            #expect(EgressPolicy(preset: .locked, allowHosts: rules).decide(host: name, port: 443).isAllowed)
        }
    }
}
