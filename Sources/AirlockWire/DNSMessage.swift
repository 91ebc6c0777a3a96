import AirlockPolicy

/// Record types by their RFC mnemonic; any other type travels as its number.
public enum DNSType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let ptr: UInt16 = 12
    public static let mx: UInt16 = 15
    public static let txt: UInt16 = 16
    public static let aaaa: UInt16 = 28
    public static let srv: UInt16 = 33
    public static let opt: UInt16 = 41
    public static let https: UInt16 = 65
    public static let any: UInt16 = 255
}

/// Record classes; only the Internet class exists in practice.
public enum DNSClass {
    public static let internet: UInt16 = 1
}

/// Response codes (RFC 1035 §4.1.1) by their RFC mnemonic.
public enum DNSRcode {
    public static let noError: UInt8 = 0
    public static let formErr: UInt8 = 1
    public static let servFail: UInt8 = 2
    public static let nxDomain: UInt8 = 3
    public static let notImp: UInt8 = 4
    public static let refused: UInt8 = 5
}

/// Why a DNS message was rejected, and what a server should answer the sender with.
public struct DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in one line.
    public let reason: String
    /// The response code a server answers an unparseable query with: NOTIMP for an opcode it
    /// does not implement, FORMERR for anything malformed.
    public let rcode: UInt8

    /// Creates an error; `rcode` defaults to FORMERR.
    public init(_ reason: String, rcode: UInt8 = DNSRcode.formErr) {
        self.reason = reason
        self.rcode = rcode
    }

    public var description: String { reason }
}

/// The one question of a query.
public struct DNSQuestion: Sendable, Equatable {
    /// The name asked about: lower-cased, without the trailing dot; "" is the root.
    public var name: String
    /// The record type asked for, such as ``DNSType/a``.
    public var type: UInt16
    /// The record class, ``DNSClass/internet`` in every query worth answering.
    public var qclass: UInt16

    /// Creates a question; the class defaults to Internet.
    public init(name: String, type: UInt16, qclass: UInt16 = DNSClass.internet) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }
}

/// A standard query with exactly one question, as a stub resolver sends it.
public struct DNSQuery: Sendable, Equatable {
    /// The transaction id the response must echo.
    public var id: UInt16
    /// The header flags as sent; a response echoes their RD bit.
    public var flags: UInt16
    /// The question asked.
    public var question: DNSQuestion

    /// Creates a query; the flags default to 0x0100, recursion desired.
    public init(id: UInt16, flags: UInt16 = 0x0100, question: DNSQuestion) {
        self.id = id
        self.flags = flags
        self.question = question
    }

    /// Parses a query strictly, as the sandbox's DNS stub receives it.
    ///
    /// Accepts only a standard query (QR 0, opcode 0) with exactly one question, no answer or
    /// authority records and an uncompressed name whose labels hold letters, digits, `-` and
    /// `_`. Whatever follows the question (an EDNS OPT record, say) is ignored.
    ///
    /// ```swift
    /// do {
    ///     let query = try DNSQuery.parse(datagram)
    ///     reply(allowed(query.question.name) ? DNSMessage.answer(query, addresses: [fake], ttl: 60)
    ///                                         : DNSMessage.error(query, rcode: DNSRcode.nxDomain))
    /// } catch {
    ///     if let id = DNSQuery.id(of: datagram) { reply(DNSMessage.error(id: id, rcode: error.rcode)) }
    /// }
    /// ```
    public static func parse(_ bytes: some Collection<UInt8>) throws(DNSError) -> DNSQuery {
        var reader = DNSMessage.Reader(Array(bytes))
        let header = try reader.header()
        guard header.flags & DNSMessage.Header.response == 0 else {
            throw DNSError("DNS message is a response, not a query")
        }
        let opcode = (header.flags & DNSMessage.Header.opcodeMask) >> 11
        guard opcode == 0 else {
            throw DNSError("DNS opcode \(opcode) is not a standard query", rcode: DNSRcode.notImp)
        }
        guard header.questions == 1 else {
            throw DNSError("DNS query carries \(header.questions) questions; expected one")
        }
        guard header.answers == 0, header.authorities == 0 else {
            throw DNSError("DNS query carries answer or authority records")
        }
        let labels = try reader.name(allowPointers: false)
        let type = try reader.uint16()
        let qclass = try reader.uint16()
        for label in labels {
            guard let bad = label.first(where: { !Self.isHostNameByte($0) }) else { continue }
            throw DNSError("DNS name holds the byte 0x\(String(bad, radix: 16)), which no host name contains")
        }
        let name = labels.map { String(decoding: $0.map(Self.lowercased), as: UTF8.self) }.joined(separator: ".")
        return DNSQuery(
            id: header.id, flags: header.flags, question: DNSQuestion(name: name, type: type, qclass: qclass))
    }

    /// The id of a message that looks like a query (a whole header with QR 0), so that a
    /// server can answer even a query it cannot parse; nil for anything else, which a server
    /// must not answer (answering responses would let two servers bounce errors forever).
    public static func id(of bytes: some Collection<UInt8>) -> UInt16? {
        let header = Array(bytes.prefix(DNSMessage.Header.size))
        guard header.count == DNSMessage.Header.size, header[2] & 0x80 == 0 else { return nil }
        return UInt16(header[0]) << 8 | UInt16(header[1])
    }

    /// Letters, digits, `-` and `_` (service labels such as `_https._tcp`).
    static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}

/// Builds and reads DNS messages for the sandbox's stub (which answers) and the host's
/// upstream client (which asks).
///
/// ```swift
/// let request = try DNSMessage.query(id: 0x1234, name: "example.com", type: DNSType.a)
/// // … send request over UDP, or DNSMessage.tcpFrame(request) over TCP, read `reply` …
/// let (rcode, addresses) = try DNSMessage.addresses(inResponse: reply, id: 0x1234)
/// ```
public enum DNSMessage {
    /// A NOERROR response to `query`: one A record per IPv4 address when it asks for A, one
    /// AAAA record per IPv6 address when it asks for AAAA, and no records otherwise (the name
    /// exists but has no data of that type).
    ///
    /// Over UDP without EDNS a response must fit 512 bytes; with the longest name that leaves
    /// room for 8 AAAA records, so callers keep the list short.
    public static func answer(_ query: DNSQuery, addresses: [IPAddress], ttl: UInt32) -> [UInt8] {
        let question = query.question
        var records: [(type: UInt16, data: [UInt8])] = []
        if question.qclass == DNSClass.internet {
            for address in addresses {
                switch address {
                case .v4(let value) where question.type == DNSType.a:
                    records.append((DNSType.a, bigEndian(value)))
                case .v6(let high, let low) where question.type == DNSType.aaaa:
                    records.append((DNSType.aaaa, bigEndian(high) + bigEndian(low)))
                default:
                    continue
                }
            }
        }
        guard var message = response(to: query, rcode: DNSRcode.noError, answers: records.count) else {
            return error(id: query.id, rcode: DNSRcode.servFail)
        }
        // RFC 2181 §8: a TTL is 31 bits; some resolvers read larger values as zero.
        let ttl = min(ttl, 0x7fff_ffff)
        for record in records {
            message += bigEndian(0xc000 | UInt16(Header.size))  // a pointer to the question's name
            message += bigEndian(record.type) + bigEndian(DNSClass.internet) + bigEndian(ttl)
            message += bigEndian(UInt16(record.data.count)) + record.data
        }
        return message
    }

    /// An error response to `query` (such as ``DNSRcode/nxDomain`` or ``DNSRcode/refused``)
    /// that echoes its question.
    public static func error(_ query: DNSQuery, rcode: UInt8) -> [UInt8] {
        response(to: query, rcode: rcode, answers: 0) ?? error(id: query.id, rcode: rcode)
    }

    /// A header-only error response, for a query that could not be parsed (see
    /// ``DNSQuery/id(of:)``).
    public static func error(id: UInt16, rcode: UInt8) -> [UInt8] {
        header(id: id, flags: Header.response | Header.recursionAvailable | UInt16(rcode & 0x0f), questions: 0)
    }

    /// A standard recursive query for `name` (a trailing dot is fine; letters, digits, `-`
    /// and `_` only), as the host's upstream client sends it.
    public static func query(id: UInt16, name: String, type: UInt16) throws(DNSError) -> [UInt8] {
        header(id: id, flags: Header.recursionDesired, questions: 1) + (try encode(name: name)) + bigEndian(type)
            + bigEndian(DNSClass.internet)
    }

    /// The response code and the A and AAAA records of the answer section of a response to the
    /// query `id`.
    ///
    /// Compressed names are followed within bounds and a bounded number of hops. Records of
    /// other types (a CNAME chain, say) are skipped, as are the authority and additional
    /// sections. A truncated response (TC set) is an error: ask again over TCP.
    public static func addresses(
        inResponse bytes: some Collection<UInt8>, id: UInt16
    ) throws(DNSError) -> (rcode: UInt8, addresses: [IPAddress]) {
        var reader = Reader(Array(bytes))
        let header = try reader.header()
        guard header.id == id else {
            throw DNSError("DNS response id \(header.id) does not match the query id \(id)")
        }
        guard header.flags & Header.response != 0 else {
            throw DNSError("DNS message is a query, not a response")
        }
        guard header.flags & Header.truncated == 0 else {
            throw DNSError("DNS response is truncated; ask again over TCP")
        }
        for _ in 0..<header.questions {
            _ = try reader.name(allowPointers: true)
            try reader.skip(4)  // type and class
        }
        var addresses: [IPAddress] = []
        for _ in 0..<header.answers {
            _ = try reader.name(allowPointers: true)
            let type = try reader.uint16()
            let rclass = try reader.uint16()
            try reader.skip(4)  // TTL
            let data = try reader.bytes(Int(try reader.uint16()))
            guard rclass == DNSClass.internet, type == DNSType.a || type == DNSType.aaaa else { continue }
            switch (type, data.count) {
            case (DNSType.a, 4):
                addresses.append(.v4(UInt32(integer(data))))
            case (DNSType.aaaa, 16):
                addresses.append(.v6(high: integer(data.prefix(8)), low: integer(data.suffix(8))))
            default:
                throw DNSError("DNS address record holds \(data.count) bytes")
            }
        }
        return (UInt8(header.flags & Header.rcodeMask), addresses)
    }

    /// `message` with the two-byte length prefix DNS over TCP puts before every message
    /// (RFC 1035 §4.2.2). A message cannot exceed 65,535 bytes.
    public static func tcpFrame(_ message: [UInt8]) -> [UInt8] {
        precondition(message.count <= Int(UInt16.max), "a DNS message cannot exceed 65535 bytes")
        return bigEndian(UInt16(message.count)) + message
    }

    /// The first whole message in a TCP stream and how many bytes it took, prefix included;
    /// nil until the stream holds a whole message.
    public static func tcpUnframe(_ stream: some Collection<UInt8>) -> (message: [UInt8], consumed: Int)? {
        let prefix = Array(stream.prefix(2))
        guard prefix.count == 2 else { return nil }
        let length = Int(prefix[0]) << 8 | Int(prefix[1])
        let message = Array(stream.dropFirst(2).prefix(length))
        guard message.count == length else { return nil }
        return (message, 2 + length)
    }

    /// Header and echoed question of a response; nil when the question's name cannot be
    /// encoded (a caller built it by hand).
    static func response(to query: DNSQuery, rcode: UInt8, answers: Int) -> [UInt8]? {
        guard let name = try? encode(name: query.question.name) else { return nil }
        let flags =
            Header.response | (query.flags & Header.recursionDesired) | Header.recursionAvailable
            | UInt16(rcode & 0x0f)
        return header(id: query.id, flags: flags, questions: 1, answers: UInt16(answers)) + name
            + bigEndian(query.question.type) + bigEndian(query.question.qclass)
    }

    static func header(id: UInt16, flags: UInt16, questions: UInt16, answers: UInt16 = 0) -> [UInt8] {
        [id, flags, questions, answers, 0, 0].flatMap(bigEndian)
    }

    /// The wire form of a host name: labels of 1 to 63 bytes, 255 bytes in all.
    static func encode(name: String) throws(DNSError) -> [UInt8] {
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        var bytes: [UInt8] = []
        if !text.isEmpty {
            for label in text.split(separator: ".", omittingEmptySubsequences: false) {
                let labelBytes = Array(label.utf8)
                guard (1...63).contains(labelBytes.count) else {
                    throw DNSError("DNS label '\(label)' must hold 1 to 63 bytes")
                }
                guard labelBytes.allSatisfy(DNSQuery.isHostNameByte) else {
                    throw DNSError("DNS label '\(label)' holds a character no host name contains")
                }
                bytes.append(UInt8(labelBytes.count))
                bytes += labelBytes.map(DNSQuery.lowercased)
            }
        }
        bytes.append(0)
        guard bytes.count <= Reader.maximumNameLength else {
            throw DNSError("DNS name '\(name)' is longer than 255 bytes")
        }
        return bytes
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    static func integer(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The fixed header (RFC 1035 §4.1.1) and its flag bits.
    struct Header {
        static let size = 12
        static let response: UInt16 = 0x8000
        static let opcodeMask: UInt16 = 0x7800
        static let truncated: UInt16 = 0x0200
        static let recursionDesired: UInt16 = 0x0100
        static let recursionAvailable: UInt16 = 0x0080
        static let rcodeMask: UInt16 = 0x000f

        var id: UInt16
        var flags: UInt16
        var questions: UInt16
        var answers: UInt16
        var authorities: UInt16
        var additionals: UInt16
    }

    /// Reads a message front to back; every read checks bounds and throws rather than trap.
    struct Reader {
        static let maximumNameLength = 255
        /// A name has at most 127 labels, so a name reached through more pointers than that loops.
        static let maximumPointerHops = 128

        let message: [UInt8]
        private(set) var offset = 0

        init(_ message: [UInt8]) {
            self.message = message
        }

        mutating func header() throws(DNSError) -> Header {
            guard message.count >= Header.size else {
                throw DNSError("DNS message of \(message.count) bytes is shorter than its header")
            }
            return Header(
                id: try uint16(), flags: try uint16(), questions: try uint16(), answers: try uint16(),
                authorities: try uint16(), additionals: try uint16())
        }

        mutating func uint16() throws(DNSError) -> UInt16 {
            UInt16(integer(try bytes(2)))
        }

        mutating func skip(_ count: Int) throws(DNSError) {
            _ = try bytes(count)
        }

        mutating func bytes(_ count: Int) throws(DNSError) -> ArraySlice<UInt8> {
            guard count <= message.count - offset else { throw DNSError("DNS message ends early") }
            defer { offset += count }
            return message[offset..<offset + count]
        }

        /// The labels of the name at the current offset, leaving the offset after it. Pointers
        /// (RFC 1035 §4.1.4) must land inside the message past the header, and the name they
        /// spell obeys the limits of an uncompressed one, so a loop ends in an error.
        mutating func name(allowPointers: Bool) throws(DNSError) -> [ArraySlice<UInt8>] {
            var labels: [ArraySlice<UInt8>] = []
            var position = offset
            var resumeAt: Int?
            var length = 0
            var hops = 0
            while true {
                guard position < message.count else { throw DNSError("DNS name runs past the end of the message") }
                let head = Int(message[position])
                switch head >> 6 {
                case 0:
                    length += head + 1
                    guard length <= Self.maximumNameLength else {
                        throw DNSError("DNS name is longer than 255 bytes")
                    }
                    if head == 0 {
                        offset = resumeAt ?? position + 1
                        return labels
                    }
                    guard head < message.count - position else {
                        throw DNSError("DNS label runs past the end of the message")
                    }
                    labels.append(message[position + 1..<position + 1 + head])
                    position += 1 + head
                case 3:
                    guard allowPointers else {
                        throw DNSError("DNS query compresses its name, which queries never need")
                    }
                    guard position + 1 < message.count else { throw DNSError("DNS name pointer is cut short") }
                    hops += 1
                    guard hops <= Self.maximumPointerHops else { throw DNSError("DNS name pointers loop") }
                    let target = (head & 0x3f) << 8 | Int(message[position + 1])
                    guard target >= Header.size, target < message.count else {
                        throw DNSError("DNS name pointer to offset \(target) lies outside the message")
                    }
                    if resumeAt == nil { resumeAt = position + 2 }
                    position = target
                default:
                    throw DNSError("DNS name uses the reserved label type 0x\(String(head, radix: 16))")
                }
            }
        }
    }
}
