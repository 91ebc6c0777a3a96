import AirlockPolicy

/// What the first bytes of a tunnel say about the TLS handshake in them.
public enum ClientHelloPeek: Sendable, Equatable {
    /// A valid beginning of a ClientHello; wait for more bytes and peek again.
    case needMore
    /// The client does not start with a TLS handshake record (plain text through CONNECT).
    case notTLS
    /// A TLS handshake record that is not a well-formed ClientHello, or one too large to buffer.
    case invalid(String)
    /// A complete ClientHello, with its lower-cased SNI host name if it sent one.
    case hello(serverName: String?)
}

/// Reads the server name from the ClientHello a client sends first in a tunnel, so the proxy
/// can check it against the CONNECT target before a byte reaches the server: a client that
/// CONNECTs to an allowed host must not be able to ask that server's front for another one.
public enum ClientHello {
    /// The most bytes (records and their headers) the proxy buffers for one ClientHello; real
    /// ones are under 2 KiB, post-quantum key shares and resumption tickets included.
    public static let maximumLength = 65_536

    /// Looks at the start of a tunnel's client bytes without consuming them: the caller keeps
    /// its buffer and forwards it whole once it has decided.
    ///
    /// Reassembles a ClientHello split over several handshake records (RFC 8446 section 5.1
    /// lets a client do that, and a peeker that reads only the first record is easy to
    /// sidestep), and checks the structure strictly: a hello that different parsers could
    /// read differently is `.invalid`, never `.hello(serverName: nil)`.
    ///
    /// ```swift
    /// switch ClientHello.peek(buffer) {
    /// case .hello(let name?): // compare name with the CONNECT host
    /// case .needMore: // read more
    /// default: // refuse
    /// }
    /// ```
    public static func peek(_ bytes: some Collection<UInt8>) -> ClientHelloPeek {
        let window = Array(bytes.prefix(maximumLength))
        guard let first = window.first else { return .needMore }
        guard first == contentTypeHandshake else { return .notTLS }
        if window.count > 1 && window[1] != 3 { return .notTLS }

        var message: [UInt8] = []
        var offset = 0
        while true {
            // The record header, or as much of it as has arrived.
            let header = window[offset..<min(offset + 5, window.count)]
            if let type = header.first, type != contentTypeHandshake {
                return .invalid("a record of another type interrupts the ClientHello")
            }
            if header.count > 1 && header[offset + 1] != 3 {
                return .invalid("record version is not TLS")
            }
            guard header.count == 5 else {
                // Even the shortest record starting here would end past the cap.
                return offset + 6 > maximumLength ? .invalid("ClientHello larger than 64 KiB") : .needMore
            }
            let recordLength = Int(header[offset + 3]) << 8 | Int(header[offset + 4])
            guard recordLength > 0 else { return .invalid("empty handshake record") }
            guard recordLength <= maximumRecordLength else { return .invalid("record longer than 16 KiB") }
            let recordEnd = offset + 5 + recordLength
            guard recordEnd <= maximumLength else { return .invalid("ClientHello larger than 64 KiB") }
            message += window[(offset + 5)..<min(recordEnd, window.count)]

            if message.count >= 4 {
                guard message[0] == handshakeTypeClientHello else {
                    return .invalid("first handshake message is not a ClientHello")
                }
                let helloLength = Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3])
                guard 4 + helloLength <= maximumLength else { return .invalid("ClientHello larger than 64 KiB") }
                if message.count >= 4 + helloLength {
                    return parseBody(message[4..<(4 + helloLength)])
                }
            }
            guard recordEnd <= window.count else { return .needMore }
            offset = recordEnd
        }
    }

    private static let contentTypeHandshake: UInt8 = 22
    private static let handshakeTypeClientHello: UInt8 = 1
    private static let maximumRecordLength = 1 << 14
    private static let extensionServerName: UInt16 = 0
    private static let extensionEncryptedClientHello: UInt16 = 0xfe0d
    private static let nameTypeHostName: UInt8 = 0

    /// The ClientHello body after its 4-byte handshake header (RFC 8446 section 4.1.2).
    private static func parseBody(_ body: ArraySlice<UInt8>) -> ClientHelloPeek {
        var reader = Reader(body)
        guard let version = reader.uint16(), version >> 8 == 3 else {
            return .invalid("ClientHello version is not TLS")
        }
        guard reader.skip(32) else { return .invalid("ClientHello ends in its random") }
        guard let sessionID = reader.vector(lengthBytes: 1), sessionID.count <= 32 else {
            return .invalid("malformed session id")
        }
        guard let suites = reader.vector(lengthBytes: 2), suites.count >= 2, suites.count % 2 == 0 else {
            return .invalid("malformed cipher suites")
        }
        guard let compression = reader.vector(lengthBytes: 1), !compression.isEmpty else {
            return .invalid("malformed compression methods")
        }
        // A TLS 1.2 hello may end here, without extensions and so without a name.
        if reader.isAtEnd { return .hello(serverName: nil) }
        guard let extensionBlock = reader.vector(lengthBytes: 2), reader.isAtEnd else {
            return .invalid("malformed extensions")
        }
        var extensions = Reader(extensionBlock)
        var seen: Set<UInt16> = []
        var serverName: String?
        while !extensions.isAtEnd {
            guard let type = extensions.uint16(), let data = extensions.vector(lengthBytes: 2) else {
                return .invalid("malformed extension")
            }
            // RFC 8446 section 4.2: one of each; with two server_name extensions, which one
            // the server acts on is anyone's guess.
            guard seen.insert(type).inserted else { return .invalid("extension \(type) appears twice") }
            // Encrypted Client Hello hides the real name behind the one we can read: a way to
            // reach any site behind an allowed front.
            guard type != extensionEncryptedClientHello else {
                return .invalid("encrypted ClientHello (ECH) hides the server name")
            }
            if type == extensionServerName {
                switch parseServerName(data) {
                case .success(let name): serverName = name
                case .failure(let problem): return .invalid(problem.reason)
                }
            }
        }
        return .hello(serverName: serverName)
    }

    /// The server_name extension (RFC 6066 section 3): a list with at most one host_name.
    private static func parseServerName(_ data: ArraySlice<UInt8>) -> Result<String?, HelloProblem> {
        var reader = Reader(data)
        guard let list = reader.vector(lengthBytes: 2), reader.isAtEnd, !list.isEmpty else {
            return .failure(HelloProblem(reason: "malformed server_name extension"))
        }
        var entries = Reader(list)
        var hostName: String?
        while !entries.isAtEnd {
            guard let type = entries.uint8(), let name = entries.vector(lengthBytes: 2) else {
                return .failure(HelloProblem(reason: "malformed server_name entry"))
            }
            guard type == nameTypeHostName else { continue }
            guard hostName == nil else { return .failure(HelloProblem(reason: "more than one host_name")) }
            let text = HostName.normalize(String(decoding: name, as: UTF8.self))
            // ASCII first: decoding would turn stray bytes into U+FFFD, and a name must not
            // compare equal to something the client did not send.
            guard name.allSatisfy({ $0 < 0x80 }), HostName.isValid(text) else {
                return .failure(HelloProblem(reason: "server name is not a host name"))
            }
            hostName = text
        }
        return .success(hostName)
    }

    private struct HelloProblem: Error {
        let reason: String
    }

    /// Big-endian reads that return nil instead of running past the end.
    private struct Reader {
        private var bytes: ArraySlice<UInt8>

        init(_ bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
        }

        var isAtEnd: Bool { bytes.isEmpty }

        mutating func uint8() -> UInt8? {
            bytes.popFirst()
        }

        mutating func uint16() -> UInt16? {
            guard let high = uint8(), let low = uint8() else { return nil }
            return UInt16(high) << 8 | UInt16(low)
        }

        mutating func skip(_ count: Int) -> Bool {
            guard bytes.count >= count else { return false }
            bytes.removeFirst(count)
            return true
        }

        /// A length-prefixed vector with a 1- or 2-byte length.
        mutating func vector(lengthBytes: Int) -> ArraySlice<UInt8>? {
            let length: Int
            if lengthBytes == 1 {
                guard let value = uint8() else { return nil }
                length = Int(value)
            } else {
                guard let value = uint16() else { return nil }
                length = Int(value)
            }
            guard bytes.count >= length else { return nil }
            let vector = bytes.prefix(length)
            bytes.removeFirst(length)
            return vector
        }
    }
}
