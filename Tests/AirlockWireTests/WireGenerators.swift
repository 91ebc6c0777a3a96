import AirlockWire
import PropertyBased

/// Random wire messages for the property tests: valid ones to round-trip and split, and the
/// raw material for mutated ones. Written as plain functions of a random number generator
/// because the messages are structured beyond what zipped generators express readably.
enum WireGen {
    static let tokenCharacters = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let valueCharacters =
        (0x21...0x7e).map { Character(UnicodeScalar(UInt8($0))) } + [" ", "\t", "é", "日", "🙂"]
    static let labelCharacters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

    static let head = Generator<HTTPRequestHead, Shrink.None<HTTPRequestHead>>(run: { rng in randomHead(&rng) })

    static func string(
        _ characters: [Character], length: ClosedRange<Int>, using rng: inout some RandomNumberGenerator
    ) -> String {
        String(
            (0..<Int.random(in: length, using: &rng)).map { _ in
                characters[Int.random(in: 0..<characters.count, using: &rng)]
            })
    }

    static func randomHead(_ rng: inout some RandomNumberGenerator) -> HTTPRequestHead {
        let method = string(tokenCharacters, length: 1...10, using: &rng)
        let targetCharacters = (0x21...0x7e).map { Character(UnicodeScalar(UInt8($0))) }
        let target = "/" + string(targetCharacters, length: 0...40, using: &rng)
        let version = "HTTP/1.\(Int.random(in: 0...9, using: &rng))"
        var fields: [HTTPField] = []
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            var name = string(tokenCharacters, length: 1...20, using: &rng)
            // A second Host field is invalid by design; keep the generated heads valid.
            if name.lowercased() == "host" { name = "X-" + name }
            var value = string(valueCharacters, length: 0...30, using: &rng)
            while value.first == " " || value.first == "\t" { value.removeFirst() }
            while value.last == " " || value.last == "\t" { value.removeLast() }
            fields.append(HTTPField(name: name, value: value))
        }
        return HTTPRequestHead(method: method, target: target, version: version, fields: fields)
    }

    /// A valid host name: labels of letters, digits, `-` and `_`, no label starting or ending
    /// with `-`, mixed case so normalization is exercised.
    static func randomHostName(_ rng: inout some RandomNumberGenerator) -> String {
        let labels = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
            var label = string(labelCharacters, length: 1...20, using: &rng)
            if label.first == "-" { label = "a" + label }
            if label.last == "-" { label += "z" }
            return label
        }
        var name = labels.joined(separator: ".")
        // All-digit names would read as IPv4 addresses; keep this generator to names.
        if name.allSatisfy({ $0.isNumber || $0 == "." }) { name = "n" + name }
        return name
    }

    /// Cuts `bytes` into pieces of random length, at least one byte each.
    static func pieces(of bytes: [UInt8], using rng: inout some RandomNumberGenerator) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 1...max(1, bytes.count / 3), using: &rng))
            result.append(Array(bytes[start..<end]))
            start = end
        }
        return result
    }

    /// A few random edits (replace, insert, delete a byte) of `bytes`.
    static func mutate(_ bytes: [UInt8], using rng: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = bytes
        let interesting: [UInt8] = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff]
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let byte =
                Bool.random(using: &rng)
                ? interesting[Int.random(in: 0..<interesting.count, using: &rng)]
                : UInt8.random(in: 0...255, using: &rng)
            let position = Int.random(in: 0...bytes.count, using: &rng)
            switch Int.random(in: 0...2, using: &rng) {
            case 0 where position < bytes.count: bytes[position] = byte
            case 1: bytes.insert(byte, at: position)
            default: if position < bytes.count { bytes.remove(at: position) }
            }
        }
        return bytes
    }
}

extension Array where Element == UInt8 {
    /// Bytes from a hex string; whitespace is ignored so fixtures can wrap.
    init(hex: String) {
        let digits = hex.compactMap(\.hexDigitValue)
        self = stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }
}
