import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Watches the guarded workspaces for a `.git` that appears while the sandbox runs: a
/// repository the agent makes (`git init`, `git clone`, a `.git` renamed into place) or a
/// `.git` file that points anywhere. Git on the host would take hooks and config from it, so it
/// is moved out of the host's view at once, into the sandbox's quarantine, and journalled.
/// A `.git` file that leads into a filtered git directory's `worktrees/` or `modules/` (what
/// `git worktree add` and a submodule checkout write) is left alone: the filter guards where
/// it leads.
///
/// Existing repositories are not its business: their `.git` is behind a ``GitDirFilter``.
public final class NewRepositoryWatcher: @unchecked Sendable {
    /// A guarded directory tree: where it is on the host and where the sandbox sees it.
    public struct Root: Sendable {
        public var host: String
        public var inside: String

        public init(host: String, inside: String) {
            self.host = host
            self.inside = inside
        }
    }

    let roots: [Root]
    /// Host paths of the git directories behind filters, which `.git` files may lead into.
    let filtered: [String]
    /// Every `.git` there was at start: the user's, left where they are.
    let known: Set<String>
    let quarantine: String
    let journal: GuardJournal
    private let inotify: Int32
    private var watched: [Int32: String] = [:]
    /// `.git` files left where they are, watched for a rewrite.
    private var watchedFiles: [Int32: String] = [:]
    private var serial = 0
    /// Directories not watched because the user's inotify limit ran out.
    public private(set) var unwatched = 0

    static let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)

    public init(roots: [Root], filtered: [String], known: Set<String>, quarantine: String, journal: GuardJournal)
        throws
    {
        self.roots = roots
        self.filtered = filtered
        self.known = known
        self.quarantine = quarantine
        self.journal = journal
        inotify = inotify_init1(Int32(IN_CLOEXEC))
        guard inotify >= 0 else {
            throw GitGuardError("cannot watch the workspace: inotify: \(String(cString: strerror(errno)))")
        }
        for root in roots { watchTree(root.host) }
    }

    /// Watches until the process ends.
    public func serve() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            var offset = 0
            while offset + 16 <= count {
                let wd = Self.load32(buffer, offset)
                let mask = UInt32(bitPattern: Self.load32(buffer, offset + 4))
                let length = Int(Self.load32(buffer, offset + 12))
                let nameBytes = buffer[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                offset += 16 + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    // Events were lost: look everywhere again.
                    for root in roots { watchTree(root.host) }
                    continue
                }
                if mask & UInt32(IN_IGNORED) != 0 {
                    watched[wd] = nil
                    watchedFiles[wd] = nil
                    continue
                }
                if let file = watchedFiles[wd] {
                    if mask & UInt32(IN_MODIFY | IN_CLOSE_WRITE) != 0 { inspect(file) }
                    continue
                }
                guard let directory = watched[wd], !nameBytes.isEmpty else { continue }
                let name = String(decoding: nameBytes, as: UTF8.self)
                let path = directory + "/" + name
                if name == ".git" {
                    inspect(path)
                } else if mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
                    watchTree(path)
                }
            }
        }
    }

    private static func load32(_ bytes: [UInt8], _ at: Int) -> Int32 {
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[at + index]) << (8 * UInt32(index)) }
        return Int32(bitPattern: value)
    }

    /// Watches a directory and every directory under it, then looks for a `.git` made before
    /// the watch was in place. Existing git directories are skipped: filters guard them.
    func watchTree(_ top: String) {
        var queue = [top]
        while let directory = queue.popLast() {
            if filtered.contains(directory) || Files.isWithin(directory, quarantine) { continue }
            let wd = inotify_add_watch(inotify, directory, Self.mask | UInt32(IN_ONLYDIR | IN_DONT_FOLLOW))
            if wd < 0 {
                if errno == ENOSPC { unwatched += 1 }
                continue
            }
            watched[wd] = directory
            for entry in Files.entries(of: directory) {
                let path = directory + "/" + entry.name
                if entry.name == ".git" {
                    if !known.contains(path) { inspect(path) }
                    continue
                }
                if entry.kind == .directory { queue.append(path) }
            }
        }
    }

    /// Leaves a `.git` that is safe where it is, quarantines any other.
    func inspect(_ path: String) {
        if filtered.contains(path) { return }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFREG {
            // Empty (being written: git reads an empty one as no repository at all) or leading
            // into a filtered directory: left, and watched for what is written to it next.
            if info.st_size == 0 || Self.leadsInto(path, filtered: filtered) != nil {
                let wd = inotify_add_watch(inotify, path, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_DONT_FOLLOW))
                if wd >= 0 { watchedFiles[wd] = path }
                return
            }
        }
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFDIR: kind = "a new repository"
        case S_IFREG: kind = "a .git file that leads outside the guarded git directories"
        case S_IFLNK: kind = "a .git symbolic link"
        default: kind = "a .git of an unexpected type"
        }
        moveAway(path, kind: kind)
    }

    /// For a `.git` file: the filtered git directory its `gitdir:` leads into (under its
    /// `worktrees/` or `modules/`), or nil.
    static func leadsInto(_ file: String, filtered: [String]) -> String? {
        guard let text = Files.readRegularFile(file, limit: 4096) else { return nil }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        guard line.hasPrefix("gitdir: ") else { return nil }
        var target = String(line.dropFirst(8))
        if !target.hasPrefix("/") { target = (file as NSString).deletingLastPathComponent + "/" + target }
        let normalized = Files.absolute(target)
        return filtered.first { gitDirectory in
            Files.isWithin(normalized, gitDirectory + "/worktrees")
                || Files.isWithin(normalized, gitDirectory + "/modules")
        }
    }

    /// Moves a `.git` away from where git would find it: first to a name git ignores, in the
    /// same directory (one rename, at once), then into the sandbox's quarantine.
    private func moveAway(_ path: String, kind: String) {
        serial += 1
        let stamp = "\(Int(Date().timeIntervalSince1970))-\(getpid())-\(serial)"
        let aside = path + ".airlock-quarantined-" + stamp
        guard rename(path, aside) == 0 else { return }
        var keptAt = aside
        let target = quarantine + "/" + stamp
        if (try? Files.makeDirectory(quarantine, mode: 0o700)) != nil, rename(aside, target) == 0 {
            keptAt = target
        }
        journal.record(.init(kind: .quarantined, path: insidePath(path), reason: kind, keptAt: keptAt))
    }

    private func insidePath(_ host: String) -> String {
        for root in roots where Files.isWithin(host, root.host) {
            return root.inside + String(host.dropFirst(root.host.count))
        }
        return host
    }
}
