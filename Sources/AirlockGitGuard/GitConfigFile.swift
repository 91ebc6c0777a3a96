import AirlockSystem

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

    /// Reads as git 2.39's `config.c` does (`git_parse_source`, `get_base_var`, `get_value`,
    /// `parse_value`), character for character: a file both read differently would let a
    /// setting past the check that git then sees.
    private struct Parser {
        let text: [Unicode.Scalar]
        var index = 0
        var line = 1

        init(_ text: [Unicode.Scalar]) {
            var scalars = text
            // git skips a UTF-8 byte order mark at the start.
            if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
            // git's get_next_char reads "\r\n" as "\n".
            var folded: [Unicode.Scalar] = []
            folded.reserveCapacity(scalars.count)
            for (position, scalar) in scalars.enumerated() {
                if scalar == "\r" && position + 1 < scalars.count && scalars[position + 1] == "\n" { continue }
                folded.append(scalar)
            }
            self.text = folded
        }

        /// The next character, "\n" at the end (as git's get_next_char).
        mutating func next() -> Unicode.Scalar {
            guard index < text.count else { return "\n" }
            let scalar = text[index]
            index += 1
            if scalar == "\n" { line += 1 }
            return scalar
        }

        var atEnd: Bool { index >= text.count }

        func failure(_ reason: String) -> ParseError { ParseError(line: line, reason: reason) }

        static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
            scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{0B}"
                || scalar == "\u{0C}"
        }

        static func isKeyChar(_ scalar: Unicode.Scalar) -> Bool {
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "-"
        }

        static func isAlpha(_ scalar: Unicode.Scalar) -> Bool {
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
        }

        mutating func parse() throws(ParseError) -> [Entry] {
            var entries: [Entry] = []
            var section: String?
            var comment = false
            while true {
                if atEnd { return entries }
                let scalar = next()
                if scalar == "\n" {
                    comment = false
                    continue
                }
                if comment || Self.isSpace(scalar) { continue }
                if scalar == "#" || scalar == ";" {
                    comment = true
                    continue
                }
                if scalar == "[" {
                    section = try baseVariable()
                    continue
                }
                guard Self.isAlpha(scalar) else { throw failure("a bad character") }
                guard let section else { throw failure("a setting before any [section]") }
                var name = String(Character(scalar)).lowercased()
                var current = next()
                while Self.isKeyChar(current) {
                    name += String(Character(current)).lowercased()
                    current = next()
                }
                while current == " " || current == "\t" { current = next() }
                let value: String?
                if current == "\n" {
                    value = nil
                } else if current == "=" {
                    value = try parseValue()
                } else {
                    throw failure("a setting without =")
                }
                entries.append(Self.entry(base: section, name: name, value: value))
            }
        }

        /// `section.subsection` (as git keeps it: section lowercased) into an entry.
        static func entry(base: String, name: String, value: String?) -> Entry {
            guard let dot = base.firstIndex(of: ".") else {
                return Entry(section: base, subsection: nil, name: name, value: value)
            }
            return Entry(
                section: String(base[..<dot]), subsection: String(base[base.index(after: dot)...]), name: name,
                value: value)
        }

        /// After "[": the section (old-style subsections lowercased with it) and a quoted
        /// subsection as written.
        mutating func baseVariable() throws(ParseError) -> String {
            var name = ""
            while true {
                guard !atEnd else { throw failure("an unterminated section header") }
                let scalar = next()
                if scalar == "]" { return name }
                if Self.isSpace(scalar) { return try extendedBaseVariable(name, after: scalar) }
                guard Self.isKeyChar(scalar) || scalar == "." else { throw failure("a bad section name") }
                name += String(Character(scalar)).lowercased()
            }
        }

        mutating func extendedBaseVariable(_ base: String, after first: Unicode.Scalar) throws(ParseError) -> String {
            var scalar = first
            repeat {
                if scalar == "\n" { throw failure("an incomplete section header") }
                scalar = next()
            } while Self.isSpace(scalar)
            guard scalar == "\"" else { throw failure("a bad section header") }
            var name = base + "."
            while true {
                var character = next()
                if character == "\n" { throw failure("an incomplete section header") }
                if character == "\"" { break }
                if character == "\\" {
                    character = next()
                    if character == "\n" { throw failure("an incomplete section header") }
                }
                name.unicodeScalars.append(character)
            }
            guard next() == "]" else { throw failure("a section header without ]") }
            return name
        }

        /// git's parse_value: quotes group; blanks outside quotes count only once something is
        /// in the value, and each becomes one space; `#`/`;` outside quotes start a comment;
        /// `\\` escapes, and continues the line before a newline.
        mutating func parseValue() throws(ParseError) -> String {
            var value: [Unicode.Scalar] = []
            var quote = false
            var comment = false
            var spaces = 0
            while true {
                let scalar = next()
                if scalar == "\n" {
                    if quote { throw failure("an unterminated quote") }
                    return String(String.UnicodeScalarView(value))
                }
                if comment { continue }
                if Self.isSpace(scalar) && !quote {
                    if !value.isEmpty { spaces += 1 }
                    continue
                }
                if !quote && (scalar == ";" || scalar == "#") {
                    comment = true
                    continue
                }
                value += Array(repeating: " ", count: spaces)
                spaces = 0
                if scalar == "\\" {
                    switch next() {
                    case "\n": continue
                    case "t": value.append("\t")
                    case "b": value.append("\u{8}")
                    case "n": value.append("\n")
                    case "\\": value.append("\\")
                    case "\"": value.append("\"")
                    default: throw failure("a bad escape")
                    }
                    continue
                }
                if scalar == "\"" {
                    quote.toggle()
                    continue
                }
                value.append(scalar)
            }
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
    public static func refusal(_ entry: GitConfigFile.Entry, context: GitCheckedContent.Context) -> String? {
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
        case "core.worktree":
            // git checks out there: only a submodule's own directory in the workspace.
            guard context.nested else { return "core.worktree would send the host's checkouts elsewhere" }
            let target = GitCheckedContent.lexicallyResolved(
                value.hasPrefix("/") ? value : context.directory + "/" + value)
            guard context.roots.contains(where: { target.hasPrefix($0 + "/") }) else {
                return "core.worktree leads outside the workspace"
            }
            // Through a symbolic link it would lead anywhere (as the sandbox sees the path,
            // which is the host's for the workspace).
            let resolved = GitCheckedContent.resolvedOnDisk(target)
            guard resolved == target || context.roots.contains(where: { resolved.hasPrefix($0 + "/") }) else {
                return "core.worktree leads outside the workspace through a symbolic link"
            }
        default:
            break
        }
        return nil
    }

    /// Why replacing `old` by `new` is refused, or nil when every addition is safe.
    public static func refusal(replacing old: String?, with new: String, context: GitCheckedContent.Context)
        -> String?
    {
        let parsedNew: GitConfigFile
        do {
            parsedNew = try GitConfigFile(parsing: new)
        } catch {
            return "the new configuration cannot be read (\(error))"
        }
        // An unreadable old file counts as empty: every setting of the new one must be safe.
        let parsedOld = old.flatMap { try? GitConfigFile(parsing: $0) }
        let refusals = GitConfigFile.additions(from: parsedOld, to: parsedNew).compactMap {
            refusal($0, context: context)
        }
        return refusals.isEmpty ? nil : refusals.joined(separator: "; ")
    }
}
