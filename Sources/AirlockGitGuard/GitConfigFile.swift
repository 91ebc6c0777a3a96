/// A git configuration file read as git reads it: `[section "subsection"]` headers, `key = value`
/// lines, quoting, escapes, continuation lines and comments. Enough to tell which settings a
/// new version of a file adds or changes; never written back.
public struct GitConfigFile: Equatable, Sendable {
    /// One setting: `section.subsection.name` as git spells it in `git config --list` (section
    /// and name lowercased, subsection as written), and its value (nil for a bare `name`,
    /// which git reads as true).
    public struct Entry: Hashable, Sendable {
        public var section: String
        public var subsection: String?
        public var name: String
        public var value: String?

        public var key: String {
            [section, subsection, name].compactMap { $0 }.joined(separator: ".")
        }
    }

    public var entries: [Entry]

    /// Why a file could not be read.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public init(parsing text: String) throws(ParseError) {
        var parser = Parser(Array(text.unicodeScalars))
        entries = try parser.parse()
    }

    /// The entries of `new` that `old` does not have (a changed value counts as new), each as
    /// often as it is added.
    public static func additions(from old: GitConfigFile?, to new: GitConfigFile) -> [Entry] {
        var remaining: [Entry: Int] = [:]
        for entry in old?.entries ?? [] { remaining[entry, default: 0] += 1 }
        var added: [Entry] = []
        for entry in new.entries {
            if let count = remaining[entry], count > 0 {
                remaining[entry] = count - 1
            } else {
                added.append(entry)
            }
        }
        return added
    }

    private struct Parser {
        let text: [Unicode.Scalar]
        var index = 0
        var line = 1

        init(_ text: [Unicode.Scalar]) { self.text = text }

        var atEnd: Bool { index >= text.count }
        var current: Unicode.Scalar? { atEnd ? nil : text[index] }

        mutating func advance() {
            if current == "\n" { line += 1 }
            index += 1
        }

        func failure(_ reason: String) -> ParseError { ParseError(line: line, reason: reason) }

        mutating func parse() throws(ParseError) -> [Entry] {
            var entries: [Entry] = []
            var section: (name: String, subsection: String?)?
            while !atEnd {
                skipBlanks()
                guard let scalar = current else { break }
                switch scalar {
                case "\n":
                    advance()
                case "#", ";":
                    skipToLineEnd()
                case "[":
                    section = try header()
                default:
                    guard let (name, subsection) = section else { throw failure("a setting before any [section]") }
                    let (key, value) = try setting()
                    entries.append(Entry(section: name, subsection: subsection, name: key, value: value))
                }
            }
            return entries
        }

        mutating func skipBlanks() {
            while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\r" { advance() }
        }

        mutating func skipToLineEnd() {
            while let scalar = current, scalar != "\n" { advance() }
        }

        /// `[section]`, `[section "sub"]` or the old `[section.sub]`.
        mutating func header() throws(ParseError) -> (String, String?) {
            advance()
            var name = ""
            while let scalar = current, scalar != "]" && scalar != " " && scalar != "\t" && scalar != "\"" {
                guard isNameScalar(scalar) || scalar == "." else { throw failure("a bad section name") }
                name.unicodeScalars.append(scalar)
                advance()
            }
            skipBlanks()
            var subsection: String?
            if current == "\"" {
                advance()
                var text = ""
                while true {
                    guard let scalar = current, scalar != "\n" else { throw failure("an unterminated subsection") }
                    advance()
                    if scalar == "\"" { break }
                    if scalar == "\\" {
                        guard let escaped = current, escaped != "\n" else { throw failure("a bad escape") }
                        text.unicodeScalars.append(escaped)
                        advance()
                    } else {
                        text.unicodeScalars.append(scalar)
                    }
                }
                subsection = text
                skipBlanks()
            }
            guard current == "]" else { throw failure("a section header without ]") }
            advance()
            guard !name.isEmpty else { throw failure("an empty section name") }
            if subsection == nil, let dot = name.firstIndex(of: ".") {
                // The deprecated form lowercases the subsection too.
                subsection = String(name[name.index(after: dot)...]).lowercased()
                name = String(name[..<dot])
            }
            return (name.lowercased(), subsection)
        }

        func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "-"
        }

        /// `name`, `name = value`, up to the end of its (possibly continued) line.
        mutating func setting() throws(ParseError) -> (String, String?) {
            var name = ""
            while let scalar = current, isNameScalar(scalar) {
                name.unicodeScalars.append(scalar)
                advance()
            }
            guard let first = name.unicodeScalars.first,
                (first >= "a" && first <= "z") || (first >= "A" && first <= "Z")
            else { throw failure("a bad setting name") }
            skipBlanks()
            switch current {
            case nil, "\n":
                return (name.lowercased(), nil)
            case "#", ";":
                skipToLineEnd()
                return (name.lowercased(), nil)
            case "=":
                advance()
                return (name.lowercased(), try value())
            default:
                throw failure("a setting without =")
            }
        }

        /// A value as git reads it: quotes group, escapes, `\` continues the line, `#`/`;`
        /// outside quotes starts a comment, blanks at either end are dropped.
        mutating func value() throws(ParseError) -> String {
            var result = ""
            var quoted = false
            var pendingBlanks = ""
            var started = false
            while let scalar = current {
                if scalar == "\n" {
                    if quoted { throw failure("an unterminated quote") }
                    break
                }
                advance()
                if !quoted && (scalar == "#" || scalar == ";") {
                    skipToLineEnd()
                    break
                }
                if !quoted && (scalar == " " || scalar == "\t" || scalar == "\r") {
                    if started { pendingBlanks.unicodeScalars.append(scalar) }
                    continue
                }
                result += pendingBlanks
                pendingBlanks = ""
                started = true
                switch scalar {
                case "\"":
                    quoted.toggle()
                case "\\":
                    guard let escaped = current else { throw failure("a bad escape") }
                    advance()
                    switch escaped {
                    case "\n": break
                    case "n": result += "\n"
                    case "t": result += "\t"
                    case "b": result += "\u{8}"
                    case "\\", "\"": result.unicodeScalars.append(escaped)
                    default: throw failure("a bad escape \\\(escaped)")
                    }
                default:
                    result.unicodeScalars.append(scalar)
                }
            }
            return result
        }
    }
}

/// Which settings a sandboxed writer may add to a repository's configuration: those that
/// describe the repository and its remotes, never one that names a program, a hook directory,
/// an included file or a transport that runs a command.
public enum GitConfigSafety {
    /// Keys by `section.name` (any subsection) that are plain data.
    static let safeKeys: Set<String> = [
        "core.repositoryformatversion", "core.filemode", "core.bare", "core.logallrefupdates", "core.symlinks",
        "core.ignorecase", "core.precomposeunicode", "core.worktree", "core.autocrlf", "core.eol", "core.safecrlf",
        "core.sparsecheckout", "core.sparsecheckoutcone", "core.quotepath", "core.abbrev", "core.untrackedcache",
        "core.splitindex", "core.commitgraph", "core.checkstat", "core.trustctime", "core.preloadindex",
        "core.compression", "core.bigfilethreshold",
        "remote.url", "remote.pushurl", "remote.fetch", "remote.push", "remote.mirror", "remote.tagopt",
        "remote.prune", "remote.prunetags", "remote.promisor", "remote.partialclonefilter",
        "remote.skipdefaultupdate", "remote.skipfetchall",
        "branch.remote", "branch.pushremote", "branch.merge", "branch.rebase", "branch.description",
        "submodule.url", "submodule.active", "submodule.branch", "submodule.fetchrecursesubmodules",
        "submodule.ignore", "submodule.shallow", "submodule.update", "submodule.recurse",
        "user.name", "user.email", "init.defaultbranch", "extensions.objectformat", "lfs.repositoryformatversion",
        "gc.auto", "gc.autopacklimit", "gc.autodetach", "fetch.prune", "fetch.prunetags", "fetch.recursesubmodules",
        "pull.rebase", "pull.ff", "merge.ff", "merge.conflictstyle", "push.default", "push.autosetupremote",
        "rebase.autosquash", "rebase.autostash", "rebase.updaterefs", "status.showuntrackedfiles",
        "status.submodulesummary", "diff.renames", "diff.algorithm", "index.version", "feature.manyfiles",
    ]
    /// Sections whose every key is display only.
    static let safeSections: Set<String> = ["advice", "color"]

    /// Why adding this entry is refused, or nil when it is safe.
    public static func refusal(_ entry: GitConfigFile.Entry) -> String? {
        let key = entry.section + "." + entry.name
        guard safeKeys.contains(key) || safeSections.contains(entry.section) else {
            return "\(entry.key) is not a setting a sandbox may add"
        }
        let value = entry.value ?? ""
        switch key {
        case "remote.url", "remote.pushurl", "submodule.url":
            // Transports that run a command of the URL's choosing.
            let lowered = value.lowercased()
            if lowered.hasPrefix("ext::") || lowered.hasPrefix("fd::") {
                return "\(entry.key) uses a transport that runs a command"
            }
        case "submodule.update":
            if value.hasPrefix("!") { return "\(entry.key) runs a command" }
        default:
            break
        }
        return nil
    }

    /// Why replacing `old` by `new` is refused, or nil when every addition is safe.
    public static func refusal(replacing old: String?, with new: String) -> String? {
        let parsedNew: GitConfigFile
        do {
            parsedNew = try GitConfigFile(parsing: new)
        } catch {
            return "the new configuration cannot be read (\(error))"
        }
        // An unreadable old file counts as empty: every setting of the new one must be safe.
        let parsedOld = old.flatMap { try? GitConfigFile(parsing: $0) }
        let refusals = GitConfigFile.additions(from: parsedOld, to: parsedNew).compactMap(refusal)
        return refusals.isEmpty ? nil : refusals.joined(separator: "; ")
    }
}
