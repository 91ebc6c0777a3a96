import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The filter in front of one `.git`: a FUSE file system that the sandbox sees at the
/// repository's `.git` and that passes every operation through to the host's directory, except
/// those ``GitControlState`` refuses. It runs in the supervisor, outside the sandbox, as the
/// user; the sandbox only holds the mount.
///
/// Nodes are `Self.openPath` descriptors of host files, found by name under their parent's descriptor
/// and never through a symbolic link, so no name the sandbox writes can lead the filter outside
/// the directory. The kernel caches nothing (the host's git changes the same directory while
/// the sandbox runs).
public final class GitDirFilter: @unchecked Sendable {
    /// How the sandbox's ids relate to the host's, for the owners it is shown.
    public struct Owners: Sendable {
        public var hostUID: UInt32
        public var hostGID: UInt32
        /// The agent's ids inside, which the host user's files show as.
        public var agentID: UInt32

        public init(hostUID: UInt32, hostGID: UInt32, agentID: UInt32) {
            self.hostUID = hostUID
            self.hostGID = hostGID
            self.agentID = agentID
        }
    }

    let device: Int32
    let root: String
    /// The `.git` as the sandbox sees it, for the journal.
    let shownAs: String
    /// Where a linked worktree may be (inside paths of the guarded workspaces), for `gitdir`.
    let worktreeRoots: [String]
    let owners: Owners
    let journal: GuardJournal
    /// A repository that stood unfiltered for a moment while the sandbox ran (see
    /// ``FreshCopy``): its files from before the filter may become checked files by a rename,
    /// as a copy the filter makes.
    let adopted: Bool
    static let maxWrite = 1 << 20
    /// `UTIME_NOW` and `UTIME_OMIT` of utimensat(2).
    static let timeNow = (1 << 30) - 1
    /// Not exported by Swift's Glibc module.
    static let openPath: Int32 = 0o10_000_000
    static let emptyPath: Int32 = 0x1000
    static let timeOmit = (1 << 30) - 2

    private struct Node {
        var fd: Int32
        var lookups: UInt64
        var key: FileKey
    }

    private struct FileKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private enum Handle {
        case file(fd: Int32, checked: GitControlState.CheckedFile?)
        case directory(OpaquePointer)
    }

    private var nodes: [UInt64: Node] = [:]
    private var nodeByKey: [FileKey: UInt64] = [:]
    private var nextNode: UInt64 = 2
    private var handles: [UInt64: Handle] = [:]
    private var nextHandle: UInt64 = 1
    private var reported: Set<String> = []
    private var readBuffer: [UInt8] = []
    /// Files made through this filter: only one of them may become a checked file by a rename
    /// (a file from before the filter could be open for writing outside it).
    private var created: Set<FileKey> = []
    /// A checked file open for writing: what it will hold, written to disk at flush or close
    /// only if it passes, so the host never sees a part of it or a refused one.
    private struct Draft {
        var file: GitControlState.CheckedFile
        var path: [String]
        var content: [UInt8]
        var dirty: Bool
    }
    private var drafts: [UInt64: Draft] = [:]
    static let draftLimit = 1 << 20

    /// Serves `device` (an open `/dev/fuse` mounted over the sandbox's view of `root`).
    public init(
        device: Int32, root: String, shownAs: String, worktreeRoots: [String], owners: Owners, journal: GuardJournal,
        adopted: Bool = false
    ) throws {
        self.adopted = adopted
        self.device = device
        self.root = root
        self.shownAs = shownAs
        self.worktreeRoots = worktreeRoots
        self.owners = owners
        self.journal = journal
        let fd = open(root, Self.openPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw GitGuardError("cannot open \(root): \(String(cString: strerror(errno)))") }
        var info = Glibc.stat()
        fstat(fd, &info)
        let key = FileKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        nodes[FUSEWire.rootNode] = Node(fd: fd, lookups: 1, key: key)
        nodeByKey[key] = FUSEWire.rootNode
        // Before the first request is answered: the kernel holds them until then.
        if adopted { FreshCopy.renewCheckedFiles(root: fd) }
    }

    /// Starts serving on a thread of its own; the thread ends when the mount goes away.
    public func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "git-filter"
        thread.start()
    }

    /// Answers requests until the kernel says the file system is gone.
    public func serve() {
        var buffer = [UInt8](repeating: 0, count: Self.maxWrite + 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(device, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == ENOENT { continue }
                break
            }
            guard let request = FUSEWire.Request(buffer[0..<count]) else { continue }
            if request.opcode == FUSEWire.Opcode.destroy.rawValue {
                reply(request, error: 0)
                break
            }
            handle(request)
        }
        close(device)
    }

    // MARK: dispatch

    private func handle(_ request: FUSEWire.Request) {
        guard let opcode = FUSEWire.Opcode(rawValue: request.opcode) else {
            return reply(request, error: ENOSYS)
        }
        switch opcode {
        case .initialize: initialize(request)
        case .lookup: lookup(request)
        case .forget: forget(request.node, count: request.u64(0))
        case .batchForget: batchForget(request)
        case .getattr: getattr(request)
        case .setattr: setattr(request)
        case .readlink: readlink(request)
        case .symlink, .mknod, .mkdir, .create: make(request, opcode)
        case .unlink, .rmdir: remove(request, directory: opcode == .rmdir)
        case .rename, .rename2: rename(request, opcode)
        case .link: link(request)
        case .open: openFile(request)
        case .read: readFile(request)
        case .write: writeFile(request)
        case .release: releaseFile(request)
        case .flush: reply(request, error: commit(request.u64(0)))
        case .fsync, .fsyncdir: syncFile(request)
        case .opendir: openDirectory(request)
        case .readdir: readDirectory(request)
        case .releasedir: releaseDirectory(request)
        case .statfs: statfs(request)
        case .interrupt: break
        default: reply(request, error: ENOSYS)
        }
    }

    private func reply(_ request: FUSEWire.Request, error: Int32, body: [UInt8] = []) {
        let frame = FUSEWire.frame(unique: request.unique, error: error, body: error == 0 ? body : [])
        _ = frame.withUnsafeBytes { write(device, $0.baseAddress, $0.count) }
    }

    private func reply(_ request: FUSEWire.Request, _ build: (inout FUSEWire.Reply) -> Void) {
        var body = FUSEWire.Reply()
        build(&body)
        reply(request, error: 0, body: body.bytes)
    }

    // MARK: nodes and paths

    private func owner(_ uid: UInt32) -> UInt32 { uid == owners.hostUID ? owners.agentID : 65534 }
    private func group(_ gid: UInt32) -> UInt32 { gid == owners.hostGID ? owners.agentID : 65534 }

    private func stat(of fd: Int32) -> stat? {
        var info = Glibc.stat()
        return fstatat(fd, "", &info, Self.emptyPath | AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// The node's descriptor path for calls that take a path and follow it once.
    private static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

    /// The node's path relative to the git directory, as components; nil when it is no longer
    /// under it (removed, or moved away by the host).
    private func components(of node: UInt64) -> [String]? {
        guard let fd = nodes[node]?.fd else { return nil }
        if node == FUSEWire.rootNode { return [] }
        // The descriptor's own path: where the file is now, whatever name it was found by.
        guard let path = Self.path(of: fd) else { return nil }
        // Where the git directory is now: the sandbox may have moved the repository it is in.
        guard let top = nodes[FUSEWire.rootNode].flatMap({ Self.path(of: $0.fd) }), path.hasPrefix(top + "/") else {
            return nil
        }
        return path.dropFirst(top.count + 1).split(separator: "/").map(String.init)
    }

    /// What a symbolic link points at (`name` under `directory`, or the descriptor itself).
    private static func linkTarget(_ directory: Int32, _ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard length >= 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func path(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = Glibc.readlink(procPath(fd), &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Looks `name` up under `parent` and holds a node for it (one more lookup for the kernel).
    private func enter(parent: UInt64, name: String) -> (UInt64, Glibc.stat)? {
        guard let parentFD = nodes[parent]?.fd else { return nil }
        let fd = openat(parentFD, name, Self.openPath | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0, let info = stat(of: fd) else {
            let saved = errno
            if fd >= 0 { close(fd) }
            errno = saved
            return nil
        }
        let key = FileKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if let existing = nodeByKey[key], var node = nodes[existing] {
            close(fd)
            node.lookups += 1
            nodes[existing] = node
            return (existing, info)
        }
        let id = nextNode
        nextNode += 1
        nodes[id] = Node(fd: fd, lookups: 1, key: key)
        nodeByKey[key] = id
        return (id, info)
    }

    private func forget(_ node: UInt64, count: UInt64) {
        guard node != FUSEWire.rootNode, var entry = nodes[node] else { return }
        entry.lookups = entry.lookups > count ? entry.lookups - count : 0
        if entry.lookups == 0 {
            close(entry.fd)
            nodes[node] = nil
            if nodeByKey[entry.key] == node { nodeByKey[entry.key] = nil }
        } else {
            nodes[node] = entry
        }
    }

    private func batchForget(_ request: FUSEWire.Request) {
        let count = Int(request.u32(0))
        for index in 0..<count {
            forget(request.u64(8 + index * 16), count: request.u64(8 + index * 16 + 8))
        }
    }

    /// Applies the model; a refusal is journalled once per path and reason.
    private func permitted(_ operation: GitControlState.Operation) -> GitControlState.Decision {
        let decision = GitControlState.decide(operation)
        if case .refuse(let reason) = decision { refuse(reason: reason, path: Self.firstPath(operation)) }
        return decision
    }

    private func refuse(reason: String, path: [String]) {
        let shown = ([shownAs] + path).joined(separator: "/")
        if reported.insert(shown + "\u{0}" + reason).inserted {
            journal.record(.init(kind: .refused, path: shown, reason: reason))
        }
    }

    private static func firstPath(_ operation: GitControlState.Operation) -> [String] {
        switch operation {
        case .createFile(let path), .createDirectory(let path), .createSymlink(let path, _), .createSpecial(let path),
            .write(let path), .changeMode(let path), .remove(let path, _):
            return path
        case .rename(_, let to, _), .hardLink(_, let to):
            return to
        }
    }

    // MARK: operations

    private func initialize(_ request: FUSEWire.Request) {
        let kernelMajor = request.u32(0)
        let maxReadahead = request.u32(8)
        let kernelFlags = request.u32(12)
        guard kernelMajor == FUSEWire.major else { return reply(request, error: EPROTO) }
        let wanted = FUSEWire.asyncRead | FUSEWire.bigWrites | FUSEWire.autoInvalData | FUSEWire.maxPagesFlag
        reply(request) { out in
            out.u32(FUSEWire.major)
            out.u32(FUSEWire.minor)
            out.u32(maxReadahead)
            out.u32(kernelFlags & wanted)
            out.u16(16)  // max_background
            out.u16(12)  // congestion_threshold
            out.u32(UInt32(Self.maxWrite))
            out.u32(1)  // time_gran
            out.u16(UInt16(Self.maxWrite / 4096))  // max_pages
            out.u16(0)
            out.u32(0)
            out.zeros(28)
        }
    }

    private func lookup(_ request: FUSEWire.Request) {
        guard let name = request.names(after: 0).first else { return reply(request, error: EINVAL) }
        guard let (node, info) = enter(parent: request.node, name: name) else { return reply(request, error: errno) }
        reply(request) { $0.entry(node: node, info, owner: owner, group: group) }
    }

    private func getattr(_ request: FUSEWire.Request) {
        guard let fd = nodes[request.node]?.fd, let info = stat(of: fd) else { return reply(request, error: ENOENT) }
        reply(request) { $0.attrOut(info, owner: owner, group: group) }
    }

    private func setattr(_ request: FUSEWire.Request) {
        guard let node = nodes[request.node], let path = components(of: request.node) else {
            return reply(request, error: ENOENT)
        }
        let valid = request.u32(0)
        let handle = request.u64(8)
        if valid & (FUSEWire.setUID | FUSEWire.setGID) != 0 {
            // Only the owner the file already has.
            guard let info = stat(of: node.fd),
                valid & FUSEWire.setUID == 0 || request.u32(76) == owner(info.st_uid),
                valid & FUSEWire.setGID == 0 || request.u32(80) == group(info.st_gid)
            else { return reply(request, error: EPERM) }
        }
        if valid & FUSEWire.setSize != 0, case .refuse = permitted(.write(path)) { return reply(request, error: EPERM) }
        if valid & FUSEWire.setMode != 0, case .refuse = permitted(.changeMode(path)) {
            return reply(request, error: EPERM)
        }
        if valid & FUSEWire.setMode != 0 {
            guard chmod(Self.procPath(node.fd), mode_t(request.u32(68) & 0o7777)) == 0 else {
                return reply(request, error: errno)
            }
        }
        if valid & FUSEWire.setSize != 0, valid & FUSEWire.setHandle != 0, var draft = drafts[handle] {
            let size = min(Int(request.u64(16)), Self.draftLimit)
            draft.content =
                Array(draft.content.prefix(size)) + [UInt8](repeating: 0, count: max(0, size - draft.content.count))
            draft.dirty = true
            drafts[handle] = draft
        } else if valid & FUSEWire.setSize != 0 {
            if case .checked = GitControlState.classify(path, isFile: true).kind {
                // Not through a draft: only to what the file holds already (a no-op).
                guard let info = stat(of: node.fd), UInt64(info.st_size) == request.u64(16) else {
                    refuse(reason: "truncating \(path.joined(separator: "/"))", path: path)
                    return reply(request, error: EPERM)
                }
            }
            let size = off_t(Int64(bitPattern: request.u64(16)))
            let result: Int32
            if valid & FUSEWire.setHandle != 0, case .file(let fd, _)? = handles[handle] {
                result = ftruncate(fd, size)
            } else {
                result = truncate(Self.procPath(node.fd), size)
            }
            guard result == 0 else { return reply(request, error: errno) }
        }
        if valid & (FUSEWire.setATime | FUSEWire.setMTime) != 0 {
            var times = [timespec(tv_sec: 0, tv_nsec: Self.timeOmit), timespec(tv_sec: 0, tv_nsec: Self.timeOmit)]
            if valid & FUSEWire.setATime != 0 {
                times[0] =
                    valid & FUSEWire.setATimeNow != 0
                    ? timespec(tv_sec: 0, tv_nsec: Self.timeNow)
                    : timespec(tv_sec: Int(Int64(bitPattern: request.u64(32))), tv_nsec: Int(request.u32(56)))
            }
            if valid & FUSEWire.setMTime != 0 {
                times[1] =
                    valid & FUSEWire.setMTimeNow != 0
                    ? timespec(tv_sec: 0, tv_nsec: Self.timeNow)
                    : timespec(tv_sec: Int(Int64(bitPattern: request.u64(40))), tv_nsec: Int(request.u32(60)))
            }
            guard utimensat(AT_FDCWD, Self.procPath(node.fd), times, 0) == 0 else {
                return reply(request, error: errno)
            }
        }
        getattr(request)
    }

    private func readlink(_ request: FUSEWire.Request) {
        guard let fd = nodes[request.node]?.fd else { return reply(request, error: ENOENT) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlinkat(fd, "", &buffer, buffer.count)
        guard length >= 0 else { return reply(request, error: errno) }
        reply(request, error: 0, body: buffer[0..<length].map { UInt8(bitPattern: $0) })
    }

    /// mkdir, mknod, create and symlink: the model first, then the call, then the new node.
    private func make(_ request: FUSEWire.Request, _ opcode: FUSEWire.Opcode) {
        guard let parentFD = nodes[request.node]?.fd, let parentPath = components(of: request.node) else {
            return reply(request, error: ENOENT)
        }
        let offset: Int
        switch opcode {
        case .mkdir: offset = 8
        case .mknod: offset = 16
        case .create: offset = 16
        default: offset = 0
        }
        let names = request.names(after: offset)
        guard let name = names.first else { return reply(request, error: EINVAL) }
        let path = parentPath + [name]
        var checked: GitControlState.CheckedFile?
        var createdFD: Int32 = -1
        switch opcode {
        case .symlink:
            guard names.count >= 2, case .allow = permitted(.createSymlink(path, target: names[1])) else {
                return reply(request, error: EPERM)
            }
            guard symlinkat(names[1], parentFD, name) == 0 else { return reply(request, error: errno) }
        case .mkdir:
            if case .refuse = permitted(.createDirectory(path)) { return reply(request, error: EPERM) }
            let mode = mode_t(request.u32(0) & ~request.u32(4) & 0o7777)
            guard mkdirat(parentFD, name, mode) == 0 else { return reply(request, error: errno) }
        case .mknod:
            let mode = request.u32(0)
            guard mode & UInt32(S_IFMT) == UInt32(S_IFREG) else {
                _ = permitted(.createSpecial(path))
                return reply(request, error: EPERM)
            }
            if case .refuse = permitted(.createFile(path)) { return reply(request, error: EPERM) }
            let fd = openat(
                parentFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                mode_t(mode & 0o7777 & ~request.u32(8)))
            guard fd >= 0 else { return reply(request, error: errno) }
            close(fd)
        default:  // create
            switch permitted(.createFile(path)) {
            case .refuse: return reply(request, error: EPERM)
            case .allowChecked(let link): checked = link
            default: break
            }
            let flags = Int32(bitPattern: request.u32(0))
            let mode = mode_t(request.u32(4) & ~request.u32(8) & 0o7777)
            createdFD = openat(parentFD, name, (flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC) & ~O_NOCTTY, mode)
            guard createdFD >= 0 else { return reply(request, error: errno) }
        }
        guard let (node, info) = enter(parent: request.node, name: name) else {
            let saved = errno
            if createdFD >= 0 { close(createdFD) }
            return reply(request, error: saved)
        }
        // Objects never become checked files (git does not rename them so, and such a rename
        // is refused): not kept, as there are many.
        if path.first != "objects" && (info.st_mode & S_IFMT) == S_IFREG {
            created.insert(FileKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
        }
        if opcode == .create {
            var openFlags: UInt32 = 0
            if checked != nil {
                // Made empty; its content is written at flush if it passes.
                close(createdFD)
                createdFD = openat(parentFD, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
                guard createdFD >= 0 else { return reply(request, error: errno) }
                openFlags = FUSEWire.directIO
            }
            let handle = store(.file(fd: createdFD, checked: checked))
            if let checked { drafts[handle] = Draft(file: checked, path: path, content: [], dirty: false) }
            reply(request) { out in
                out.entry(node: node, info, owner: owner, group: group)
                out.open(handle: handle, flags: openFlags)
            }
        } else {
            reply(request) { $0.entry(node: node, info, owner: owner, group: group) }
        }
    }

    private func remove(_ request: FUSEWire.Request, directory: Bool) {
        guard let parentFD = nodes[request.node]?.fd, let parentPath = components(of: request.node),
            let name = request.names(after: 0).first
        else { return reply(request, error: ENOENT) }
        if case .refuse = permitted(.remove(parentPath + [name], isDirectory: directory)) {
            return reply(request, error: EPERM)
        }
        var info = Glibc.stat()
        let last = !directory && fstatat(parentFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_nlink == 1
        let result = unlinkat(parentFD, name, directory ? AT_REMOVEDIR : 0)
        if result == 0 && last { created.remove(FileKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))) }
        reply(request, error: result == 0 ? 0 : errno)
    }

    private typealias RenameAt2 =
        @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) ->
        Int32
    private static let renameat2: RenameAt2? = {
        guard let symbol = dlsym(nil, "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()

    private func rename(_ request: FUSEWire.Request, _ opcode: FUSEWire.Opcode) {
        let newParent = request.u64(0)
        let flags = opcode == .rename2 ? request.u32(8) : 0
        let names = request.names(after: opcode == .rename2 ? 16 : 8)
        guard names.count >= 2, let fromFD = nodes[request.node]?.fd, let toFD = nodes[newParent]?.fd,
            let fromParent = components(of: request.node), let toParent = components(of: newParent)
        else { return reply(request, error: ENOENT) }
        var info = Glibc.stat()
        guard fstatat(fromFD, names[0], &info, AT_SYMLINK_NOFOLLOW) == 0 else { return reply(request, error: errno) }
        let from = fromParent + [names[0]]
        let to = toParent + [names[1]]
        let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        if (info.st_mode & S_IFMT) == S_IFLNK,
            case .refuse = permitted(.createSymlink(to, target: Self.linkTarget(fromFD, names[0]) ?? ""))
        {
            return reply(request, error: EPERM)
        }
        // An exchange moves both ways.
        if flags & 2 != 0 {
            if case .refuse = permitted(.rename(from: to, to: from, isDirectory: isDirectory)) {
                return reply(request, error: EPERM)
            }
        }
        switch permitted(.rename(from: from, to: to, isDirectory: isDirectory)) {
        case .refuse:
            return reply(request, error: EPERM)
        case .checkRename(let file):
            switch renameCheck(info, from: (fromFD, names[0]), onto: (toFD, names[1]), file: file, path: to) {
            case .refuse(let reason):
                refuse(reason: "a change to \(to.joined(separator: "/")): \(reason)", path: to)
                return reply(request, error: EPERM)
            case .copy(let content):
                // Made before the filter: a copy takes its place, and the original goes.
                guard flags == 0 else { return reply(request, error: EINVAL) }
                var result = FreshCopy.replace(names[1], in: toFD, with: content, mode: info.st_mode & 0o7777)
                if result == 0 && unlinkat(fromFD, names[0], 0) != 0 { result = errno }
                return reply(request, error: result)
            case .rename:
                break
            }
        default:
            break
        }
        let result: Int32
        if let renameat2 = Self.renameat2 {
            result = renameat2(fromFD, names[0], toFD, names[1], flags)
        } else {
            guard flags == 0 else { return reply(request, error: EINVAL) }
            result = renameat(fromFD, names[0], toFD, names[1])
        }
        reply(request, error: result == 0 ? 0 : errno)
    }

    /// What becomes of a rename onto a checked file.
    private enum RenameCheck {
        case refuse(String)
        case rename
        /// The content (checked) goes in as a new file: the source was made before the filter.
        case copy([UInt8])
    }

    /// Whether a file may become a checked file by a rename. Its content is checked, and it
    /// must be reachable by no other way once it is there: one link, made through this filter,
    /// open for writing nowhere. In an adopted repository a file from before the filter is
    /// copied in instead, as what a descriptor the filter never saw holds is not what git reads.
    private func renameCheck(
        _ info: Glibc.stat, from source: (Int32, String), onto target: (Int32, String),
        file: GitControlState.CheckedFile, path: [String]
    ) -> RenameCheck {
        let key = FileKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1 else {
            return .refuse("the new file has other links")
        }
        let inherited = !created.contains(key)
        guard !inherited || adopted else { return .refuse("the new file was not made in this session's git directory") }
        for case .file(let fd, _) in handles.values {
            var open = Glibc.stat()
            if fstat(fd, &open) == 0, UInt64(open.st_ino) == key.inode, UInt64(open.st_dev) == key.device,
                fcntl(fd, F_GETFL) & O_ACCMODE != O_RDONLY
            {
                return .refuse("the new file is still open for writing")
            }
        }
        guard let new = Self.readSmallFile(source.0, source.1) else { return .refuse("the new file cannot be read") }
        if let reason = GitCheckedContent.refusal(
            new, file: file, partial: false, old: Self.readSmallFile(target.0, target.1), context: context(of: path))
        {
            return .refuse(reason)
        }
        return inherited ? .copy(Array(new.utf8)) : .rename
    }

    /// Where a path of this git directory is, for the content checks.
    private func context(of path: [String]) -> GitCheckedContent.Context {
        GitCheckedContent.Context(
            directory: ([shownAs] + path.dropLast()).joined(separator: "/"),
            nested: GitControlState.classify(path, isFile: true).nested, roots: worktreeRoots)
    }

    private static func readSmallFile(_ directory: Int32, _ name: String) -> String? {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = Glibc.stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, let data = readAll(fd) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    private func link(_ request: FUSEWire.Request) {
        let oldNode = request.u64(0)
        guard let name = request.names(after: 8).first, let sourceFD = nodes[oldNode]?.fd,
            let parentFD = nodes[request.node]?.fd, let source = components(of: oldNode),
            let parent = components(of: request.node)
        else { return reply(request, error: ENOENT) }
        if case .refuse = permitted(.hardLink(from: source, to: parent + [name])) {
            return reply(request, error: EPERM)
        }
        if let info = stat(of: sourceFD), (info.st_mode & S_IFMT) == S_IFLNK,
            case .refuse = permitted(.createSymlink(parent + [name], target: Self.linkTarget(sourceFD, "") ?? ""))
        {
            return reply(request, error: EPERM)
        }
        guard linkat(AT_FDCWD, Self.procPath(sourceFD), parentFD, name, AT_SYMLINK_FOLLOW) == 0 else {
            return reply(request, error: errno)
        }
        guard let (node, info) = enter(parent: request.node, name: name) else { return reply(request, error: errno) }
        reply(request) { $0.entry(node: node, info, owner: owner, group: group) }
    }

    private func store(_ handle: Handle) -> UInt64 {
        let id = nextHandle
        nextHandle += 1
        handles[id] = handle
        return id
    }

    private func openFile(_ request: FUSEWire.Request) {
        guard let node = nodes[request.node] else { return reply(request, error: ENOENT) }
        let flags = Int32(bitPattern: request.u32(0))
        var checked: GitControlState.CheckedFile?
        var path: [String] = []
        if flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 {
            guard let found = components(of: request.node) else { return reply(request, error: ENOENT) }
            path = found
            switch permitted(.write(path)) {
            case .refuse: return reply(request, error: EPERM)
            case .allowChecked(let file): checked = file
            default: break
            }
        }
        // The node is found already, never through a link; O_NOFOLLOW (cp -r asks for it) would
        // refuse the /proc/self/fd link itself. A draft's file is written whole at flush.
        var openFlags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC
        if checked != nil { openFlags = (openFlags & ~(O_ACCMODE | O_TRUNC | O_APPEND)) | O_RDWR }
        let fd = open(Self.procPath(node.fd), openFlags)
        guard fd >= 0 else { return reply(request, error: errno) }
        let handle = store(.file(fd: fd, checked: checked))
        if let checked {
            guard let content = Self.readAll(fd) else {
                close(fd)
                handles[handle] = nil
                return reply(request, error: EFBIG)
            }
            drafts[handle] = Draft(
                file: checked, path: path, content: flags & O_TRUNC != 0 ? [] : content, dirty: false)
            return reply(request) { $0.open(handle: handle, flags: FUSEWire.directIO) }
        }
        // The page cache stays across opens: the kernel asks for the attributes at each open
        // (nothing is cached) and drops the pages when the file's time or size changed.
        reply(request) { $0.open(handle: handle, flags: FUSEWire.keepCache) }
    }

    private static func readAll(_ fd: Int32) -> [UInt8]? {
        var info = Glibc.stat()
        guard fstat(fd, &info) == 0, info.st_size <= draftLimit else { return nil }
        var content = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = content.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return count == content.count ? content : nil
    }

    /// Writes a draft that passes; refuses one that does not (the file keeps what it held).
    private func commit(_ handle: UInt64) -> Int32 {
        guard var draft = drafts[handle], draft.dirty, case .file(let fd, _)? = handles[handle] else { return 0 }
        draft.dirty = false
        drafts[handle] = draft
        if let reason = GitCheckedContent.refusal(
            String(decoding: draft.content, as: UTF8.self), file: draft.file, partial: false,
            context: context(of: draft.path))
        {
            refuse(reason: reason, path: draft.path)
            drafts[handle]?.content = Self.readAll(fd) ?? []
            return EPERM
        }
        guard ftruncate(fd, 0) == 0 else { return errno }
        let written = draft.content.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return written == draft.content.count ? 0 : EIO
    }

    private func readFile(_ request: FUSEWire.Request) {
        guard case .file(let fd, _)? = handles[request.u64(0)] else { return reply(request, error: EBADF) }
        let offset = off_t(Int64(bitPattern: request.u64(8)))
        let size = min(Int(request.u32(16)), Self.maxWrite)
        if let draft = drafts[request.u64(0)] {
            let start = min(Int(offset), draft.content.count)
            return reply(request, error: 0, body: Array(draft.content[start..<min(start + size, draft.content.count)]))
        }
        // Read straight after the reply's header, and send both in one write.
        let header = FUSEWire.outHeaderSize
        if readBuffer.count < header + size { readBuffer = [UInt8](repeating: 0, count: header + size) }
        let count = readBuffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + header }, size, offset) }
        guard count >= 0 else { return reply(request, error: errno) }
        FUSEWire.writeHeader(into: &readBuffer, length: header + count, unique: request.unique)
        _ = readBuffer.withUnsafeBytes { write(device, $0.baseAddress, header + count) }
    }

    private func writeFile(_ request: FUSEWire.Request) {
        let handle = request.u64(0)
        guard case .file(let fd, _)? = handles[handle] else { return reply(request, error: EBADF) }
        let offset = Int(Int64(bitPattern: request.u64(8)))
        let size = Int(request.u32(16))
        let start = request.body.startIndex + 40
        guard request.body.count >= 40 + size, offset >= 0 else { return reply(request, error: EINVAL) }
        let data = request.body[start..<(start + size)]
        if var draft = drafts[handle] {
            guard offset + size <= Self.draftLimit else { return reply(request, error: EFBIG) }
            if draft.content.count < offset + size {
                draft.content += [UInt8](repeating: 0, count: offset + size - draft.content.count)
            }
            draft.content.replaceSubrange(offset..<(offset + size), with: data)
            draft.dirty = true
            drafts[handle] = draft
        } else {
            let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, size, off_t(offset)) }
            guard written == size else { return reply(request, error: written < 0 ? errno : EIO) }
        }
        reply(request) { out in
            out.u32(UInt32(size))
            out.u32(0)
        }
    }

    private func releaseFile(_ request: FUSEWire.Request) {
        let handle = request.u64(0)
        _ = commit(handle)
        drafts[handle] = nil
        if case .file(let fd, _) = handles.removeValue(forKey: handle) { close(fd) }
        reply(request, error: 0)
    }

    private func syncFile(_ request: FUSEWire.Request) {
        switch handles[request.u64(0)] {
        case .file(let fd, _):
            let committed = commit(request.u64(0))
            reply(request, error: committed != 0 ? committed : fsync(fd) == 0 ? 0 : errno)
        default: reply(request, error: 0)
        }
    }

    private func openDirectory(_ request: FUSEWire.Request) {
        guard let node = nodes[request.node] else { return reply(request, error: ENOENT) }
        let fd = open(Self.procPath(node.fd), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return reply(request, error: errno) }
        guard let stream = fdopendir(fd) else {
            let saved = errno
            close(fd)
            return reply(request, error: saved)
        }
        let handle = store(.directory(stream))
        reply(request) { $0.open(handle: handle) }
    }

    private func readDirectory(_ request: FUSEWire.Request) {
        guard case .directory(let stream)? = handles[request.u64(0)] else { return reply(request, error: EBADF) }
        let offset = Int(bitPattern: UInt(request.u64(8)))
        let limit = Int(request.u32(16))
        if offset != telldir(stream) { seekdir(stream, offset) }
        var out = FUSEWire.Reply()
        while true {
            let position = telldir(stream)
            errno = 0
            guard let entry = readdir(stream) else { break }
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            let next = telldir(stream)
            if !out.dirent(
                inode: UInt64(entry.pointee.d_ino), offset: UInt64(bitPattern: Int64(next)),
                type: entry.pointee.d_type, name: name, limit: limit)
            {
                seekdir(stream, position)
                break
            }
        }
        reply(request, error: 0, body: out.bytes)
    }

    private func releaseDirectory(_ request: FUSEWire.Request) {
        if case .directory(let stream) = handles.removeValue(forKey: request.u64(0)) { closedir(stream) }
        reply(request, error: 0)
    }

    private func statfs(_ request: FUSEWire.Request) {
        var info = statvfs()
        guard let fd = nodes[FUSEWire.rootNode]?.fd, fstatvfs(fd, &info) == 0 else {
            return reply(request, error: errno)
        }
        reply(request) { out in
            out.u64(UInt64(info.f_blocks))
            out.u64(UInt64(info.f_bfree))
            out.u64(UInt64(info.f_bavail))
            out.u64(UInt64(info.f_files))
            out.u64(UInt64(info.f_ffree))
            out.u32(UInt32(info.f_bsize))
            out.u32(UInt32(info.f_namemax))
            out.u32(UInt32(info.f_frsize))
            out.u32(0)
            out.zeros(24)
        }
    }
}

/// The error of the git guard's setup.
public struct GitGuardError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
