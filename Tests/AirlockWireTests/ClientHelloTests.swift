import AirlockPolicy
import PropertyBased
import Testing

@testable import AirlockWire

/// Builds ClientHello bytes by hand, so tests can vary exactly one thing at a time.
enum HelloBuilder {
    static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    static func serverNameExtension(_ names: [(type: UInt8, name: [UInt8])]) -> (UInt16, [UInt8]) {
        let list = names.flatMap { [$0.type] + u16($0.name.count) + $0.name }
        return (0, u16(list.count) + list)
    }

    /// A ClientHello handshake message (type, 24-bit length, body).
    static func message(
        serverName: String?, extensions extra: [(UInt16, [UInt8])] = [], omitExtensions: Bool = false
    ) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03] + (0..<32).map { UInt8($0) }
        body += [32] + [UInt8](repeating: 0xab, count: 32)
        body += u16(4) + [0x13, 0x01, 0x13, 0x02]
        body += [0x01, 0x00]
        var extensions: [(UInt16, [UInt8])] = []
        if let serverName { extensions.append(serverNameExtension([(0, Array(serverName.utf8))])) }
        extensions += [(0x002b, [0x02, 0x03, 0x04])] + extra
        if !omitExtensions {
            let block = extensions.flatMap { u16(Int($0.0)) + u16($0.1.count) + $0.1 }
            body += u16(block.count) + block
        }
        return [0x01, UInt8(body.count >> 16), UInt8(body.count >> 8 & 0xff), UInt8(body.count & 0xff)] + body
    }

    /// `message` in handshake records whose payload sizes cycle through `sizes`.
    static func records(_ message: [UInt8], sizes: [Int], type: UInt8 = 22) -> [UInt8] {
        var bytes: [UInt8] = []
        var start = 0
        var turn = 0
        while start < message.count {
            let end = min(message.count, start + sizes[turn % sizes.count])
            bytes += [type, 0x03, 0x01] + u16(end - start) + message[start..<end]
            start = end
            turn += 1
        }
        return bytes
    }
}

@Suite struct ClientHelloTests {
    /// What Python's `ssl` (OpenSSL 3.0) sent for `server_hostname="api.example.com"`:
    /// TLS 1.3 and 1.2 suites, key share, padding to 512 bytes.
    static let pythonHello = [UInt8](
        hex: """
            1603010200010001fc030376b909641dcdd91e765f2363d2d485a08c046fe503d9ef291c31bf3acc44995b20cb1f089ad19
            60ed8a20333761a1a22395dd13a5b1e57265fd9a0e59bce2c18310024130213031301c02cc030c02bc02fcca9cca8c024c0
            28c023c027009f009e006b006700ff0100018f00000014001200000f6170692e6578616d706c652e636f6d000b00040300
            0102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305
            030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00
            020101003300260024001d0020180d3caab69a7477f70ab0bf07e861b35d3da38f0079968eda4fd107f51d0a2f001500de
            \(String(repeating: "00", count: 222))
            """)

    @Test func readsTheServerNameOfARealClientHello() {
        #expect(Self.pythonHello.count == 517)
        #expect(ClientHello.peek(Self.pythonHello) == .hello(serverName: "api.example.com"))
        // Bytes after the hello (the client's next flight) change nothing.
        #expect(
            ClientHello.peek(Self.pythonHello + [0x14, 0x03, 0x03, 0x00, 0x01, 0x01])
                == .hello(serverName: "api.example.com"))
    }

    @Test func everyPrefixOfARealClientHelloNeedsMore() {
        for end in 0..<Self.pythonHello.count {
            let result = ClientHello.peek(Self.pythonHello[..<end])
            #expect(result == .needMore, "prefix of \(end) bytes")
            if result != .needMore { return }
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 64, 100, 511])
    func reassemblesARealClientHelloFromSmallRecords(size: Int) {
        let message = Array(Self.pythonHello.dropFirst(5))
        let records = HelloBuilder.records(message, sizes: [size])
        #expect(ClientHello.peek(records) == .hello(serverName: "api.example.com"))
        #expect(ClientHello.peek(records.dropLast()) == .needMore)
    }

    @Test func lowerCasesTheNameAndAllowsNoName() {
        #expect(
            ClientHello.peek(HelloBuilder.records(HelloBuilder.message(serverName: "API.Example.COM"), sizes: [512]))
                == .hello(serverName: "api.example.com"))
        #expect(
            ClientHello.peek(HelloBuilder.records(HelloBuilder.message(serverName: nil), sizes: [512]))
                == .hello(serverName: nil))
        let bare = HelloBuilder.message(serverName: nil, omitExtensions: true)
        #expect(ClientHello.peek(HelloBuilder.records(bare, sizes: [512])) == .hello(serverName: nil))
    }

    @Test(arguments: [
        Array("GET / HTTP/1.1\r\n".utf8), Array("SSH-2.0-OpenSSH_9.6\r\n".utf8), [0x16, 0x02, 0x00], [0x16, 0x00],
        [0x17, 0x03, 0x03, 0x00, 0x01, 0x00], [0x80, 0x2e, 0x01],  // SSLv2-style hello
    ])
    func recognizesWhatIsNotTLS(bytes: [UInt8]) {
        #expect(ClientHello.peek(bytes) == .notTLS)
    }

    @Test func needsMoreForTheFirstBytes() {
        #expect(ClientHello.peek([]) == .needMore)
        #expect(ClientHello.peek([0x16]) == .needMore)
        #expect(ClientHello.peek([0x16, 0x03, 0x01, 0x02]) == .needMore)
        #expect(ClientHello.peek([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]) == .needMore)
    }

    static let invalidHellos: [[UInt8]] = {
        let message = HelloBuilder.message(serverName: "example.com")
        let records = HelloBuilder.records(message, sizes: [512])
        var wrongType = records
        wrongType[5] = 0x02  // a ServerHello
        var oldVersion = records
        oldVersion[9] = 0x02  // legacy_version 2.3
        var badExtensionLength = records
        badExtensionLength[records.count - 4] += 1  // supported_versions claims a byte too many
        let longName = String(repeating: "a", count: 64) + ".example"
        let trailing = HelloBuilder.message(serverName: "example.com") + [0x00]
        var trailingFixed = trailing
        trailingFixed[3] += 1  // the hello's length covers the stray byte
        return [
            wrongType,
            oldVersion,
            badExtensionLength,
            [0x16, 0x03, 0x01, 0x00, 0x00],  // empty record
            [0x16, 0x03, 0x01, 0x40, 0x01],  // record over 16 KiB
            [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00],  // hello of 64 KiB
            HelloBuilder.records(message, sizes: [10]).prefix(15) + [0x17, 0x03, 0x03, 0x00, 0x01, 0x00],
            HelloBuilder.records(message, sizes: [10]).prefix(15) + [0x16, 0x02, 0x03],
            HelloBuilder.records(
                HelloBuilder.message(
                    serverName: "a.example", extensions: [HelloBuilder.serverNameExtension([(0, [0x62])])]),
                sizes: [512]),
            HelloBuilder.records(
                HelloBuilder.message(
                    serverName: nil, extensions: [HelloBuilder.serverNameExtension([(0, [0x61]), (0, [0x62])])]),
                sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: "exa\u{0}mple.com"), sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: "bad name"), sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: "é.example"), sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: longName), sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: ""), sizes: [512]),
            HelloBuilder.records(HelloBuilder.message(serverName: nil, extensions: [(0, [])]), sizes: [512]),
            HelloBuilder.records(
                HelloBuilder.message(serverName: nil, extensions: [(0, [0x00, 0x05, 0x00])]), sizes: [512]),
            HelloBuilder.records(trailingFixed, sizes: [512]),
            // Encrypted Client Hello: the readable name is only the front's.
            HelloBuilder.records(
                HelloBuilder.message(serverName: "front.example", extensions: [(0xfe0d, [0x00, 0x01])]), sizes: [512]),
        ]
    }()

    @Test(arguments: invalidHellos)
    func rejectsMalformedHellos(bytes: [UInt8]) {
        guard case .invalid = ClientHello.peek(bytes) else {
            Issue.record("accepted: \(ClientHello.peek(bytes))")
            return
        }
    }

    @Test func capsTheBufferedBytes() {
        // 70 000 bytes of hello in 16 KiB records: refused once the cap is certain to be passed.
        let message = HelloBuilder.message(
            serverName: "example.com",
            extensions: [
                (0x0015, [UInt8](repeating: 0, count: 60_000)), (0xfe00, [UInt8](repeating: 1, count: 10_000)),
            ])
        let records = HelloBuilder.records(message, sizes: [16_384])
        #expect(ClientHello.peek(records) == .invalid("ClientHello larger than 64 KiB"))
        // A hello just under the cap, but split into one-byte records, is over it with headers.
        let tiny = HelloBuilder.records(
            HelloBuilder.message(
                serverName: "example.com", extensions: [(0x0015, [UInt8](repeating: 0, count: 20_000))]),
            sizes: [1])
        #expect(ClientHello.peek(tiny) == .invalid("ClientHello larger than 64 KiB"))
    }

    // MARK: Properties

    @Test func serverNameSurvivesAnySplitIntoRecords() async {
        let hellos = Generator<(name: String, bytes: [UInt8]), Shrink.None<(name: String, bytes: [UInt8])>>(run: {
            rng in
            let name = WireGen.randomHostName(&rng)
            let padding = [UInt8](repeating: 0, count: Int.random(in: 0...600, using: &rng))
            let message = HelloBuilder.message(serverName: name, extensions: [(0x0015, padding)])
            let sizes = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Int.random(in: 1...300, using: &rng) }
            return (name, HelloBuilder.records(message, sizes: sizes))
        })
        await propertyCheck(count: 200, input: hellos) { hello in
            #expect(ClientHello.peek(hello.bytes) == .hello(serverName: HostName.normalize(hello.name)))
            #expect(ClientHello.peek(hello.bytes.dropLast()) == .needMore)
        }
    }

    @Test func mutatedHellosGiveOnlyValidNames() async {
        let mutated = Generator<[UInt8], Shrink.None<[UInt8]>>(run: { rng in
            let message = HelloBuilder.message(serverName: WireGen.randomHostName(&rng))
            let sizes = [Int.random(in: 1...200, using: &rng)]
            return WireGen.mutate(HelloBuilder.records(message, sizes: sizes), using: &rng)
        })
        await propertyCheck(count: 300, input: mutated) { bytes in
            if case .hello(let name?) = ClientHello.peek(bytes) {
                #expect(HostName.isValid(name))
                #expect(name == name.lowercased())
            }
        }
    }
}
