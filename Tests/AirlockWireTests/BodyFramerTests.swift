import PropertyBased
import Testing

@testable import AirlockWire

@Suite struct RequestBodyFramerTests {
    private func head(_ fields: [(String, String)], version: String = "HTTP/1.1") -> HTTPRequestHead {
        HTTPRequestHead(
            method: "POST", target: "/", version: version, fields: fields.map { HTTPField(name: $0.0, value: $0.1) })
    }

    private func makeFramer(_ fields: [(String, String)], version: String = "HTTP/1.1") throws -> RequestBodyFramer {
        try RequestBodyFramer(head: head(fields, version: version))
    }

    /// Feeds `pieces` one after another, as reads from a socket, and returns how many bytes
    /// belonged to the message and whether it completed.
    private func feed(_ framer: inout RequestBodyFramer, _ pieces: [[UInt8]]) throws -> (used: Int, complete: Bool) {
        var used = 0
        for piece in pieces {
            let taken = try piece.withUnsafeBytes { try framer.consume($0) }
            #expect(taken <= piece.count)
            used += taken
            if taken < piece.count {
                #expect(framer.isComplete, "bytes were left over before the message ended")
                break
            }
        }
        return (used, framer.isComplete)
    }

    @Test func noFramingFieldsMeansNoBody() throws {
        var framer = try makeFramer([("Host", "a")])
        #expect(framer.isComplete)
        #expect(try feed(&framer, [Array("GET / HTTP/1.1\r\n".utf8)]).used == 0)
    }

    @Test func contentLengthEndsTheBodyWhereTheNextRequestStarts() throws {
        var framer = try makeFramer([("Content-Length", "5")])
        #expect(!framer.isComplete)
        let result = try feed(&framer, [Array("he".utf8), Array("lloGET / HTTP/1.1\r\n".utf8)])
        #expect(result.used == 5)
        #expect(result.complete)
        #expect(try makeFramer([("Content-Length", "0")]).isComplete)
        #expect(try makeFramer([("Content-Length", "5, 5"), ("content-length", "5")]).isComplete == false)
    }

    /// The classic smuggling vectors: each makes a front end and a back end disagree on where a
    /// body ends, so each is refused instead of guessed at.
    @Test(arguments: [
        [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        [("Transfer-Encoding", "chunked"), ("Content-Length", "0")],
        [("Transfer-Encoding", "gzip")],
        [("Transfer-Encoding", "chunked, gzip")],
        [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "identity")],
        [("Transfer-Encoding", "chunked, chunked")],
        [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
        [("Transfer-Encoding", "xchunked")],
        [("Transfer-Encoding", "chunked;q=1")],
        [("Transfer-Encoding", "")],
        [("Transfer-Encoding", "chunked,")],
        [("Transfer-Encoding", "chun\u{212A}ed")],  // Kelvin sign: lower-cases to "k"
        [("Transfer-Encoding", "\u{FF43}hunked")],  // full-width c
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "5, 6")],
        [("Content-Length", "5,")],
        [("Content-Length", "05"), ("Content-Length", "5")],
        [("Content-Length", "+5")],
        [("Content-Length", "-1")],
        [("Content-Length", "5 5")],
        [("Content-Length", "0x10")],
        [("Content-Length", "")],
        [("Content-Length", "99999999999999999999999")],
        [("Content-Length", "\u{FF15}")],  // full-width 5
    ])
    func refusesAmbiguousFraming(fields: [(String, String)]) {
        #expect(throws: FramingError.self) { try RequestBodyFramer(head: head(fields)) }
    }

    @Test func refusesTransferEncodingOnHTTP10() {
        #expect(throws: FramingError.self) { try makeFramer([("Transfer-Encoding", "chunked")], version: "HTTP/1.0") }
    }

    @Test func acceptsCodingsBeforeChunked() throws {
        #expect(try !makeFramer([("Transfer-Encoding", "gzip, Chunked")]).isComplete)
        #expect(try !makeFramer([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", " chunked ")]).isComplete)
    }

    static let chunked = Array(
        ("4;name=value;q=\"a b\"\r\nWiki\r\n" + "0000A\r\n0123456789\r\n" + "0\r\nExpires: never\r\nX-T:\r\n\r\n").utf8)
    static let next = Array("GET /next HTTP/1.1\r\n\r\n".utf8)

    @Test func chunkedSplitAtEveryOffsetGivesTheSameResult() throws {
        let stream = Self.chunked + Self.next
        for split in 0...stream.count {
            var framer = try makeFramer([("Transfer-Encoding", "chunked")])
            let result = try feed(&framer, [Array(stream[..<split]), Array(stream[split...])])
            #expect(result.used == Self.chunked.count, "split at \(split)")
            #expect(result.complete, "split at \(split)")
        }
        var framer = try makeFramer([("Transfer-Encoding", "chunked")])
        let byteByByte = try feed(&framer, stream.map { [$0] })
        #expect(byteByByte.used == Self.chunked.count)
        #expect(byteByByte.complete)
    }

    @Test func chunkedWithoutTrailersAndAnEmptyFinalLine() throws {
        var framer = try makeFramer([("Transfer-Encoding", "chunked")])
        let body = Array("3\r\nabc\r\n0\r\n\r\n".utf8)
        #expect(try feed(&framer, [body + Self.next]) == (body.count, true))
    }

    @Test(arguments: [
        "5 \r\nhello\r\n0\r\n\r\n",  // whitespace after the size
        "5\t;x\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "\r\n",  // no size
        ";x\r\n",
        "5\nhello\r\n0\r\n\r\n",  // bare LF
        "5\rhello",  // bare CR
        "5\r\nhelloX\r\n",  // data not followed by CRLF
        "5\r\nhello\r0\r\n",
        "-5\r\n",
        "0x5\r\n",
        "5;x\u{0}y\r\n",  // NUL in an extension
        "fffffffffffffffff\r\n",  // overflows
        "8000000000000000\r\n",
        "0\r\n Folded: x\r\n\r\n",  // folded trailer
        "0\r\nNoColon\r\n\r\n",
        "0\r\nName : v\r\n\r\n",
        "0\r\nName: a\u{0}b\r\n\r\n",
        "0\r\n\n",
        "0\r\n\rX",
    ])
    func refusesMalformedChunks(body: String) throws {
        var framer = try makeFramer([("Transfer-Encoding", "chunked")])
        #expect(throws: FramingError.self) { _ = try feed(&framer, [Array(body.utf8)]) }
        // Once broken, it stays broken: the connection cannot be resynchronized.
        #expect(throws: FramingError.self) { _ = try feed(&framer, [Array("0\r\n\r\n".utf8)]) }
    }

    @Test func capsTheChunkSizeLine() throws {
        let fits =
            "1;" + String(repeating: "e", count: RequestBodyFramer.maximumChunkLineLength - 2) + "\r\nx\r\n0\r\n\r\n"
        var framer = try makeFramer([("Transfer-Encoding", "chunked")])
        #expect(try feed(&framer, [Array(fits.utf8)]) == (fits.utf8.count, true))

        let tooLong = "1;" + String(repeating: "e", count: RequestBodyFramer.maximumChunkLineLength - 1) + "\r\n"
        var longFramer = try makeFramer([("Transfer-Encoding", "chunked")])
        #expect(throws: FramingError("chunk-size line too long")) {
            _ = try feed(&longFramer, [Array(tooLong.utf8)])
        }
        // Leading zeros count toward the cap too, so they cannot hide a size line forever.
        var zeros = try makeFramer([("Transfer-Encoding", "chunked")])
        #expect(throws: FramingError.self) {
            _ = try feed(&zeros, [Array(repeating: UInt8(ascii: "0"), count: 2000)])
        }
    }

    @Test func largeChunksPassInOneStep() throws {
        var framer = try makeFramer([("Transfer-Encoding", "chunked")])
        let data = [UInt8](repeating: 0x0d, count: 100_000)
        let body = Array("186a0\r\n".utf8) + data + Array("\r\n0\r\n\r\n".utf8)
        #expect(try feed(&framer, [body]) == (body.count, true))
    }

    // MARK: Properties

    /// A random chunked body (sizes in mixed case with leading zeros, extensions, data full of
    /// CR and LF, trailers), followed by the next request and cut into random pieces.
    @Test func generatedChunkedBodiesEndWhereTheyShould() async {
        let streams = Generator<(body: [UInt8], pieces: [[UInt8]]), Shrink.None<(body: [UInt8], pieces: [[UInt8]])>>(
            run: { rng in
                var body: [UInt8] = []
                for _ in 0..<Int.random(in: 0...5, using: &rng) {
                    let data = (0..<Int.random(in: 1...300, using: &rng)).map { _ in
                        [0x0d, 0x0a, 0x30, UInt8.random(in: 0...255, using: &rng)][Int.random(in: 0...3, using: &rng)]
                    }
                    var size = String(data.count, radix: 16, uppercase: Bool.random(using: &rng))
                    size = String(repeating: "0", count: Int.random(in: 0...3, using: &rng)) + size
                    let ext = Bool.random(using: &rng) ? ";ext=\"v \\\" w\";flag" : ""
                    body += Array((size + ext + "\r\n").utf8) + data + Array("\r\n".utf8)
                }
                body += Array("0\r\n".utf8)
                for index in 0..<Int.random(in: 0...2, using: &rng) {
                    body += Array("Trailer-\(index): value \(index)\r\n".utf8)
                }
                body += Array("\r\n".utf8)
                return (body, WireGen.pieces(of: body + Self.next, using: &rng))
            })
        await propertyCheck(count: 200, input: streams) { stream in
            var framer = try RequestBodyFramer(head: head([("Transfer-Encoding", "chunked")]))
            #expect(try feed(&framer, stream.pieces) == (stream.body.count, true))
        }
    }

    @Test func randomBytesNeverOverrunTheInput() async {
        let chunks = Generator<[[UInt8]], Shrink.None<[[UInt8]]>>(run: { rng in
            let alphabet = Array("0123456789abcdefABCDEF;=\"\r\n :\tX".utf8)
            let bytes = (0..<Int.random(in: 0...400, using: &rng)).map { _ in
                alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
            }
            return WireGen.pieces(of: bytes, using: &rng)
        })
        await propertyCheck(count: 300, input: chunks) { pieces in
            var framer = try RequestBodyFramer(head: head([("Transfer-Encoding", "chunked")]))
            do {
                _ = try feed(&framer, pieces)
            } catch {
                #expect(error is FramingError)
            }
        }
    }
}
