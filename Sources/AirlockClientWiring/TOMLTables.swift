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

    private var lines: [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// The table headers, skipping lines inside multi-line strings.
    func headers() throws(WiringError) -> [Header] {
        var found: [Header] = []
        var open: String?
        for (index, line) in lines.enumerated() {
            if let delimiter = open {
                if line.contains(delimiter) { open = Self.unclosedDelimiter(after: line, closing: delimiter) }
                continue
            }
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("[") {
                let array = trimmed.hasPrefix("[[")
                let body = trimmed.dropFirst(array ? 2 : 1)
                guard let close = body.firstIndex(of: "]") else {
                    throw WiringError(.malformed, "line \(index + 1): a table header without ']'")
                }
                found.append(Header(line: index, path: try Self.keyPath(body[..<close], line: index + 1)))
            } else {
                open = Self.unclosedDelimiter(after: line, closing: nil)
            }
        }
        return found
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

    /// A definition of `path` that is not a `[table]` of its own (a dotted key or an inline
    /// table), which this editor does not rewrite; nil when there is none.
    public func otherDefinition(of path: [String]) throws(WiringError) -> String? {
        let all = try headers()
        guard let parent = path.first, let name = path.dropFirst().first else { return nil }
        let rootEnd = all.first?.line ?? lines.count
        for (index, line) in lines[0..<rootEnd].enumerated() where line.trimmingSpaces.hasPrefix(parent) {
            let rest = line.trimmingSpaces.dropFirst(parent.count).trimmingSpaces
            if rest.hasPrefix(".") || rest.hasPrefix("=") { return "line \(index + 1): \(line.trimmingSpaces)" }
        }
        for (position, header) in all.enumerated() where header.path == [parent] {
            let end = position + 1 < all.count ? all[position + 1].line : lines.count
            for index in (header.line + 1)..<end {
                let key = lines[index].split(separator: "=", maxSplits: 1).first.map { $0.trimmingSpaces } ?? ""
                if let first = try? Self.keyPath(Substring(key), line: index + 1).first, first == name {
                    return "line \(index + 1): \(lines[index].trimmingSpaces)"
                }
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
        var block = "[" + path.map(Self.key).joined(separator: ".") + "]\n"
        for (key, value) in entries { block += Self.key(key) + " = " + Self.render(value) + "\n" }
        if text.allSatisfy(\.isWhitespace) {
            text = block
        } else {
            text += (text.hasSuffix("\n") ? "" : "\n") + "\n" + block
        }
    }

    // MARK: - Syntax

    static func isBlankOrComment(_ line: Substring) -> Bool {
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

    /// The multi-line string delimiter left open at the end of `line` (nil if none), given the
    /// one open at its start.
    static func unclosedDelimiter(after line: Substring, closing: String?) -> String? {
        var open = closing
        var rest = line[...]
        while !rest.isEmpty {
            if let delimiter = open {
                guard let range = rest.range(of: delimiter) else { return delimiter }
                rest = rest[range.upperBound...]
                open = nil
                continue
            }
            guard let first = rest.first else { break }
            if first == "#" { return nil }
            if rest.hasPrefix("\"\"\"") || rest.hasPrefix("'''") {
                let delimiter = String(rest.prefix(3))
                open = delimiter
                rest = rest.dropFirst(3)
            } else if first == "\"" || first == "'" {
                var index = rest.index(after: rest.startIndex)
                while index < rest.endIndex && rest[index] != first {
                    if first == "\"" && rest[index] == "\\" { index = rest.index(after: index) }
                    if index < rest.endIndex { index = rest.index(after: index) }
                }
                rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
            } else {
                rest = rest.dropFirst()
            }
        }
        return open
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(
            drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }
                .reversed())
    }
}
