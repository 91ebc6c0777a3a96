/// Why a request's body cannot be delimited safely; the proxy answers 400 and closes.
public struct FramingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// Finds where one request's body ends in a byte stream, so that on a kept-alive connection
/// the proxy knows where the next request head starts and checks it too, instead of letting
/// it through as "body".
///
/// It reads framing only and keeps nothing: bytes pass through to the caller unchanged.
///
/// ```swift
/// var framer = try RequestBodyFramer(head: head)
/// let used = try bytes.withUnsafeBytes { try framer.consume($0) }
/// // forward bytes[..<used]; if framer.isComplete, bytes[used...] start the next head
/// ```
public struct RequestBodyFramer: Sendable {
    /// The longest chunk-size line (size and extensions, before the CRLF) accepted; real ones
    /// are a few bytes.
    public static let maximumChunkLineLength = 1024
    /// The most trailer bytes accepted after the last chunk.
    public static let maximumTrailerLength = 65_536

    private enum State: Sendable {
        /// `remaining` more body bytes, then the message is done (Content-Length).
        case fixed(remaining: Int)
        /// Reading a chunk-size line: the size so far, whether it has a digit, whether an
        /// extension started, and how long the line is.
        case chunkSize(size: Int, hasDigit: Bool, inExtension: Bool, lineLength: Int)
        /// The CR of a chunk-size line was seen; LF must follow.
        case chunkSizeLF(size: Int)
        /// Inside chunk data.
        case chunkData(remaining: Int)
        /// After chunk data: CR, then LF.
        case chunkDataCR
        case chunkDataLF
        /// Inside the trailer section, at `lineLength` bytes into a line (0: at a line start).
        case trailer(lineLength: Int, sawColon: Bool, total: Int)
        /// A CR ended a trailer line (or the empty line, when `lineLength` was 0).
        case trailerLF(endsMessage: Bool, total: Int)
        case done
        case failed(FramingError)
    }

    private var state: State

    /// Decides the framing from the head (RFC 9112 section 6.3), refusing every combination
    /// where two servers could disagree: Transfer-Encoding together with Content-Length,
    /// a final coding other than `chunked`, `chunked` twice, Transfer-Encoding on HTTP/1.0,
    /// and Content-Length values that are not one identical run of digits.
    public init(head: HTTPRequestHead) throws(FramingError) {
        let transferEncodings = head.values("Transfer-Encoding")
        let contentLengths = head.values("Content-Length")
        if !transferEncodings.isEmpty && !contentLengths.isEmpty {
            throw FramingError("both Transfer-Encoding and Content-Length (request smuggling)")
        }
        if !transferEncodings.isEmpty {
            guard head.version != "HTTP/1.0" else { throw FramingError("Transfer-Encoding on an HTTP/1.0 request") }
            let sent = transferEncodings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map(Self.trimmed)
            // Tokens are checked before lower-casing: Unicode lower-cases the Kelvin sign to
            // "k", and "chun\u{212A}ed" must not become the "chunked" no server sees.
            guard sent.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(HTTPSyntax.isToken) }) else {
                throw FramingError("malformed Transfer-Encoding")
            }
            let codings = sent.map { $0.lowercased() }
            guard codings.last == "chunked" else {
                throw FramingError("the final Transfer-Encoding of a request must be chunked")
            }
            guard codings.filter({ $0 == "chunked" }).count == 1 else {
                throw FramingError("chunked applied more than once")
            }
            state = .chunkSize(size: 0, hasDigit: false, inExtension: false, lineLength: 0)
        } else if !contentLengths.isEmpty {
            let lengths = contentLengths.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map(Self.trimmed)
            guard lengths.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(HTTPSyntax.isDigit) }) else {
                throw FramingError("Content-Length is not a number")
            }
            // Byte comparison: `String ==` is Unicode equivalence, not what a server compares.
            guard let first = lengths.first, lengths.allSatisfy({ $0.utf8.elementsEqual(first.utf8) }) else {
                throw FramingError("conflicting Content-Length values")
            }
            guard let length = Int(first) else { throw FramingError("Content-Length too large") }
            state = length == 0 ? .done : .fixed(remaining: length)
        } else {
            state = .done
        }
    }

    /// Whether the whole body, with chunk framing and trailers, has gone by.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Reads the next bytes of the stream and returns how many of them belong to this message;
    /// the rest (if any) start the next request. Takes the stream split at any byte.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(FramingError) -> Int {
        var index = 0
        while index < bytes.count {
            switch state {
            case .done:
                return index
            case .failed(let error):
                throw error
            case .fixed(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                state = remaining == taken ? .done : .fixed(remaining: remaining - taken)
            case .chunkData(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                state = remaining == taken ? .chunkDataCR : .chunkData(remaining: remaining - taken)
            default:
                let next = step(bytes[index])
                if case .failed(let error) = next {
                    state = next
                    throw error
                }
                state = next
                index += 1
            }
        }
        if case .failed(let error) = state { throw error }
        return index
    }

    /// The state after one framing byte (anything but body data).
    private func step(_ byte: UInt8) -> State {
        switch state {
        case .chunkSize(let size, let hasDigit, let inExtension, let lineLength):
            if byte == HTTPSyntax.cr {
                return hasDigit ? .chunkSizeLF(size: size) : .failed(FramingError("chunk without a size"))
            }
            let lineLength = lineLength + 1
            guard lineLength <= Self.maximumChunkLineLength else {
                return .failed(FramingError("chunk-size line too long"))
            }
            if inExtension {
                // Extensions are passed on, not interpreted; they only must not break the line.
                guard HTTPSyntax.isFieldValue(byte) else {
                    return .failed(FramingError("invalid byte in chunk extension"))
                }
                return .chunkSize(size: size, hasDigit: hasDigit, inExtension: true, lineLength: lineLength)
            }
            if let digit = Self.hexValue(byte) {
                guard size <= (Int.max - digit) / 16 else { return .failed(FramingError("chunk size too large")) }
                return .chunkSize(size: size * 16 + digit, hasDigit: true, inExtension: false, lineLength: lineLength)
            }
            // No whitespace between size and ';': servers that allow it and ones that don't
            // would split the stream differently.
            if byte == HTTPSyntax.semicolon && hasDigit {
                return .chunkSize(size: size, hasDigit: true, inExtension: true, lineLength: lineLength)
            }
            return .failed(FramingError("invalid byte in chunk size"))
        case .chunkSizeLF(let size):
            guard byte == HTTPSyntax.lf else { return .failed(FramingError("chunk-size line not ended by CRLF")) }
            return size == 0 ? .trailer(lineLength: 0, sawColon: false, total: 0) : .chunkData(remaining: size)
        case .chunkDataCR:
            return byte == HTTPSyntax.cr ? .chunkDataLF : .failed(FramingError("chunk data not followed by CRLF"))
        case .chunkDataLF:
            guard byte == HTTPSyntax.lf else { return .failed(FramingError("chunk data not followed by CRLF")) }
            return .chunkSize(size: 0, hasDigit: false, inExtension: false, lineLength: 0)
        case .trailer(let lineLength, let sawColon, let total):
            let total = total + 1
            guard total <= Self.maximumTrailerLength else { return .failed(FramingError("trailer section too large")) }
            if byte == HTTPSyntax.cr {
                guard lineLength == 0 || sawColon else { return .failed(FramingError("trailer line without a colon")) }
                return .trailerLF(endsMessage: lineLength == 0, total: total)
            }
            if sawColon {
                guard HTTPSyntax.isFieldValue(byte) else {
                    return .failed(FramingError("invalid byte in trailer value"))
                }
                return .trailer(lineLength: lineLength + 1, sawColon: true, total: total)
            }
            if byte == HTTPSyntax.colon && lineLength > 0 {
                return .trailer(lineLength: lineLength + 1, sawColon: true, total: total)
            }
            guard HTTPSyntax.isToken(byte) else { return .failed(FramingError("invalid byte in trailer name")) }
            return .trailer(lineLength: lineLength + 1, sawColon: false, total: total)
        case .trailerLF(let endsMessage, let total):
            guard byte == HTTPSyntax.lf else { return .failed(FramingError("trailer line not ended by CRLF")) }
            return endsMessage ? .done : .trailer(lineLength: 0, sawColon: false, total: total + 1)
        case .fixed, .chunkData, .done, .failed:
            return state
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }

    private static func trimmed(_ text: Substring) -> String {
        var text = text
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
