/// A TOML file (Codex's `config.toml`) edited a table at a time: `[a.b]` blocks are found by
/// their headers, removed whole with their sub-tables, or appended at the end, and every other
/// line stays byte for byte. Removing what `append` added gives back the text from before.
public struct TOMLTables: Sendable {
    public private(set) var text: String

    public init(text: String) {
        self.text = text
    }

    /// One header line: where it is and the key path it names.
    struct Header {
        let line: Int
        let path: [String]
    }

    /// The lines, split at LF only (a CRLF line keeps its CR, which `trimmingSpaces` drops).
    private var lines: [String] {
        text.utf8.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    private var newline: String { text.utf8.contains(13) && text.contains("\r\n") ? "\r\n" : "\n" }

    /// Where a line starts: in a multi-line string or array, or free (where a header may be).
    struct ScanState: Equatable {
        var string: String?
        var depth = 0

        var isFree: Bool { string == nil && depth == 0 }
    }

    /// The state after `line`, given the one at its start: strings, comments and brackets of
    /// values, so that a `[` inside a multi-line array or string is not taken for a header.
    static func scan(_ line: String, from start: ScanState) -> ScanState {
        var state = start
        let characters = Array(line.unicodeScalars)
        var index = 0
        func at(_ offset: Int, _ text: String) -> Bool {
            let wanted = Array(text.unicodeScalars)
            guard offset + wanted.count <= characters.count else { return false }
            return Array(characters[offset..<(offset + wanted.count)]) == wanted
        }
        while index < characters.count {
            let character = characters[index]
            if let delimiter = state.string {
                if delimiter == "\"\"\"" && character == "\\" {
                    index += 2
                } else if at(index, delimiter) {
                    // Up to two more quotes belong to the string's content.
                    var end = index + 3
                    while end < characters.count && characters[end] == delimiter.unicodeScalars.first && end < index + 5
                    {
                        end += 1
                    }
                    index = end
                    state.string = nil
                } else {
                    index += 1
                }
                continue
            }
            switch character {
            case "#": return state
            case "\"", "'":
                let triple = String(repeating: String(character), count: 3)
                if at(index, triple) {
                    state.string = triple
                    index += 3
                    continue
                }
                index += 1
                while index < characters.count && characters[index] != character {
                    index += character == "\"" && characters[index] == "\\" ? 2 : 1
                }
                index += 1
            case "[":
                state.depth += 1
                index += 1
            case "]":
                state.depth = max(0, state.depth - 1)
                index += 1
            default: index += 1
            }
        }
        return state
    }

    /// The table headers, skipping lines inside multi-line strings and arrays.
    func headers() throws(WiringError) -> [Header] {
        try parsed().headers
    }

    /// The headers, and the key lines of the root table and of every table, with their lines.
    func parsed() throws(WiringError) -> (headers: [Header], keys: [(line: Int, table: [String], key: [String])]) {
        var headers: [Header] = []
        var keys: [(line: Int, table: [String], key: [String])] = []
        var state = ScanState()
        var table: [String] = []
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingSpaces
            if state.isFree && trimmed.hasPrefix("[") {
                let array = trimmed.hasPrefix("[[")
                let body = trimmed.dropFirst(array ? 2 : 1)
                guard let close = body.firstIndex(of: "]") else {
                    throw WiringError(.malformed, "line \(index + 1): a table header without ']'")
                }
                table = try Self.keyPath(body[..<close], line: index + 1)
                headers.append(Header(line: index, path: table))
                continue
            }
            if state.isFree, !trimmed.isEmpty, !trimmed.hasPrefix("#"),
                let equals = Self.keyEnd(trimmed)
            {
                let key = try Self.keyPath(trimmed[..<equals], line: index + 1)
                keys.append((index, table, key))
                state = Self.scan(String(trimmed[trimmed.index(after: equals)...]), from: state)
            } else {
                state = Self.scan(line, from: state)
            }
        }
        if state.string != nil { throw WiringError(.malformed, "a multi-line string is never closed") }
        return (headers, keys)
    }

    /// Where the `=` of a key line is (outside the key's quotes).
    static func keyEnd(_ line: String) -> String.Index? {
        var quote: Character?
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "=" {
                return index
            }
        }
        return nil
    }

    /// Whether a table `path` or one below it is in the file.
    public func hasTable(_ path: [String]) throws(WiringError) -> Bool {
        try headers().contains { $0.path.starts(with: path) }
    }

    /// The string value of `key` in the table `path` (for `ls`: where an entry points).
    public func string(_ key: String, inTable path: [String]) -> String? {
        strings(key, inTable: path)?.first
    }

    /// The quoted strings of `key`'s value in the table `path`: one for a string, each of an
    /// array of strings written on one line.
    public func strings(_ key: String, inTable path: [String]) -> [String]? {
        guard let all = try? headers(), let header = all.first(where: { $0.path == path }) else { return nil }
        let end = all.first { $0.line > header.line }?.line ?? lines.count
        for line in lines[(header.line + 1)..<end] {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingSpaces == key else { continue }
            var found: [String] = []
            var rest = Substring(parts[1].trimmingSpaces)
            while let open = rest.firstIndex(where: { $0 == "\"" || $0 == "'" }) {
                let quote = rest[open]
                let body = rest[rest.index(after: open)...]
                guard let close = body.firstIndex(of: quote) else { break }
                found.append(String(body[..<close]))
                rest = body[body.index(after: close)...]
            }
            return found
        }
        return nil
    }

    /// A definition that stops `[path]` from being added as a table of its own (a dotted key or
    /// an inline table for it, or its parent as an inline table); nil when there is none.
    public func otherDefinition(of path: [String]) throws(WiringError) -> String? {
        guard let parent = path.first else { return nil }
        for (line, table, key) in try parsed().keys {
            let full = table + key
            if full == [parent] {
                return "line \(line + 1): \(parent) is an inline table"
            }
            if !table.starts(with: path) && full.starts(with: path) {
                return "line \(line + 1): \(lines[line].trimmingSpaces)"
            }
        }
        return nil
    }

    /// Removes the table `path` and every table below it, each with one blank line before it
    /// if there is one; comments after a block's last key, which belong to what follows, stay.
    @discardableResult
    public mutating func removeTables(_ path: [String]) throws(WiringError) -> Bool {
        let all = try headers()
        var kept = lines
        var removed = false
        for (position, header) in all.enumerated().reversed() where header.path.starts(with: path) {
            var end = position + 1 < all.count ? all[position + 1].line : kept.count
            while end - 1 > header.line, Self.isBlankOrComment(kept[end - 1]) { end -= 1 }
            var start = header.line
            if start > 0, kept[start - 1].trimmingSpaces.isEmpty { start -= 1 }
            kept.removeSubrange(start..<end)
            removed = true
        }
        text = kept.joined(separator: "\n")
        if text.allSatisfy(\.isWhitespace) { text = "" }
        return removed
    }

    /// Appends `[path]` with `entries` at the end of the file, after one blank line.
    public mutating func append(_ path: [String], entries: [(key: String, value: SettingsValue)]) {
        let newline = self.newline
        var block = "[" + path.map(Self.key).joined(separator: ".") + "]" + newline
        for (key, value) in entries { block += Self.key(key) + " = " + Self.render(value) + newline }
        if text.allSatisfy(\.isWhitespace) {
            text = block
        } else {
            text += (text.utf8.last == 10 ? "" : newline) + newline + block
        }
    }

    // MARK: - Syntax

    static func isBlankOrComment(_ line: String) -> Bool {
        let trimmed = line.trimmingSpaces
        return trimmed.isEmpty || trimmed.hasPrefix("#")
    }

    /// A key as TOML writes it: bare where it can be, else a basic string.
    static func key(_ name: String) -> String {
        let bare = !name.isEmpty && name.unicodeScalars.allSatisfy { Self.bareKey.contains($0) }
        return bare ? name : SettingsValue.quoted(name)
    }

    private static let bareKey = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-".unicodeScalars)

    static func render(_ value: SettingsValue) -> String {
        switch value {
        case .string(let text): return SettingsValue.quoted(text)
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .array(let items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{ " + members.map { key($0.key) + " = " + render($0.value) }.joined(separator: ", ") + " }"
        }
    }

    /// `a."b.c".d` as ["a", "b.c", "d"].
    static func keyPath(_ text: Substring, line: Int) throws(WiringError) -> [String] {
        var path: [String] = []
        var current = ""
        var quote: Character?
        var quoted = false
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                quoted = true
            } else if character == "." {
                path.append(quoted ? current : current.trimmingSpaces)
                current = ""
                quoted = false
            } else if character != " " && character != "\t" {
                current.append(character)
            }
        }
        guard quote == nil else { throw WiringError(.malformed, "line \(line): a quoted key that is never closed") }
        path.append(quoted ? current : current.trimmingSpaces)
        return path
    }

}

extension StringProtocol {
    var trimmingSpaces: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\u{FEFF}" }
        return String(drop(while: blank).reversed().drop(while: blank).reversed())
    }
}
