import PropertyBased
import Testing

@testable import AirlockWire

@Suite struct HTTPRequestHeadTests {
    private func parse(_ text: String, limit: Int = 65_536) -> HTTPHeadParse {
        HTTPRequestHead.parse(Array(text.utf8), limit: limit)
    }

    private func isInvalid(_ result: HTTPHeadParse) -> Bool {
        if case .invalid = result { return true }
        return false
    }

    @Test func parsesConnectHead() throws {
        let text =
            "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n"
            + "Proxy-Authorization: Basic YTpi\r\nUser-Agent: curl/8.5.0\r\n\r\n"
        let expected = HTTPRequestHead(
            method: "CONNECT", target: "api.example.com:443", version: "HTTP/1.1",
            fields: [
                HTTPField(name: "Host", value: "api.example.com:443"),
                HTTPField(name: "Proxy-Authorization", value: "Basic YTpi"),
                HTTPField(name: "User-Agent", value: "curl/8.5.0"),
            ])
        #expect(parse(text) == .complete(expected, length: text.utf8.count))
    }

    @Test func parsesAbsoluteFormGetAndStopsAtTheHead() throws {
        let head = "GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\n"
        let result = parse(head + "bodyGET / HTTP/1.1\r\n")
        guard case .complete(let parsed, let length) = result else {
            Issue.record("expected a complete head, got \(result)")
            return
        }
        #expect(length == head.utf8.count)
        #expect(parsed.method == "GET")
        #expect(parsed.target == "http://example.com/a?b=c")
        #expect(parsed.first("content-length") == "4")
    }

    @Test func trimsOptionalWhitespaceAndKeepsInnerSpaces() {
        let result = parse("GET / HTTP/1.0\r\nX-A: \t a b\t \r\nX-Empty:\r\nX-Tight:v\r\n\r\n")
        guard case .complete(let head, _) = result else {
            Issue.record("expected a complete head, got \(result)")
            return
        }
        #expect(head.values("x-a") == ["a b"])
        #expect(head.values("X-EMPTY") == [""])
        #expect(head.values("x-tight") == ["v"])
        #expect(head.version == "HTTP/1.0")
    }

    @Test func acceptsUTF8AndRejectsBrokenUTF8InValues() {
        let good = Array("GET / HTTP/1.1\r\nX-Name: Zoë 日本\r\n\r\n".utf8)
        guard case .complete(let head, _) = HTTPRequestHead.parse(good) else {
            Issue.record("UTF-8 value refused")
            return
        }
        #expect(head.first("x-name") == "Zoë 日本")
        let broken = Array("GET / HTTP/1.1\r\nX-Name: a".utf8) + [0xff, 0xfe] + Array("\r\n\r\n".utf8)
        #expect(HTTPRequestHead.parse(broken) == .invalid("field value is not UTF-8"))
    }

    @Test func skipsExactlyOneLeadingEmptyLine() {
        let text = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        guard case .complete(let head, let length) = parse(text) else {
            Issue.record("one leading CRLF must be skipped")
            return
        }
        #expect(head.method == "GET")
        #expect(length == text.utf8.count)
        #expect(isInvalid(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")))
    }

    @Test(arguments: [
        "GET  / HTTP/1.1\r\n\r\n",  // two spaces
        "GET / HTTP/1.1 \r\n\r\n",  // trailing space
        " GET / HTTP/1.1\r\n\r\n",  // leading space
        "GET /\tx HTTP/1.1\r\n\r\n",  // tab in the target
        "GET / HTTP/2.0\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
        "GET / HTTP/1.\r\n\r\n",
        "GET /\r\n\r\n",  // HTTP/0.9
        "GET HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",  // not a token
        "GET /\u{7f} HTTP/1.1\r\n\r\n",
        "GET /é HTTP/1.1\r\n\r\n",
        "G\u{0}T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",  // whitespace before the colon
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  // obsolete line folding
        "GET / HTTP/1.1\r\n\tX: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",  // bare LF everywhere
        "GET / HTTP/1.1\r\nHost: a\n\r\n",  // one bare LF
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",  // bare CR
        "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\u{1b}b\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: v\r\n\r\n",
        "GET / HTTP/1.1\r\nX(y): v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",  // which Host?
        "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "\n\nGET / HTTP/1.1\r\n\r\n",
    ])
    func rejectsMalformedHeads(text: String) {
        #expect(isInvalid(parse(text)))
    }

    /// Garbage is refused as soon as it cannot start a head, not after `limit` bytes: a TLS
    /// handshake on the plain proxy port, an SSH banner once its line ends, a folded line
    /// before it ends.
    @Test func rejectsEarlyWhatCannotBecomeValid() {
        #expect(isInvalid(HTTPRequestHead.parse([0x16, 0x03, 0x01, 0x02, 0x00])))
        #expect(isInvalid(parse("SSH-2.0-OpenSSH_9.6\r\n")))
        #expect(isInvalid(parse("GET / HTTP/1.1\r\n X")))
        #expect(isInvalid(parse("GET / HTTP/1.1\r\nX: a\rb")))
        #expect(parse("GET / HTTP/1.1\r\nHost: exam") == .incomplete)
        #expect(parse("GET / HTTP/1.1\r") == .incomplete)
        #expect(parse("GET / HTT") == .incomplete)
        #expect(parse("") == .incomplete)
        #expect(parse("\r\n") == .incomplete)
    }

    @Test func enforcesTheSizeLimit() {
        let head = "GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: 50) + "\r\n\r\n"
        let length = head.utf8.count
        #expect(parse(head, limit: length) == parse(head))
        #expect(parse(head, limit: length - 1) == .invalid("request head too large"))
        #expect(parse(String(head.dropLast(2)), limit: length - 1) == .incomplete)
        #expect(parse(String(head.dropLast(1)), limit: length - 3) == .invalid("request head too large"))
        #expect(isInvalid(parse(head, limit: 0)))
    }

    @Test func accessorsAreCaseInsensitiveAndSetKeepsPosition() {
        var head = HTTPRequestHead(
            method: "GET", target: "/",
            fields: [
                HTTPField(name: "Accept", value: "*/*"),
                HTTPField(name: "Connection", value: "keep-alive"),
                HTTPField(name: "X-Trace", value: "1"),
                HTTPField(name: "connection", value: "Upgrade"),
            ])
        #expect(head.values("CONNECTION") == ["keep-alive", "Upgrade"])
        #expect(head.first("x-trace") == "1")
        #expect(head.first("missing") == nil)
        head.set("Connection", "close")
        #expect(head.fields.map(\.name) == ["Accept", "Connection", "X-Trace"])
        #expect(head.values("connection") == ["close"])
        head.set("Via", "1.1 airlock")
        #expect(head.fields.last == HTTPField(name: "Via", value: "1.1 airlock"))
        head.remove("ACCEPT")
        #expect(head.fields.map(\.name) == ["Connection", "X-Trace", "Via"])
    }

    @Test func serializesWithCRLF() {
        let head = HTTPRequestHead(
            method: "GET", target: "/a", version: "HTTP/1.1",
            fields: [HTTPField(name: "Host", value: "example.com"), HTTPField(name: "X", value: "")])
        #expect(head.serialized() == Array("GET /a HTTP/1.1\r\nHost: example.com\r\nX: \r\n\r\n".utf8))
    }

    /// A value assembled from untrusted text cannot end its line and add a header.
    @Test func serializingNeverInjectsALine() {
        var head = HTTPRequestHead(method: "GET", target: "/")
        head.set("X-User", "a\r\nX-Admin: yes")
        let bytes = head.serialized()
        guard case .complete(let parsed, let length) = HTTPRequestHead.parse(bytes) else {
            Issue.record("serialized head does not parse")
            return
        }
        #expect(length == bytes.count)
        #expect(parsed.first("X-Admin") == nil)
        #expect(parsed.first("X-User") == "a  X-Admin: yes")
    }

    // MARK: Properties

    @Test func serializeThenParseRoundTrips() async {
        await propertyCheck(count: 200, input: WireGen.head) { head in
            let bytes = head.serialized()
            #expect(HTTPRequestHead.parse(bytes) == .complete(head, length: bytes.count))
        }
    }

    @Test func everyPrefixIsIncompleteUntilTheHeadEnds() async {
        await propertyCheck(count: 40, input: WireGen.head) { head in
            let bytes = head.serialized() + Array("body".utf8)
            let length = bytes.count - 4
            for end in 0..<length {
                let result = HTTPRequestHead.parse(bytes[..<end])
                #expect(result == .incomplete, "prefix of \(end) bytes")
                if result != .incomplete { return }
            }
            for end in length...bytes.count {
                #expect(HTTPRequestHead.parse(bytes[..<end]) == .complete(head, length: length))
            }
        }
    }

    @Test func randomBytesNeverOverrunTheInput() async {
        let alphabet = Array("GET / HTTP/1.1\r\n:Host \t".utf8) + [0x00, 0x7f, 0xff]
        let bytes = Generator<[UInt8], Shrink.None<[UInt8]>>(run: { rng in
            (0..<Int.random(in: 0...300, using: &rng)).map { _ in
                Bool.random(using: &rng)
                    ? alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] : UInt8.random(in: 0...255, using: &rng)
            }
        })
        await propertyCheck(count: 300, input: bytes) { bytes in
            if case .complete(_, let length) = HTTPRequestHead.parse(bytes) {
                #expect(length <= bytes.count)
            }
        }
    }

    /// Mutated valid heads reach deep into the parser; whatever it accepts must be a head that
    /// serializes and parses to itself, so what the proxy forwards is what it checked.
    @Test func mutatedHeadsParseToStableHeads() async {
        let mutated = Generator<[UInt8], Shrink.None<[UInt8]>>(run: { rng in
            WireGen.mutate(WireGen.randomHead(&rng).serialized(), using: &rng)
        })
        await propertyCheck(count: 300, input: mutated) { bytes in
            guard case .complete(let head, let length) = HTTPRequestHead.parse(bytes) else { return }
            #expect(length <= bytes.count)
            let again = head.serialized()
            #expect(HTTPRequestHead.parse(again) == .complete(head, length: again.count))
        }
    }
}
