/// A parser of `text/event-stream` bodies, as the WHATWG HTML standard defines them ("Server-sent
/// events", event stream interpretation): bytes in, whole events out, whatever the boundaries of
/// the reads that carry them.
///
/// Lines end at CRLF, LF or CR, and a CR at the end of one read may be the first half of a CRLF
/// whose LF comes in the next. A line is decoded as UTF-8 only once it is whole, so a character
/// split between reads arrives intact.
///
/// ```swift
/// var parser = ServerSentEvents()
/// parser.feed(Array("data: {\"id\":1}\r".utf8))  // []
/// parser.feed(Array("\n\r\n".utf8))             // [Event(type: "message", data: "{\"id\":1}", id: "")]
/// ```
struct ServerSentEvents: Sendable {
    /// One dispatched event.
    struct Event: Sendable, Equatable {
        /// The `event:` field, `message` when the event names none.
        var type: String
        /// The `data:` lines, joined with LF.
        var data: String
        /// The stream's last event ID when the event was dispatched (`id:` persists across events).
        var id: String
    }

    /// The reconnection time the stream asked for (`retry:`), in milliseconds.
    private(set) var retry: Int?

    private var line: [UInt8] = []
    /// The previous byte ended a line with CR: an LF right after it belongs to that line end.
    private var afterCR = false
    /// A byte order mark is dropped at the very start of the stream only.
    private var atStart = true
    private var type = ""
    private var data = ""
    private var lastEventID = ""

    init() {}

    /// Takes the next bytes of the stream and returns the events they complete.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == Self.lf { continue }
            }
            switch byte {
            case Self.cr, Self.lf:
                afterCR = byte == Self.cr
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        var bytes = line[...]
        if atStart {
            atStart = false
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        }
        guard !bytes.isEmpty else { return dispatch() }
        guard let colon = bytes.firstIndex(of: Self.colon) else {
            process(field: String(decoding: bytes, as: UTF8.self), value: "")
            return nil
        }
        // A line that starts with a colon is a comment (keep-alives are).
        guard colon != bytes.startIndex else { return nil }
        var value = bytes[(colon + 1)...]
        if value.first == Self.space { value = value.dropFirst() }
        process(field: String(decoding: bytes[..<colon], as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        return nil
    }

    private mutating func process(field: String, value: String) {
        switch field {
        case "event":
            type = value
        case "data":
            data += value
            data += "\n"
        case "id":
            if !value.contains("\u{0}") { lastEventID = value }
        case "retry":
            if !value.isEmpty, value.utf8.allSatisfy({ (0x30...0x39).contains($0) }) { retry = Int(value) }
        default:
            break
        }
    }

    /// An empty line: the event so far goes out, unless it had no data.
    private mutating func dispatch() -> Event? {
        defer {
            type = ""
            data = ""
        }
        guard !data.isEmpty else { return nil }
        return Event(type: type.isEmpty ? "message" : type, data: String(data.dropLast()), id: lastEventID)
    }

    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
}
