import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Watches the guarded workspaces for a `.git` that appears while the sandbox runs: a
/// repository the agent makes (`git init`, `git clone`, a `.git` renamed into place) or a
/// `.git` file that points anywhere. Git on the host would take hooks and config from it. A
/// new repository whose control state is what `git init` or `git clone` leaves gets a filter
/// of its own (`adopt`) and stays; any other is moved out of the host's view at once, into the
/// sandbox's quarantine, and journalled.
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
    private var filtered: [String]
    /// The filtered directories by identity, to know one again after a move.
    private var filteredFiles: Set<FileID> = []
    /// Puts a filter in front of a new repository (host path, path inside); false if it could not.
    let adopt: (@Sendable (String, String) -> Bool)?
    /// Whether a process of the sandbox still holds a file (host path) open or mapped, a while
    /// after it was written: a `.git` file so held can change without a word to inotify.
    let isHeld: (@Sendable (String) -> Bool)?
    /// A descriptor or mapping a process of the sandbox holds in a repository (host path) that
    /// does not go through its filter, described; nil if there is none.
    let heldPastFilter: (@Sendable (String) -> String?)?
    /// Repositories adopted while the sandbox runs (see ``AdoptedRepository``), by identity.
    private var adopted: [FileID: AdoptedRepository] = [:]
    /// Watches on their control directories: which repository, and where in it.
    private var adoptedWatches: [Int32: (repository: FileID, path: [String])] = [:]
    /// Directories inotify could not watch (the user's limit ran out): looked through instead
    /// every `pollInterval` seconds.
    private var unwatchedTrees: Set<String> = []
    static let pollInterval: Int32 = 2000
    /// Every `.git` there was at start, by identity: the user's, left where they are. (A path
    /// would also pass what the sandbox puts there after moving the directory above it.)
    let known: Set<FileID>
    let quarantine: String
    let journal: GuardJournal
    private let inotify: Int32
    private var watched: [Int32: String] = [:]
    /// `.git` files left where they are, watched for a rewrite.
    private var watchedFiles: [Int32: String] = [:]
    private var serial = 0

    static let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
    /// What is watched in an adopted repository: opens, and every way to write.
    static let adoptedMask = UInt32(IN_OPEN | IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)
    static let written = UInt32(IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)

    public init(
        roots: [Root], filtered: [(path: String, id: FileID)], known: Set<FileID>, quarantine: String,
        journal: GuardJournal,
        adopt: (@Sendable (String, String) -> Bool)? = nil, isHeld: (@Sendable (String) -> Bool)? = nil,
        heldPastFilter: (@Sendable (String) -> String?)? = nil
    ) throws {
        self.heldPastFilter = heldPastFilter
        self.roots = roots
        self.filtered = filtered.map(\.path)
        self.filteredFiles = Set(filtered.map(\.id))
        self.adopt = adopt
        self.isHeld = isHeld
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
            var ready = pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)
            let timeout = unwatchedTrees.isEmpty && adopted.isEmpty ? -1 : Self.pollInterval
            if poll(&ready, 1, timeout) == 0 {
                lookThroughUnwatched()
                // A write through a mapping raises no event: its mapping is looked for.
                for repository in Array(adopted.keys) { verify(repository, content: true) }
                continue
            }
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            var offset = 0
            var opened: Set<FileID> = []
            var written: Set<FileID> = []
            defer {
                for repository in opened.union(written) {
                    verify(repository, content: written.contains(repository))
                }
            }
            while offset + 16 <= count {
                let wd = Self.load32(buffer, offset)
                let mask = UInt32(bitPattern: Self.load32(buffer, offset + 4))
                let length = Int(Self.load32(buffer, offset + 12))
                let nameBytes = buffer[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                offset += 16 + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    // Events were lost: look everywhere again.
                    for root in roots { watchTree(root.host) }
                    written.formUnion(adopted.keys)
                    continue
                }
                if mask & UInt32(IN_IGNORED) != 0 {
                    watched[wd] = nil
                    watchedFiles[wd] = nil
                    adoptedWatches[wd] = nil
                    continue
                }
                if let place = adoptedWatches[wd], !nameBytes.isEmpty {
                    let name = String(decoding: nameBytes, as: UTF8.self)
                    let path = place.path + [name]
                    let isDirectory = mask & UInt32(IN_ISDIR) != 0
                    let kind = GitControlState.classify(path, isFile: !isDirectory).kind
                    if kind != .data {
                        if isDirectory && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
                            watchAdopted(place.repository, from: path)
                        }
                        if mask & Self.written != 0 {
                            written.insert(place.repository)
                        } else if !isDirectory {
                            opened.insert(place.repository)
                        }
                    }
                    if watched[wd] == nil { continue }
                }
                if let file = watchedFiles[wd] {
                    if mask & UInt32(IN_MODIFY | IN_CLOSE_WRITE) != 0 {
                        inspect(file)
                    }
                    continue
                }
                guard let directory = watched[wd], !nameBytes.isEmpty else { continue }
                let name = String(decoding: nameBytes, as: UTF8.self)
                let path = directory + "/" + name
                if name == ".git" {
                    inspect(path)
                    continue
                }
                if Self.gitDirectoryMarks.contains(name) { inspectDirectory(directory) }
                if mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
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
            if isFiltered(directory) || Files.isWithin(directory, quarantine) { continue }
            let wd = inotify_add_watch(inotify, directory, Self.mask | UInt32(IN_ONLYDIR | IN_DONT_FOLLOW))
            if wd < 0 {
                if errno == ENOSPC && unwatchedTrees.insert(directory).inserted && unwatchedTrees.count == 1 {
                    journal.record(
                        .init(
                            kind: .refused, path: insidePath(directory),
                            reason: "inotify ran out of watches (fs.inotify.max_user_watches): directories "
                                + "from here on are looked through every 2 s instead"))
                }
                if errno == ENOSPC { lookThrough(directory) }
                continue
            }
            watched[wd] = directory
            if !isKnown(directory) { inspectDirectory(directory) }
            for entry in Files.entries(of: directory) {
                let path = directory + "/" + entry.name
                if entry.name == ".git" {
                    if !isKnown(path) { inspect(path) }
                    continue
                }
                if entry.kind == .directory { queue.append(path) }
            }
        }
    }

    /// Leaves a `.git` that is safe where it is, quarantines any other.
    func inspect(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        // A filtered repository the sandbox moved: its filter went with it.
        if (info.st_mode & S_IFMT) == S_IFDIR, filteredFiles.contains(FileID(info)) {
            filtered.append(path)
            return
        }
        if (info.st_mode & S_IFMT) == S_IFREG {
            // Empty (being written: git reads an empty one as no repository at all) or leading
            // into a filtered directory: left, and watched for what is written to it next.
            if info.st_size == 0 || Self.leadsInto(path, filtered: filteredNow, roots: roots) != nil {
                // Written, yet still open or mapped a while later: a write through a mapping
                // would raise no event. (git's own write is over in a moment.)
                if info.st_size > 0, let isHeld, isHeld(path) {
                    moveAway(path, kind: "a .git file kept open or mapped after it was written")
                    return
                }
                let wd = inotify_add_watch(inotify, path, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_DONT_FOLLOW))
                if wd >= 0 { watchedFiles[wd] = path }
                return
            }
        }
        if (info.st_mode & S_IFMT) == S_IFDIR, let adopt, GitRepositoryCheck.problem(in: path) == nil,
            adopt(path, insidePath(path))
        {
            // Behind a filter now; what was written before it was in place is checked again.
            guard let problem = GitRepositoryCheck.problem(in: path) else {
                filtered.append(path)
                if let id = FileID(path: path) { filteredFiles.insert(id) }
                startWatching(adopted: path, movesHead: false)
                return
            }
            moveAway(path, kind: "a new repository that \(problem)")
            return
        }
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFDIR: kind = "a new repository" + (GitRepositoryCheck.problem(in: path).map { " that \($0)" } ?? "")
        case S_IFREG: kind = "a .git file that leads outside the guarded git directories"
        case S_IFLNK: kind = "a .git symbolic link"
        default: kind = "a .git of an unexpected type"
        }
        moveAway(path, kind: kind)
    }

    /// Without a watch, a directory tree is looked through: what `watchTree` would inspect.
    private func lookThrough(_ top: String) {
        var queue = [top]
        while let directory = queue.popLast() {
            if isFiltered(directory) || Files.isWithin(directory, quarantine) { continue }
            if !isKnown(directory) { inspectDirectory(directory) }
            for entry in Files.entries(of: directory) {
                let path = directory + "/" + entry.name
                if entry.name == ".git" {
                    if !isKnown(path) { inspect(path) }
                } else if entry.kind == .directory {
                    queue.append(path)
                }
            }
        }
    }

    private func lookThroughUnwatched() {
        for tree in unwatchedTrees.sorted() {
            guard Files.isDirectory(tree) else {
                unwatchedTrees.remove(tree)
                continue
            }
            lookThrough(tree)
        }
    }

    /// For a `.git` file: the filtered git directory whose `worktrees/<id>` or `modules/<name>`
    /// its `gitdir:` leads to, or nil. Read as git reads it: the whole file is the line, less
    /// the line ends at its end (a path with a line break in it is refused).
    static func leadsInto(_ file: String, filtered: [String], roots: [Root] = []) -> String? {
        guard let text = Files.readRegularFile(file, limit: 4096), text.hasPrefix("gitdir: ") else { return nil }
        var target = Substring(text.dropFirst(8))
        while target.hasSuffix("\n") || target.hasSuffix("\r") { target = target.dropLast() }
        guard !target.isEmpty, !target.contains("\n"), !target.contains("\r"), !target.contains("\0") else {
            return nil
        }
        var path = String(target)
        if !path.hasPrefix("/") {
            path = (file as NSString).deletingLastPathComponent + "/" + path
        } else if let root = roots.first(where: { Files.isWithin(path, $0.inside) }) {
            // Written inside: the sandbox sees a mount at another path than the host.
            path = root.host + String(path.dropFirst(root.inside.count))
        }
        let normalized = Files.absolute(path)
        return filtered.first { gitDirectory in
            guard normalized.hasPrefix(gitDirectory + "/") else { return false }
            let components = normalized.dropFirst(gitDirectory.count + 1).split(separator: "/").map(String.init)
            return GitControlState.isNestedGitDirectory(components)
        }
    }

    /// A file's identity, which a rename keeps.
    public struct FileID: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }

        public init?(path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            self.init(info)
        }
    }

    /// Names whose appearance can make a directory a git directory of its own (a bare
    /// repository: git takes one for a repository when run inside it).
    static let gitDirectoryMarks: Set<String> = ["HEAD", "objects", "refs", "commondir"]

    /// What git's `is_git_directory` looks for: a HEAD, and objects and refs (or a commondir).
    static func looksLikeGitDirectory(_ directory: String) -> Bool {
        var info = stat()
        guard lstat(directory + "/HEAD", &info) == 0 else { return false }
        if lstat(directory + "/commondir", &info) == 0 { return true }
        return Files.isDirectory(directory + "/objects") && Files.isDirectory(directory + "/refs")
    }

    /// A directory (not named `.git`) that git would take for a repository: guarded by a
    /// filter of its own when it is clean, else its HEAD is moved away, which makes it none.
    func inspectDirectory(_ directory: String) {
        guard !isFiltered(directory), Self.looksLikeGitDirectory(directory) else { return }
        if let adopt, GitRepositoryCheck.problem(in: directory) == nil, adopt(directory, insidePath(directory)) {
            guard let problem = GitRepositoryCheck.problem(in: directory) else {
                filtered.append(directory)
                if let id = FileID(path: directory) { filteredFiles.insert(id) }
                startWatching(adopted: directory, movesHead: true)
                return
            }
            moveAway(directory + "/HEAD", kind: "the HEAD of a directory git takes for a repository, that \(problem)")
            return
        }
        let reason = GitRepositoryCheck.problem(in: directory).map { ", that \($0)" } ?? ""
        moveAway(directory + "/HEAD", kind: "the HEAD of a directory git takes for a repository" + reason)
    }

    /// Watches an adopted repository's control directories, and looks at it once now.
    private func startWatching(adopted repository: String, movesHead: Bool) {
        guard let id = FileID(path: repository),
            let record = AdoptedRepository(
                root: repository, movesHead: movesHead, worktreeRoots: roots.map(\.inside))
        else { return }
        adopted[id]?.close()
        adopted[id] = record
        watchAdopted(id, from: [])
        verify(id, content: true)
    }

    private func watchAdopted(_ id: FileID, from start: [String]) {
        guard let root = adopted[id]?.currentRoot() else { return }
        for path in AdoptedRepository.controlDirectories(under: root, from: start) {
            let directory = ([root] + path).joined(separator: "/")
            let wd = inotify_add_watch(
                inotify, directory, Self.adoptedMask | UInt32(IN_ONLYDIR | IN_DONT_FOLLOW | IN_MASK_ADD))
            if wd >= 0 { adoptedWatches[wd] = (id, path) }
        }
    }

    /// Moves an adopted repository away if it was written past its filter (`content`: its
    /// control state is read again) or is held so. Wherever it is now: found by its descriptor.
    private func verify(_ id: FileID, content: Bool) {
        guard let record = adopted[id] else { return }
        guard let root = record.currentRoot(), roots.contains(where: { Files.isWithin(root, $0.host) }) else {
            // Removed, or no longer where the sandbox reaches it.
            forget(id)
            return
        }
        let problem =
            (content ? record.tampering(root: root, inside: insidePath(root)) : nil)
            ?? heldPastFilter?(root).map { "is held by a descriptor from before its filter (\($0))" }
        guard let problem else { return }
        forget(id)
        moveAway(record.movedAway(from: root), kind: "a repository adopted while the sandbox ran, that \(problem)")
    }

    private func forget(_ id: FileID) {
        adopted.removeValue(forKey: id)?.close()
        for (wd, place) in adoptedWatches where place.repository == id {
            inotify_rm_watch(inotify, wd)
            adoptedWatches[wd] = nil
        }
        filteredFiles.remove(id)
    }

    /// Whether a directory is one behind a filter: by identity, as the sandbox can move one.
    private func isFiltered(_ path: String) -> Bool {
        FileID(path: path).map { filteredFiles.contains($0) } ?? false
    }

    private func isKnown(_ path: String) -> Bool {
        FileID(path: path).map { known.contains($0) } ?? false
    }

    /// Paths of the filtered directories that are still filtered ones.
    private var filteredNow: [String] { filtered.filter(isFiltered) }

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
        journal.record(.init(kind: .quarantined, path: insidePath(path), reason: kind, keptAt: keptAt, hostPath: path))
    }

    private func insidePath(_ host: String) -> String {
        for root in roots where Files.isWithin(host, root.host) {
            return root.inside + String(host.dropFirst(root.host.count))
        }
        return host
    }
}
