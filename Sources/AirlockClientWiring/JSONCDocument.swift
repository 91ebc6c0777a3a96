/// A JSON settings file, comments and trailing commas allowed (VS Code's, Zed's, Gemini's and
/// OpenCode's files are JSONC), edited in place: a change touches only the bytes of the member
/// it sets or removes, so the user's comments, order and layout stay as they were.
///
/// Removing what `set` added gives back the bytes from before, for files laid out one member
/// per line; that is what `mcp client disconnect` relies on.
public struct JSONCDocument: Sendable {
    public private(set) var bytes: [UInt8]

    /// `text` must hold one object; an empty or blank text is an empty object.
    public init(text: String) throws(WiringError) {
        let blank = text.allSatisfy(\.isWhitespace)
        bytes = Array((blank ? "{}\n" : text).utf8)
        let root = try parse()
        guard case .container(let container) = root.node, container.isObject else {
            throw WiringError(.malformed, "the file holds JSON, but not an object")
        }
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// True when the whole document is `{}` (with any whitespace around it).
    public var isEmptyObject: Bool {
        guard let root = try? parse(), case .container(let container) = root.node else { return false }
        return container.elements.isEmpty && bytes[(container.open + 1)..<container.close].allSatisfy(Self.isSpace)
    }

    /// The member at `path` (object keys from the root), or nil where there is none.
    public func value(at path: [String]) -> Element? {
        guard var element = try? parse() else { return nil }
        for key in path {
            guard case .container(let container) = element.node, container.isObject,
                let next = container.elements.last(where: { $0.key == key })
            else { return nil }
            element = next
        }
        return element
    }

    /// Sets the member at `path` (made, with any objects on the way, where missing). Returns
    /// the path of the outermost object it made, if it made one, for ``removeIfEmpty(_:)``.
    @discardableResult
    public mutating func set(_ path: [String], to value: SettingsValue) throws(WiringError) -> [String]? {
        guard let last = path.last else { throw WiringError(.malformed, "an empty path") }
        var parent = try parse()
        for (depth, key) in path.dropLast().enumerated() {
            guard case .container(let container) = parent.node, container.isObject else {
                throw WiringError(.malformed, "\(path.prefix(depth).joined(separator: ".")) is not an object")
            }
            guard let next = container.elements.last(where: { $0.key == key }) else {
                let rest = Array(path[(depth + 1)...])
                let wrapped = rest.dropFirst().reversed().reduce(value) { inner, key in .object([(key, inner)]) }
                insert(key: key, value: .object([(rest[0], wrapped)]), into: container)
                return Array(path.prefix(depth + 1))
            }
            parent = next
        }
        guard case .container(let container) = parent.node, container.isObject else {
            throw WiringError(.malformed, "\(path.dropLast().joined(separator: ".")) is not an object")
        }
        if let existing = container.elements.last(where: { $0.key == last }) {
            let indent = lineIndent(at: existing.start)
            let rendered = value.json(unit: indentUnit, indent: indent, newline: newline)
            bytes.replaceSubrange(existing.valueStart..<existing.valueEnd, with: Array(rendered.utf8))
        } else {
            insert(key: last, value: value, into: container)
        }
        return nil
    }

    /// Removes the member at `path`. Returns whether there was one.
    @discardableResult
    public mutating func remove(_ path: [String]) -> Bool {
        var removed = false
        // Every member of that name: a duplicate would still be read by some parsers.
        while let key = path.last, let parent = value(at: Array(path.dropLast())),
            case .container(let container) = parent.node, container.isObject,
            let member = container.elements.last(where: { $0.key == key })
        {
            remove(member, from: container)
            removed = true
        }
        return removed
    }

    /// Removes the member at `path` if it is an empty object or array (one that `set` or
    /// `upsert` made, and the entry it was made for is gone).
    public mutating func removeIfEmpty(_ path: [String]) {
        guard let member = value(at: path), case .container(let container) = member.node, container.elements.isEmpty
        else { return }
        remove(path)
    }

    /// Appends `item` to the array at `path` (made where missing) unless an element of it
    /// already has `key` = `value`, which is then replaced. Returns whether it made the array.
    @discardableResult
    public mutating func upsert(_ item: SettingsValue, inArray path: [String], matching key: String, value: String)
        throws(WiringError) -> Bool
    {
        guard let array = self.value(at: path) else {
            try set(path, to: .array([item]))
            return true
        }
        guard case .container(let container) = array.node, !container.isObject else {
            throw WiringError(.malformed, "\(path.joined(separator: ".")) is not an array")
        }
        if let match = container.elements.first(where: { $0.member(key)?.string == value }) {
            let rendered = item.json(unit: indentUnit, indent: lineIndent(at: match.start), newline: newline)
            bytes.replaceSubrange(match.valueStart..<match.valueEnd, with: Array(rendered.utf8))
        } else {
            insert(key: nil, value: item, into: container)
        }
        return false
    }

    /// Removes the elements of the array at `path` whose `key` is `value`.
    public mutating func removeFromArray(_ path: [String], matching key: String, value: String) {
        while let array = self.value(at: path), case .container(let container) = array.node, !container.isObject,
            let match = container.elements.first(where: { $0.member(key)?.string == value })
        {
            remove(match, from: container)
        }
    }

    // MARK: - The tree

    /// A member of an object (with its key) or an element of an array, and where its bytes are.
    public struct Element: Sendable {
        public let key: String?
        /// Where the key (or, in an array, the value) begins.
        let start: Int
        let valueStart: Int
        let valueEnd: Int
        /// The comma after the value, if there is one.
        let comma: Int?
        let node: Node

        /// A string value's text.
        public var string: String? {
            if case .string(let text) = node { return text }
            return nil
        }

        /// The member `key` of an object value.
        public func member(_ key: String) -> Element? {
            guard case .container(let container) = node, container.isObject else { return nil }
            return container.elements.last { $0.key == key }
        }

        /// The elements of an array value (nil for anything else).
        public var items: [Element]? {
            guard case .container(let container) = node, !container.isObject else { return nil }
            return container.elements
        }

        /// The keys of an object value, in file order.
        public var keys: [String] {
            guard case .container(let container) = node, container.isObject else { return [] }
            return container.elements.compactMap(\.key)
        }
    }

    public indirect enum Node: Sendable {
        case container(Container)
        case string(String)
        case other
    }

    public struct Container: Sendable {
        let isObject: Bool
        let open: Int
        let close: Int
        let elements: [Element]
    }

    // MARK: - Edits

    private var newline: String { bytes.contains(13) && text.contains("\r\n") ? "\r\n" : "\n" }

    /// The indentation one level adds: that of the root's first member on a line of its own.
    private var indentUnit: String {
        guard let root = try? parse(), case .container(let container) = root.node else { return "  " }
        for element in container.elements {
            let indent = lineIndent(at: element.start)
            if !indent.isEmpty && startsLine(element.start) { return indent }
        }
        return "  "
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }

    /// The spaces and tabs that begin the line holding `index`.
    private func lineIndent(at index: Int) -> String {
        var start = index
        while start > 0 && bytes[start - 1] != 10 { start -= 1 }
        var end = start
        while end < bytes.count && (bytes[end] == 32 || bytes[end] == 9) { end += 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Whether only spaces and tabs stand between the line's start and `index`.
    private func startsLine(_ index: Int) -> Bool {
        var at = index
        while at > 0 && (bytes[at - 1] == 32 || bytes[at - 1] == 9) { at -= 1 }
        return at == 0 || bytes[at - 1] == 10
    }

    /// Where the line break before `index` begins, if only spaces and tabs lie between.
    private func breakBefore(_ index: Int) -> Int? {
        var at = index
        while at > 0 && (bytes[at - 1] == 32 || bytes[at - 1] == 9) { at -= 1 }
        guard at > 0 && bytes[at - 1] == 10 else { return nil }
        return at >= 2 && bytes[at - 2] == 13 ? at - 2 : at - 1
    }

    private mutating func insert(key: String?, value: SettingsValue, into container: Container) {
        let closeIndent = lineIndent(at: container.open)
        let indent: String
        if let last = container.elements.last, startsLine(last.start) {
            indent = lineIndent(at: last.start)
        } else {
            indent = closeIndent + indentUnit
        }
        let text =
            (key.map { SettingsValue.quoted($0) + ": " } ?? "")
            + value.json(unit: indentUnit, indent: indent, newline: newline)
        // After the last thing in the container that is not white space (a value, a comma,
        // a comment), so that a comment stays with the member it followed.
        var contentEnd = container.close
        while contentEnd > container.open + 1 && Self.isSpace(bytes[contentEnd - 1]) { contentEnd -= 1 }
        guard let last = container.elements.last else {
            let gap = bytes[contentEnd..<container.close]
            let tail = gap.contains(10) ? "" : newline + closeIndent
            bytes.insert(contentsOf: Array((newline + indent + text + tail).utf8), at: contentEnd)
            return
        }
        if last.comma != nil {
            // A trailing comma: the file's style, kept.
            bytes.insert(contentsOf: Array((newline + indent + text + ",").utf8), at: contentEnd)
        } else {
            bytes.insert(contentsOf: Array((newline + indent + text).utf8), at: contentEnd)
            bytes.insert(44, at: last.valueEnd)
        }
    }

    private mutating func remove(_ element: Element, from container: Container) {
        guard let index = container.elements.firstIndex(where: { $0.start == element.start }) else { return }
        let start = breakBefore(element.start) ?? element.start
        if let comma = element.comma {
            bytes.removeSubrange(start..<(comma + 1))
        } else if index > 0, let previousComma = container.elements[index - 1].comma {
            bytes.removeSubrange(start..<element.valueEnd)
            bytes.remove(at: previousComma)
        } else {
            bytes.removeSubrange(start..<element.valueEnd)
        }
        // A container left holding only white space closes up: `{}`.
        if let reparsed = try? parse(), let emptied = Self.container(in: reparsed, opening: container.open),
            emptied.elements.isEmpty, bytes[(emptied.open + 1)..<emptied.close].allSatisfy(Self.isSpace)
        {
            bytes.removeSubrange((emptied.open + 1)..<emptied.close)
        }
    }

    private static func container(in element: Element, opening open: Int) -> Container? {
        guard case .container(let container) = element.node else { return nil }
        if container.open == open { return container }
        for child in container.elements {
            if child.valueStart <= open && open < child.valueEnd { return Self.container(in: child, opening: open) }
        }
        return nil
    }

    // MARK: - Parsing

    func parse() throws(WiringError) -> Element {
        var parser = Parser(bytes: bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.at = 3 }
        try parser.skipTrivia()
        let start = parser.at
        let node = try parser.value(depth: 0)
        let end = parser.at
        try parser.skipTrivia()
        guard parser.at == bytes.count else { throw parser.failure("more after the end of the document") }
        return Element(key: nil, start: start, valueStart: start, valueEnd: end, comma: nil, node: node)
    }

    struct Parser {
        let bytes: [UInt8]
        var at = 0

        func failure(_ what: String) -> WiringError {
            var line = 1
            var column = 1
            for byte in bytes[0..<min(at, bytes.count)] {
                if byte == 10 {
                    line += 1
                    column = 1
                } else if byte & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return WiringError(.malformed, "line \(line), column \(column): \(what)")
        }

        mutating func skipTrivia() throws(WiringError) {
            while at < bytes.count {
                let byte = bytes[at]
                if JSONCDocument.isSpace(byte) {
                    at += 1
                } else if byte == 47, at + 1 < bytes.count, bytes[at + 1] == 47 {
                    while at < bytes.count && bytes[at] != 10 { at += 1 }
                } else if byte == 47, at + 1 < bytes.count, bytes[at + 1] == 42 {
                    at += 2
                    while at + 1 < bytes.count && !(bytes[at] == 42 && bytes[at + 1] == 47) { at += 1 }
                    guard at + 1 < bytes.count else { throw failure("a comment that is never closed") }
                    at += 2
                } else {
                    return
                }
            }
        }

        mutating func value(depth: Int) throws(WiringError) -> Node {
            guard depth < 200 else { throw failure("nested too deeply") }
            guard at < bytes.count else { throw failure("a value is missing") }
            switch bytes[at] {
            case 123, 91: return .container(try container(depth: depth))
            case 34: return .string(try string())
            default:
                let start = at
                while at < bytes.count, !Self.delimiters.contains(bytes[at]) { at += 1 }
                let word = String(decoding: bytes[start..<at], as: UTF8.self)
                guard ["true", "false", "null"].contains(word) || Self.isNumber(word) else {
                    at = start
                    throw failure(word.isEmpty ? "a value is missing" : "'\(word.prefix(20))' is not a JSON value")
                }
                return .other
            }
        }

        static let delimiters: Set<UInt8> = [44, 58, 93, 125, 32, 9, 10, 13, 47]

        /// A number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
        static func isNumber(_ word: String) -> Bool {
            var rest = Substring(word)
            func digits() -> Int {
                let count = rest.prefix { $0.isASCII && $0.isNumber }.count
                rest = rest.dropFirst(count)
                return count
            }
            if rest.first == "-" { rest = rest.dropFirst() }
            if rest.first == "0" {
                rest = rest.dropFirst()
            } else if digits() == 0 {
                return false
            }
            if rest.first == "." {
                rest = rest.dropFirst()
                if digits() == 0 { return false }
            }
            if rest.first == "e" || rest.first == "E" {
                rest = rest.dropFirst()
                if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
                if digits() == 0 { return false }
            }
            return rest.isEmpty
        }

        mutating func container(depth: Int) throws(WiringError) -> Container {
            let open = at
            let isObject = bytes[at] == 123
            let closing: UInt8 = isObject ? 125 : 93
            at += 1
            var elements: [Element] = []
            try skipTrivia()
            while at < bytes.count && bytes[at] != closing {
                let start = at
                var key: String?
                if isObject {
                    guard bytes[at] == 34 else { throw failure("a member's name must be a string in double quotes") }
                    key = try string()
                    try skipTrivia()
                    guard at < bytes.count, bytes[at] == 58 else { throw failure("':' is missing after a name") }
                    at += 1
                    try skipTrivia()
                }
                let valueStart = at
                let node = try value(depth: depth + 1)
                let valueEnd = at
                try skipTrivia()
                var comma: Int?
                if at < bytes.count, bytes[at] == 44 {
                    comma = at
                    at += 1
                    try skipTrivia()
                } else if at < bytes.count, bytes[at] != closing {
                    throw failure("',' or '\(isObject ? "}" : "]")' is missing")
                }
                elements.append(
                    Element(
                        key: key, start: start, valueStart: valueStart, valueEnd: valueEnd, comma: comma, node: node))
            }
            guard at < bytes.count else { throw failure("'\(isObject ? "}" : "]")' is missing at the end") }
            let close = at
            at += 1
            return Container(isObject: isObject, open: open, close: close, elements: elements)
        }

        mutating func string() throws(WiringError) -> String {
            at += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while at < bytes.count {
                let byte = bytes[at]
                if byte == 34 {
                    at += 1
                    flush()
                    return String(scalars)
                }
                if byte == 10 { throw failure("a string runs past the end of its line") }
                if byte != 92 {
                    raw.append(byte)
                    at += 1
                    continue
                }
                flush()
                guard at + 1 < bytes.count else { break }
                let escape = bytes[at + 1]
                at += 2
                switch escape {
                case 110: scalars.append("\n")
                case 116: scalars.append("\t")
                case 114: scalars.append("\r")
                case 98: scalars.append("\u{8}")
                case 102: scalars.append("\u{c}")
                case 34, 92, 47: scalars.append(Unicode.Scalar(escape))
                case 117:
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), at + 1 < bytes.count, bytes[at] == 92, bytes[at + 1] == 117 {
                        at += 2
                        let low = try hex4()
                        // A lone high surrogate is kept as U+FFFD, as is what follows if it is no low one.
                        code =
                            (0xDC00..<0xE000).contains(low)
                            ? 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw failure("'\\\(Character(Unicode.Scalar(escape)))' is not a JSON escape")
                }
            }
            throw failure("a string that is never closed")
        }

        mutating func hex4() throws(WiringError) -> UInt32 {
            let hexDigits = Set(Array("0123456789abcdefABCDEF".utf8))
            guard at + 4 <= bytes.count, bytes[at..<(at + 4)].allSatisfy(hexDigits.contains),
                let code = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16)
            else { throw failure("a \\u escape needs four hex digits") }
            at += 4
            return code
        }
    }
}
