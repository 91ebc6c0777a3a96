/// One header field line of a request, as the client sent it (name case kept).
public struct HTTPField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The request line and header fields of an HTTP/1.x request: what the egress proxy reads,
/// checks against policy and forwards before any body byte.
///
/// ```swift
/// if case .complete(let head, let length) = HTTPRequestHead.parse(buffer) {
///     // head.method, head.target, head.first("Host"); the body starts at buffer[length...]
/// }
/// ```
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    public var target: String
    /// The protocol version as sent, e.g. `HTTP/1.1`.
    public var version: String
    public var fields: [HTTPField]

    public init(method: String, target: String, version: String = "HTTP/1.1", fields: [HTTPField] = []) {
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
    }

    /// The values of every field called `name`, in order; names compare case-insensitively
    /// because HTTP field names are case-insensitive.
    public func values(_ name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// The value of the first field called `name` (case-insensitive).
    public func first(_ name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    /// Drops every field called `name` (case-insensitive), e.g. `Proxy-Authorization` before
    /// forwarding.
    public mutating func remove(_ name: String) {
        fields.removeAll { Self.sameName($0.name, name) }
    }

    /// Leaves exactly one field called `name` with `value`, where the first one was (or at the
    /// end when there was none), so the order the client chose otherwise survives.
    public mutating func set(_ name: String, _ value: String) {
        guard let position = fields.firstIndex(where: { Self.sameName($0.name, name) }) else {
            fields.append(HTTPField(name: name, value: value))
            return
        }
        fields[position] = HTTPField(name: name, value: value)
        var index = fields.index(after: position)
        while index < fields.endIndex {
            if Self.sameName(fields[index].name, name) {
                fields.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// The head as it goes on the wire: request line, one line per field, blank line, all
    /// ending in CRLF.
    ///
    /// A head that ``parse(_:limit:)`` produced serializes to the bytes it was parsed from,
    /// less optional whitespace and the leading empty line. Control bytes a caller put into a
    /// field (HTAB aside) are written as spaces, so a value built from untrusted text can never
    /// end a line and smuggle in a header of its own.
    public func serialized() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(
            method.utf8.count + target.utf8.count + version.utf8.count + 8
                + fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        func append(_ text: String, allowTab: Bool) {
            for byte in text.utf8 {
                let isControl = byte < 0x20 || byte == 0x7f
                bytes.append(isControl && !(allowTab && byte == HTTPSyntax.tab) ? HTTPSyntax.space : byte)
            }
        }
        append(method, allowTab: false)
        bytes.append(HTTPSyntax.space)
        append(target, allowTab: false)
        bytes.append(HTTPSyntax.space)
        append(version, allowTab: false)
        bytes += [HTTPSyntax.cr, HTTPSyntax.lf]
        for field in fields {
            append(field.name, allowTab: false)
            bytes += [HTTPSyntax.colon, HTTPSyntax.space]
            append(field.value, allowTab: true)
            bytes += [HTTPSyntax.cr, HTTPSyntax.lf]
        }
        bytes += [HTTPSyntax.cr, HTTPSyntax.lf]
        return bytes
    }

    /// ASCII case-insensitive comparison; field names are tokens, so ASCII is all there is.
    static func sameName(_ left: String, _ right: String) -> Bool {
        left.utf8.elementsEqual(right.utf8) { HTTPSyntax.lower($0) == HTTPSyntax.lower($1) }
    }
}

/// The outcome of reading a request head from the bytes received so far.
public enum HTTPHeadParse: Sendable, Equatable {
    /// The bytes are a valid beginning; read more and parse again.
    case incomplete
    /// A whole head; `length` bytes (through the final CRLFCRLF) belong to it.
    case complete(HTTPRequestHead, length: Int)
    /// Not a request head Airlock will forward; the reason is for the log and the 400 reply.
    case invalid(String)
}

extension HTTPRequestHead {
    /// Reads a request head from the start of `bytes`, strictly, because a proxy that reads a
    /// head differently from the server behind it can be walked around (request smuggling).
    ///
    /// - The request line is exactly `METHOD SP TARGET SP HTTP/1.x`: a token method, a
    ///   target of visible ASCII.
    /// - Field lines are `name: value` with a token name and no whitespace before the colon;
    ///   obsolete line folding is rejected; values may hold visible characters, spaces and
    ///   tabs, must be UTF-8 (so `serialized()` gives the same bytes back), and lose the
    ///   optional whitespace around them.
    /// - Every line ends in CRLF. A bare LF is rejected, not accepted as RFC 9112 permits:
    ///   servers disagree on it, and a disagreement on where a line ends is exactly what
    ///   smuggling feeds on. No real client sends one.
    /// - One empty line before the request line is skipped (RFC 9112 section 2.2: old clients
    ///   send a CRLF after a POST body) and counted in `length`; a second one is invalid.
    /// - More than one `Host` field is invalid (RFC 9112 section 3.2): which one a server
    ///   believes is anyone's guess.
    ///
    /// Lines are checked as they arrive, so garbage (a TLS handshake sent to the plain port) is
    /// `.invalid` at once instead of after `limit` bytes.
    ///
    /// ```swift
    /// HTTPRequestHead.parse(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
    /// // .complete(HTTPRequestHead(method: "GET", target: "/", ...), length: 27)
    /// ```
    public static func parse(_ bytes: some Collection<UInt8>, limit: Int = 65_536) -> HTTPHeadParse {
        let limit = max(0, limit)
        // One byte past the limit tells "too large" from "not yet complete". Copying bounds the
        // work and makes every index below a checked array index, whatever collection came in.
        let window = Array(bytes.prefix(limit == Int.max ? limit : limit + 1))
        var head = HTTPRequestHead(method: "", target: "", version: "")
        var sawRequestLine = false
        var skippedEmptyLine = false
        var lineStart = 0
        while true {
            guard let lineFeed = window[lineStart...].firstIndex(of: HTTPSyntax.lf) else {
                if let problem = partialLineProblem(window[lineStart...], requestLine: !sawRequestLine) {
                    return .invalid(problem)
                }
                return window.count > limit ? .invalid("request head too large") : .incomplete
            }
            guard lineFeed < limit else { return .invalid("request head too large") }
            guard lineFeed > lineStart, window[lineFeed - 1] == HTTPSyntax.cr else {
                return .invalid("bare LF line ending")
            }
            let line = window[lineStart..<(lineFeed - 1)]
            lineStart = lineFeed + 1
            if line.isEmpty {
                if sawRequestLine {
                    guard head.values("Host").count <= 1 else { return .invalid("more than one Host field") }
                    return .complete(head, length: lineStart)
                }
                guard !skippedEmptyLine else { return .invalid("more than one empty line before the request line") }
                skippedEmptyLine = true
                continue
            }
            if sawRequestLine {
                switch parseField(line) {
                case .success(let field): head.fields.append(field)
                case .failure(let problem): return .invalid(problem.reason)
                }
            } else {
                switch parseRequestLine(line) {
                case .success(let parts): (head.method, head.target, head.version) = parts
                case .failure(let problem): return .invalid(problem.reason)
                }
                sawRequestLine = true
            }
        }
    }

    /// Why a line is not a head line; a struct so it can be a `Result` failure.
    struct LineProblem: Error {
        let reason: String
    }

    /// Where a request-line scan stands; the same walk checks whole lines and the unfinished
    /// line at the end of the buffer.
    private enum RequestLineState {
        case method, target, version
    }

    private static let versionPrefix = Array("HTTP/1.".utf8)

    /// Walks a request line (without CRLF) and returns where its three parts are. With
    /// `partial`, `line` may be cut anywhere, only what is there is judged, and there are no
    /// parts to return yet.
    private static func scanRequestLine(
        _ line: ArraySlice<UInt8>, partial: Bool
    ) -> Result<(method: Range<Int>, target: Range<Int>, version: Range<Int>)?, LineProblem> {
        var state = RequestLineState.method
        var methodEnd = line.startIndex
        var targetEnd = line.startIndex
        for index in line.indices {
            let byte = line[index]
            switch state {
            case .method:
                if byte == HTTPSyntax.space {
                    guard index > line.startIndex else { return .failure(LineProblem(reason: "empty method")) }
                    methodEnd = index
                    state = .target
                } else if !HTTPSyntax.isToken(byte) {
                    return .failure(LineProblem(reason: "invalid character in method"))
                }
            case .target:
                if byte == HTTPSyntax.space {
                    guard index > methodEnd + 1 else { return .failure(LineProblem(reason: "empty request target")) }
                    targetEnd = index
                    state = .version
                } else if !(0x21...0x7e).contains(byte) {
                    return .failure(LineProblem(reason: "invalid character in request target"))
                }
            case .version:
                let offset = index - targetEnd - 1
                let fits =
                    offset < versionPrefix.count
                    ? byte == versionPrefix[offset] : offset == versionPrefix.count && HTTPSyntax.isDigit(byte)
                guard fits else { return .failure(LineProblem(reason: "unsupported protocol version")) }
            }
        }
        if partial { return .success(nil) }
        guard state == .version, line.endIndex - targetEnd - 1 == versionPrefix.count + 1 else {
            return .failure(LineProblem(reason: "request line is not METHOD TARGET HTTP/1.x"))
        }
        return .success((line.startIndex..<methodEnd, (methodEnd + 1)..<targetEnd, (targetEnd + 1)..<line.endIndex))
    }

    private static func parseRequestLine(
        _ line: ArraySlice<UInt8>
    ) -> Result<(method: String, target: String, version: String), LineProblem> {
        scanRequestLine(line, partial: false).flatMap { ranges in
            guard let ranges else { return .failure(LineProblem(reason: "request line is not METHOD TARGET HTTP/1.x")) }
            return .success(
                (
                    String(decoding: line[ranges.method], as: UTF8.self),
                    String(decoding: line[ranges.target], as: UTF8.self),
                    String(decoding: line[ranges.version], as: UTF8.self)
                ))
        }
    }

    /// Walks a field line (without CRLF) and returns where its colon is. With `partial`, a
    /// line cut before its colon is fine.
    private static func scanField(_ line: ArraySlice<UInt8>, partial: Bool) -> Result<Int?, LineProblem> {
        var colon: Int?
        for index in line.indices {
            let byte = line[index]
            if colon != nil {
                guard HTTPSyntax.isFieldValue(byte) else {
                    return .failure(LineProblem(reason: "invalid character in field value"))
                }
            } else if byte == HTTPSyntax.colon {
                guard index > line.startIndex else { return .failure(LineProblem(reason: "empty field name")) }
                colon = index
            } else if !HTTPSyntax.isToken(byte) {
                if index == line.startIndex && HTTPSyntax.isWhitespace(byte) {
                    return .failure(LineProblem(reason: "obsolete line folding"))
                }
                if HTTPSyntax.isWhitespace(byte) {
                    return .failure(LineProblem(reason: "whitespace before the colon of a field"))
                }
                return .failure(LineProblem(reason: "invalid character in field name"))
            }
        }
        if !partial && colon == nil { return .failure(LineProblem(reason: "field line without a colon")) }
        return .success(colon)
    }

    private static func parseField(_ line: ArraySlice<UInt8>) -> Result<HTTPField, LineProblem> {
        scanField(line, partial: false).flatMap { colon in
            guard let colon else { return .failure(LineProblem(reason: "field line without a colon")) }
            var value = line[(colon + 1)...]
            while let first = value.first, HTTPSyntax.isWhitespace(first) { value.removeFirst() }
            while let last = value.last, HTTPSyntax.isWhitespace(last) { value.removeLast() }
            let text = String(decoding: value, as: UTF8.self)
            // Decoding replaces broken sequences; a changed byte count or content means there
            // were some, and a value that would not serialize back as sent is refused.
            guard text.utf8.elementsEqual(value) else {
                return .failure(LineProblem(reason: "field value is not UTF-8"))
            }
            return .success(HTTPField(name: String(decoding: line[..<colon], as: UTF8.self), value: text))
        }
    }

    /// What is wrong with the unfinished last line, if anything is already.
    private static func partialLineProblem(_ pending: ArraySlice<UInt8>, requestLine: Bool) -> String? {
        var body = pending
        // A CR at the very end is the first half of a line ending; anywhere else it is bare.
        if body.last == HTTPSyntax.cr { body.removeLast() }
        if body.contains(HTTPSyntax.cr) { return "bare CR in request head" }
        if requestLine {
            if case .failure(let problem) = scanRequestLine(body, partial: true) { return problem.reason }
        } else {
            if case .failure(let problem) = scanField(body, partial: true) { return problem.reason }
        }
        return nil
    }
}

/// The byte classes of RFC 9110 that the wire parsers share.
enum HTTPSyntax {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0a
    static let cr: UInt8 = 0x0d
    static let space: UInt8 = 0x20
    static let colon: UInt8 = 0x3a
    static let semicolon: UInt8 = 0x3b

    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// tchar: the characters of methods, field names and transfer codings.
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// field-content: visible characters, obs-text, spaces and tabs; never NUL, CR, LF or
    /// another control byte.
    static func isFieldValue(_ byte: UInt8) -> Bool {
        byte == tab || (0x20...0x7e).contains(byte) || byte >= 0x80
    }

    static func lower(_ byte: UInt8) -> UInt8 {
        (0x41...0x5a).contains(byte) ? byte | 0x20 : byte
    }
}
