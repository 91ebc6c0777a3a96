import Testing

@testable import AirlockPolicy

@Suite struct IPAddressTests {
    /// Every one of these is 127.0.0.1 to a resolver or URL parser.
    @Test(arguments: [
        "127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7F.0.0.1", "0177.0.0.1", "0177.0.0.01",
        "0x7f.1", "017700000001",
    ])
    func loopbackInEverySpelling(text: String) {
        #expect(IPAddress(parsing: text) == .v4(0x7f00_0001))
    }

    @Test(arguments: [
        ("::ffff:127.0.0.1", UInt32(0x7f00_0001)), ("::ffff:7f00:1", 0x7f00_0001),
        ("[::ffff:169.254.169.254]", 0xa9fe_a9fe),
        ("64:ff9b::10.0.0.1", 0x0a00_0001), ("64:ff9b::a9fe:a9fe", 0xa9fe_a9fe), ("::192.168.1.1", 0xc0a8_0101),
        ("2002:7f00:1::", 0x7f00_0001), ("0:0:0:0:0:ffff:7f00:0001", 0x7f00_0001),
    ])
    func ipv6FormsCarryingIPv4(text: String, v4: UInt32) {
        #expect(IPAddress(parsing: text)?.embeddedV4 == v4)
    }

    @Test(arguments: ["::1", "[::1]", "0:0:0:0:0:0:0:1", "fe80::1", "fd00:ec2::254", "2606:4700::1111"])
    func parsesIPv6(text: String) {
        guard case .v6 = IPAddress(parsing: text) else {
            Issue.record("\(text) did not parse as IPv6")
            return
        }
    }

    @Test(arguments: [
        "example.com", "256.0.0.1", "1.2.3.4.5", "0x1.0x2.0x3.0x4.0x5", "1..2", "", "::1::2", "1:2:3:4:5:6:7:8:9",
        "fe80::1%eth0", "12345::", "127.0.0.1.", "0xfffffffff", "4294967296", "08.0.0.1", "::ffff:1.2.3",
    ])
    func rejectsNonAddresses(text: String) {
        #expect(IPAddress(parsing: text) == nil)
    }

    @Test func describesBothFamilies() {
        #expect(IPAddress(parsing: "10.1.2.3")?.description == "10.1.2.3")
        #expect(IPAddress(parsing: "fd00:ec2::254")?.description == "fd00:ec2:0:0:0:0:0:254")
    }
}

@Suite struct AddressRangeTests {
    @Test func containsByPrefix() throws {
        let range = try #require(AddressRange("10.0.0.0/8"))
        #expect(range.contains(try #require(IPAddress(parsing: "10.255.1.1"))))
        #expect(!range.contains(try #require(IPAddress(parsing: "11.0.0.1"))))
        #expect(range.contains(try #require(IPAddress(parsing: "::ffff:10.0.0.5"))))
    }

    @Test func ipv6Prefixes() throws {
        let ula = try #require(AddressRange("fc00::/7"))
        #expect(ula.contains(try #require(IPAddress(parsing: "fd12:3456::1"))))
        #expect(!ula.contains(try #require(IPAddress(parsing: "fe80::1"))))
        let host = try #require(AddressRange("2001:db8::1/128"))
        #expect(host.contains(try #require(IPAddress(parsing: "2001:db8:0::1"))))
        #expect(!host.contains(try #require(IPAddress(parsing: "2001:db8::2"))))
        #expect(try #require(AddressRange("::/0")).contains(try #require(IPAddress(parsing: "2606:4700::1"))))
    }

    @Test(arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/-1", "example.com/8", "10.0.0.0/x"])
    func rejectsBadRanges(text: String) {
        #expect(AddressRange(text) == nil)
    }
}
