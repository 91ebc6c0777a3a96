import NIOCore

/// Follows the responses the proxy writes to the sandbox closely enough to know when each one
/// has ended: its head, then a body of `Content-Length` bytes, or none (`HEAD`, 1xx, 204,
/// 304). A chunked or close-delimited body is not followed (it is "unframed" until the next
/// request starts). ``ConnectionTimeouts`` uses it to give a response that is still due, such
/// as a long-poll that sent its headers first, the long idle limit, and a connection with
/// nothing due the short one.
struct ResponseFraming {
    private enum State {
        case idle
        case head([UInt8])
        case body(remaining: Int)
        case unframed
    }

    private var state = State.idle
    /// For each request sent on and not yet answered: whether it was a `HEAD`.
    private var due: [Bool] = []
    static let headLimit = 64 << 10

    /// True while some response is still due (or cannot be followed).
    var awaiting: Bool {
        if case .idle = state { return false }
        return true
    }

    mutating func requestSent(isHead: Bool) {
        due.append(isHead)
        if case .idle = state { state = .head([]) }
    }

    /// Bytes that cannot be read here (TLS the proxy terminates): nothing is followed.
    mutating func giveUp() {
        state = .unframed
    }

    /// A new request starts: a response that could not be followed has ended by now.
    mutating func nextRequest() {
        if case .unframed = state {
            state = .idle
            due.removeAll()
        }
    }

    mutating func consume(_ buffer: ByteBuffer) {
        var bytes = buffer.readableBytesView[...]
        while !bytes.isEmpty {
            switch state {
            case .idle, .unframed:
                return
            case .body(let remaining):
                let taken = min(remaining, bytes.count)
                bytes = bytes.dropFirst(taken)
                if remaining - taken == 0 { finished() } else { state = .body(remaining: remaining - taken) }
            case .head(var head):
                let before = head.count
                head.append(contentsOf: bytes.prefix(Self.headLimit - before + 1))
                guard let end = Self.endOfHead(head) else {
                    if head.count > Self.headLimit { state = .unframed } else { state = .head(head) }
                    return
                }
                bytes = bytes.dropFirst(end - before)
                headArrived(Array(head[..<end]))
            }
        }
    }

    private mutating func headArrived(_ head: [UInt8]) {
        let text = String(decoding: head, as: UTF8.self).lowercased()
        let lines = text.split(separator: "\r\n")
        let status =
            lines.first.flatMap { line in line.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? 0
        func header(_ name: String) -> String? {
            lines.dropFirst().first { $0.hasPrefix(name + ":") }.map {
                $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
            }
        }
        switch status {
        case 101:
            state = .unframed
        case 100..<200:
            state = .head([])
        case _ where due.first == true || status == 204 || status == 304:
            finished()
        default:
            if let coding = header("transfer-encoding"), coding.contains("chunked") {
                state = .unframed
            } else if let length = header("content-length").flatMap({ Int($0) }), length >= 0 {
                if length == 0 { finished() } else { state = .body(remaining: length) }
            } else {
                state = .unframed
            }
        }
    }

    private mutating func finished() {
        if !due.isEmpty { due.removeFirst() }
        state = due.isEmpty ? .idle : .head([])
    }

    private static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
            return index + 1
        }
        return nil
    }
}
