import AirlockPolicy
import Testing

@testable import AirlockWire

@Suite struct DNSMessageTests {
    /// `example.com A`, id 0x1234, RD set: the bytes `dig +noedns example.com` sends.
    static let exampleQuery: [UInt8] =
        [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0] + [0x00, 0x01, 0x00, 0x01]

    /// The reply to ``exampleQuery``: QR, RD and RA set, one A record 93.184.216.34 with a TTL of
    /// 60 whose name points back at the question (offset 12).
    static let exampleAnswer: [UInt8] =
        [0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]
        + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0] + [0x00, 0x01, 0x00, 0x01]
        + [0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 93, 184, 216, 34]

    static func header(id: UInt16 = 1, flags: UInt16, questions: UInt16, answers: UInt16 = 0) -> [UInt8] {
        [id, flags, questions, answers, 0, 0].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    static func question(_ labels: [String], type: UInt16 = 1) -> [UInt8] {
        labels.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
    }

    // MARK: Fixtures

    @Test func queryMatchesHandComputedBytes() throws {
        #expect(try DNSMessage.query(id: 0x1234, name: "example.com", type: DNSType.a) == Self.exampleQuery)
        #expect(try DNSMessage.query(id: 0x1234, name: "Example.COM.", type: DNSType.a) == Self.exampleQuery)
    }

    @Test func parsesHandComputedQuery() throws {
        let query = try DNSQuery.parse(Self.exampleQuery)
        #expect(query == DNSQuery(id: 0x1234, flags: 0x0100, question: DNSQuestion(name: "example.com", type: 1)))
    }

    @Test func answerMatchesHandComputedBytes() throws {
        let query = try DNSQuery.parse(Self.exampleQuery)
        #expect(DNSMessage.answer(query, addresses: [.v4(0x5db8_d822)], ttl: 60) == Self.exampleAnswer)
    }

    @Test func readsHandComputedAnswer() throws {
        let result = try DNSMessage.addresses(inResponse: Self.exampleAnswer, id: 0x1234)
        #expect(result.rcode == DNSRcode.noError)
        #expect(result.addresses == [.v4(0x5db8_d822)])
    }

    /// A resolver's reply to `www.example.com`: a CNAME to `example.com`, then its A and AAAA
    /// records, every name compressed.
    @Test func followsCompressionThroughACNAMEChain() throws {
        let v6: [UInt8] = [
            0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0x00, 0x01, 0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46,
        ]
        let reply =
            Self.header(id: 0xbeef, flags: 0x8180, questions: 1, answers: 3) + Self.question(["www", "example", "com"])
            + [0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x02, 0xc0, 0x10]
            + [0xc0, 0x10, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 93, 184, 215, 14]
            + [0xc0, 0x10, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x10] + v6
        let result = try DNSMessage.addresses(inResponse: reply, id: 0xbeef)
        #expect(result.rcode == 0)
        #expect(
            result.addresses == [
                .v4(0x5db8_d70e), .v6(high: 0x2606_2800_0220_0001, low: 0x0248_1893_25c8_1946),
            ])
    }

    // MARK: Round trips

    @Test func answerCarriesOnlyTheAskedFamily() throws {
        let addresses: [IPAddress] = [.v4(0x0a00_0001), .v6(high: 0xfd00 << 48, low: 1), .v4(0x0a00_0002)]
        for (type, expected) in [
            (DNSType.a, [addresses[0], addresses[2]]), (DNSType.aaaa, [addresses[1]]), (DNSType.mx, []),
        ] {
            let request = try DNSMessage.query(id: 7, name: "api.github.com", type: type)
            let query = try DNSQuery.parse(request)
            #expect(query.question == DNSQuestion(name: "api.github.com", type: type))
            let reply = DNSMessage.answer(query, addresses: addresses, ttl: 30)
            let result = try DNSMessage.addresses(inResponse: reply, id: 7)
            #expect(result.rcode == DNSRcode.noError)
            #expect(result.addresses == expected)
        }
    }

    @Test func errorEchoesTheQuestion() throws {
        let query = try DNSQuery.parse(Self.exampleQuery)
        let reply = DNSMessage.error(query, rcode: DNSRcode.nxDomain)
        var expected = Self.exampleQuery
        expected[2] = 0x81
        expected[3] = 0x83
        #expect(reply == expected)
        let result = try DNSMessage.addresses(inResponse: reply, id: 0x1234)
        #expect(result.rcode == DNSRcode.nxDomain)
        #expect(result.addresses.isEmpty)
    }

    @Test func responseEchoesRecursionDesiredOnly() throws {
        let query = DNSQuery(id: 9, flags: 0x0000, question: DNSQuestion(name: "a.b", type: DNSType.a))
        let reply = DNSMessage.answer(query, addresses: [], ttl: 1)
        #expect(reply[2] == 0x80)  // QR; no AA, no RD
        #expect(reply[3] == 0x80)  // RA
    }

    @Test func headerOnlyErrorForUnparseableQueries() throws {
        var notImplemented = Self.exampleQuery
        notImplemented[2] = 0x28  // opcode 5, UPDATE
        let failure = #expect(throws: DNSError.self) { try DNSQuery.parse(notImplemented) }
        #expect(failure?.rcode == DNSRcode.notImp)
        let id = try #require(DNSQuery.id(of: notImplemented))
        let reply = DNSMessage.error(id: id, rcode: failure?.rcode ?? 0)
        #expect(reply == [0x12, 0x34, 0x80, 0x84, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try DNSMessage.addresses(inResponse: reply, id: 0x1234).rcode == DNSRcode.notImp)
    }

    @Test func idIsOnlyExposedForQueries() {
        #expect(DNSQuery.id(of: Self.exampleQuery) == 0x1234)
        #expect(DNSQuery.id(of: Self.exampleAnswer) == nil)
        #expect(DNSQuery.id(of: Self.exampleQuery.prefix(11)) == nil)
    }

    @Test func ttlStaysWithin31Bits() throws {
        let query = try DNSQuery.parse(Self.exampleQuery)
        let reply = DNSMessage.answer(query, addresses: [.v4(1)], ttl: .max)
        #expect(Array(reply[reply.count - 10..<reply.count - 6]) == [0x7f, 0xff, 0xff, 0xff])
    }

    @Test func tcpFramingRoundTrips() {
        let framed = DNSMessage.tcpFrame(Self.exampleQuery)
        #expect(framed.prefix(2) == [0x00, 29])
        #expect(DNSMessage.tcpUnframe(framed.prefix(20)) == nil)
        let unframed = DNSMessage.tcpUnframe(framed + [0xff])
        #expect(unframed?.message == Self.exampleQuery)
        #expect(unframed?.consumed == framed.count)
    }

    // MARK: Strict queries

    @Test func toleratesEDNSOptRecord() throws {
        var request = Self.exampleQuery + [0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        request[11] = 1  // ARCOUNT
        #expect(try DNSQuery.parse(request).question == DNSQuestion(name: "example.com", type: DNSType.a))
    }

    @Test func rejectsCompressionPointersInQueries() {
        let request = Self.header(flags: 0x0100, questions: 1) + [7] + Array("example".utf8) + [0xc0, 0x0c, 0, 1, 0, 1]
        let failure = #expect(throws: DNSError.self) { try DNSQuery.parse(request) }
        #expect(failure?.reason.contains("compresses") == true)
        #expect(failure?.rcode == DNSRcode.formErr)
    }

    @Test(
        arguments: [
            (
                "a response",
                DNSMessageTests.header(flags: 0x8100, questions: 1) + DNSMessageTests.question(["example", "com"])
            ),
            ("no question", DNSMessageTests.header(flags: 0x0100, questions: 0)),
            (
                "two questions",
                DNSMessageTests.header(flags: 0x0100, questions: 2) + DNSMessageTests.question(["a"])
                    + DNSMessageTests.question(["b"])
            ),
            (
                "an answer",
                DNSMessageTests.header(flags: 0x0100, questions: 1, answers: 1) + DNSMessageTests.question(["a"])
            ),
            (
                "a dot inside a label",
                DNSMessageTests.header(flags: 0x0100, questions: 1) + DNSMessageTests.question(["github.com"])
            ),
            (
                "a space",
                DNSMessageTests.header(flags: 0x0100, questions: 1) + DNSMessageTests.question(["exa mple", "com"])
            ),
            ("a NUL byte", DNSMessageTests.header(flags: 0x0100, questions: 1) + DNSMessageTests.question(["a\u{0}b"])),
            (
                "a reserved label type",
                DNSMessageTests.header(flags: 0x0100, questions: 1) + [0x41] + Array(repeating: 0x61, count: 1) + [0]
            ),
            (
                "a 256-byte name",
                DNSMessageTests.header(flags: 0x0100, questions: 1)
                    + DNSMessageTests.question(Array(repeating: String(repeating: "a", count: 62), count: 4) + ["ab"])
            ),
        ] as [(String, [UInt8])])
    func rejectsMalformedQueries(what: String, bytes: [UInt8]) {
        #expect(throws: DNSError.self, "a query with \(what)") { try DNSQuery.parse(bytes) }
    }

    @Test func acceptsTheLongestName() throws {
        let labels = Array(repeating: String(repeating: "a", count: 63), count: 3) + [String(repeating: "b", count: 61)]
        let request = Self.header(flags: 0x0100, questions: 1) + Self.question(labels)
        #expect(try DNSQuery.parse(request).question.name == labels.joined(separator: "."))
        #expect(try DNSMessage.query(id: 1, name: labels.joined(separator: "."), type: 1) == request)
    }

    @Test(arguments: [
        "a..b", ".a", String(repeating: "a", count: 64) + ".com", "exa mple.com", "ünicode.com", "a/b",
        Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."),
    ])
    func refusesToEncodeBadNames(name: String) {
        #expect(throws: DNSError.self) { try DNSMessage.query(id: 1, name: name, type: DNSType.a) }
    }

    @Test func encodesTheRoot() throws {
        #expect(try DNSMessage.query(id: 1, name: ".", type: DNSType.ns).suffix(5) == [0, 0, 2, 0, 1])
        #expect(try DNSQuery.parse(DNSMessage.query(id: 1, name: "", type: DNSType.ns)).question.name == "")
    }

    // MARK: Hostile responses

    @Test(
        arguments: [
            ("points at itself", [0xc0, 0x0c]),
            ("two pointers point at each other", [0xc0, 0x0e, 0xc0, 0x0c]),
            ("a label and a pointer back to it", [0x01, 0x61, 0xc0, 0x0c]),
            ("points past the end", [0xc0, 0xff]),
            ("points into the header", [0xc0, 0x02]),
            ("pointer is cut short", [0xc0]),
        ] as [(String, [UInt8])])
    func hostileNamesEndInAnError(what: String, name: [UInt8]) {
        let reply =
            Self.header(id: 5, flags: 0x8180, questions: 0, answers: 1) + name
            + [0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 10, 0, 0, 1]
        #expect(throws: DNSError.self, "a name that \(what)") {
            try DNSMessage.addresses(inResponse: reply, id: 5)
        }
    }

    @Test func checksIdDirectionAndTruncation() {
        #expect(throws: DNSError.self) { try DNSMessage.addresses(inResponse: Self.exampleAnswer, id: 0x1235) }
        #expect(throws: DNSError.self) { try DNSMessage.addresses(inResponse: Self.exampleQuery, id: 0x1234) }
        var truncated = Self.exampleAnswer
        truncated[2] |= 0x02
        #expect(throws: DNSError.self) { try DNSMessage.addresses(inResponse: truncated, id: 0x1234) }
    }

    @Test func rejectsAddressRecordsOfTheWrongSize() {
        var reply = Self.exampleAnswer
        reply[reply.count - 5] = 3
        #expect(throws: DNSError.self) { try DNSMessage.addresses(inResponse: reply.dropLast(), id: 0x1234) }
    }

    @Test func everyPrefixFailsCleanly() throws {
        for count in 0..<Self.exampleQuery.count {
            #expect(throws: DNSError.self) { try DNSQuery.parse(Self.exampleQuery.prefix(count)) }
        }
        for count in 0..<Self.exampleAnswer.count {
            #expect(throws: DNSError.self) {
                try DNSMessage.addresses(inResponse: Self.exampleAnswer.prefix(count), id: 0x1234)
            }
        }
    }

    /// Random corruption of valid messages never traps; it parses or throws.
    @Test func corruptedMessagesNeverTrap() {
        var random = SplitMix64(seed: 0x00c0_ffee)
        for _ in 0..<20_000 {
            for original in [Self.exampleQuery, Self.exampleAnswer] {
                var bytes = original
                for _ in 0...random.next() % 4 {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
                _ = try? DNSQuery.parse(bytes)
                _ = try? DNSMessage.addresses(inResponse: bytes, id: 0x1234)
            }
        }
    }
}

/// A tiny seeded generator, so a failure reproduces.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
