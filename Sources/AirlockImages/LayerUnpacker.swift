import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Unpacks one image layer (an uncompressed tar stream) into a directory of its own, in the
/// form overlayfs reads as a lower layer with `userxattr`: a whiteout `.wh.NAME` becomes a
/// character device 0/0 named NAME, and `.wh..wh..opq` marks its directory opaque
/// (`user.overlay.opaque`).
///
/// Runs as root of a user namespace whose root is the host user, so a path that left the
/// layer's directory would write the user's own files: every parent is resolved with
/// `openat2(RESOLVE_IN_ROOT)` (a symbolic link to `/` leads to the layer's top, as in the
/// container), and the last component is never followed. Device nodes are not made; owners
/// are set as the layer says (the namespace maps them to subordinate ids), then modes, so
/// set-id bits stay.
public struct LayerUnpacker {
    public struct Summary: Equatable, Sendable {
        public var entries = 0
        public var bytes: Int64 = 0
        /// Device nodes the layer holds, which are not made.
        public var devicesSkipped = 0
        /// `sha256:` of the whole uncompressed stream: what an image's config calls the layer's
        /// diff ID, which the puller checks before the layer is shared.
        public var digest = ""
    }

    let root: Int32
    let setOwners: Bool
    /// False for a plain tree (what `airlock cp` brings out of a sandbox): a `.wh.` name is then
    /// a file like any other.
    var layerMarkers = true
    /// Bits cleared from every mode.
    var modeMask: mode_t = 0
    /// Bytes that must stay free on the destination's filesystem; nil for
    /// ``defaultReserve(totalBytes:)``.
    var keepFree: Int64?
    /// Bytes written since the free space was last looked at.
    private var writtenSinceCheck: Int64 = 0
    private var summary = Summary()
    /// Directories made or met, with what the layer said of them: set last, deepest first, so
    /// that a read-only directory's children can still be made and its time stays.
    private var directories: [(path: [String], entry: TarEntry)] = []

    /// Unpacks the tar stream on `input` into `directory` (made if missing).
    public static func unpack(
        from input: Int32, into directory: String, setOwners: Bool, layerMarkers: Bool = true
    ) throws -> Summary {
        try Files.makeDirectory(directory)
        let root = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(directory)", errno: errno) }
        defer { close(root) }
        return try unpack(from: input, intoDirectory: root, setOwners: setOwners, layerMarkers: layerMarkers)
    }

    /// Unpacks into the directory open at `root`, never leaving it whatever happens to its path.
    /// `modeMask` clears bits from every mode (set-id bits of what leaves a sandbox).
    public static func unpack(
        from input: Int32, intoDirectory root: Int32, setOwners: Bool, layerMarkers: Bool = true,
        modeMask: mode_t = 0, keepFree: Int64? = nil
    ) throws -> Summary {
        var unpacker = LayerUnpacker(root: root, setOwners: setOwners)
        unpacker.layerMarkers = layerMarkers
        unpacker.modeMask = modeMask
        unpacker.keepFree = keepFree
        var reader = TarReader(fd: input)
        while let entry = try reader.next() {
            try unpacker.apply(entry, body: &reader)
        }
        try unpacker.finishDirectories()
        unpacker.summary.digest = try reader.finish()
        return unpacker.summary
    }

    init(root: Int32, setOwners: Bool) {
        self.root = root
        self.setOwners = setOwners
    }

    /// The path's components inside the layer, as Docker cleans it: `.` and empty ones
    /// dropped, `..` never above the top. Split on the byte `/`, never on characters: Swift's
    /// characters join a `/` to a neighbouring combining or prepended mark, and such a
    /// "component" would carry a slash to the kernel. A NUL anywhere is refused.
    static func components(_ path: String) throws -> [String] {
        let bytes = Array(path.utf8)
        guard !bytes.contains(0) else { throw TarError("a tar member's path holds a NUL byte") }
        var result: [String] = []
        for part in bytes.split(separator: UInt8(ascii: "/")) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                _ = result.popLast()
            } else {
                result.append(String(decoding: part, as: UTF8.self))
            }
        }
        // Invalid UTF-8 would decode to other bytes than the archive's: refused, not renamed.
        guard result.allSatisfy({ !$0.utf8.contains(UInt8(ascii: "/")) && !$0.unicodeScalars.contains("\u{FFFD}") })
        else { throw TarError("a tar member's path is not UTF-8") }
        return result
    }

    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    mutating func apply(_ entry: TarEntry, body reader: inout TarReader) throws {
        summary.entries += 1
        let path = try Self.components(entry.path)
        guard let name = path.last else {
            // The layer's top directory itself.
            if entry.kind == .directory { directories.append(([], entry)) }
            return
        }
        let parent = try openParent(Array(path.dropLast()))
        defer { close(parent) }
        if layerMarkers && name.utf8.elementsEqual(Self.opaqueMarker.utf8) {
            guard Self.setAttribute(parent, "user.overlay.opaque", "y", 1, 0) == 0 else {
                throw SystemCallError("mark \(Self.shown(path.dropLast())) opaque", errno: errno)
            }
            return
        }
        if layerMarkers && name.utf8.starts(with: Self.whiteoutPrefix.utf8) {
            let hidden = String(decoding: name.utf8.dropFirst(Self.whiteoutPrefix.utf8.count), as: UTF8.self)
            guard !hidden.isEmpty, hidden != ".", hidden != ".." else { return }
            try Self.remove(hidden, in: parent)
            guard mknodat(parent, hidden, S_IFCHR | 0o000, 0) == 0 else {
                throw SystemCallError("make the whiteout of \(Self.shown(path.dropLast() + [hidden]))", errno: errno)
            }
            return
        }
        switch entry.kind {
        case .directory:
            var info = stat()
            if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
                try Self.remove(name, in: parent)
                guard mkdirat(parent, name, 0o700) == 0 else {
                    throw SystemCallError("make \(Self.shown(path))", errno: errno)
                }
            }
            directories.append((path, entry))
        case .file:
            try Self.remove(name, in: parent)
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SystemCallError("make \(Self.shown(path))", errno: errno) }
            defer { close(fd) }
            try reader.readBody(entry) { chunk in
                var done = 0
                while done < chunk.count {
                    let wrote = chunk[(chunk.startIndex + done)...].withUnsafeBytes {
                        write(fd, $0.baseAddress, $0.count)
                    }
                    if wrote < 0 && errno == EINTR { continue }
                    guard wrote > 0 else { throw SystemCallError("write \(Self.shown(path))", errno: errno) }
                    done += wrote
                }
                writtenSinceCheck += Int64(chunk.count)
                if writtenSinceCheck >= Self.spaceCheckInterval {
                    writtenSinceCheck = 0
                    try checkFreeSpace(fd)
                }
            }
            summary.bytes += entry.size
            try finish(entry, path: path, fd: fd)
        case .symbolicLink:
            try Self.remove(name, in: parent)
            guard symlinkat(entry.linkTarget, parent, name) == 0 else {
                throw SystemCallError("make the link \(Self.shown(path))", errno: errno)
            }
            try owners(entry, path: path, parent: parent, name: name)
            var times = [entry.modified, entry.modified]
            utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW)
        case .hardLink:
            let targetPath = try Self.components(entry.linkTarget)
            guard let targetName = targetPath.last else {
                throw TarError("\(Self.shown(path)) is a hard link to the layer's top")
            }
            let targetParent = try openParent(Array(targetPath.dropLast()), create: false)
            defer { close(targetParent) }
            try Self.remove(name, in: parent)
            guard linkat(targetParent, targetName, parent, name, 0) == 0 else {
                throw SystemCallError(
                    "link \(Self.shown(path)) to \(Self.shown(targetPath[...])) (a hard link must name a file of its own layer)",
                    errno: errno)
            }
        case .fifo:
            try Self.remove(name, in: parent)
            guard mkfifoat(parent, name, 0o600) == 0 else {
                throw SystemCallError("make \(Self.shown(path))", errno: errno)
            }
            try owners(entry, path: path, parent: parent, name: name)
            guard fchmodat(parent, name, mode_t(entry.mode) & ~modeMask, 0) == 0 else {
                throw SystemCallError("set the mode of \(Self.shown(path))", errno: errno)
            }
        case .characterDevice, .blockDevice:
            summary.devicesSkipped += 1
        }
    }

    static let spaceCheckInterval: Int64 = 32 << 20

    /// Stops the unpacking before it fills the disk: a few kilobytes of gzip can claim
    /// terabytes, and the stream's digest is only known at its end.
    func checkFreeSpace(_ fd: Int32) throws {
        var info = statvfs()
        guard fstatvfs(fd, &info) == 0 else { return }
        let blockSize = Int64(info.f_frsize)
        let free = Int64(info.f_bavail) * blockSize
        let reserve = keepFree ?? Self.defaultReserve(totalBytes: Int64(info.f_blocks) * blockSize)
        guard free >= reserve else {
            throw TarError(
                "stopped: unpacking would leave less than \(reserve >> 20) MiB free on the disk it writes to (a layer larger than the space left, or a decompression bomb)"
            )
        }
    }

    /// What is kept free: 5% of the filesystem, at most 2 GiB.
    static func defaultReserve(totalBytes: Int64) -> Int64 { min(Int64(2) << 30, totalBytes / 20) }

    /// A regular file's owner, mode (after the owner: chown clears set-id bits), xattrs, times.
    private func finish(_ entry: TarEntry, path: [String], fd: Int32) throws {
        if setOwners {
            guard fchown(fd, entry.uid, entry.gid) == 0 else { throw ownerError(entry, path: path) }
        }
        guard fchmod(fd, mode_t(entry.mode) & ~modeMask) == 0 else {
            throw SystemCallError("set the mode of \(Self.shown(path[...]))", errno: errno)
        }
        for (name, value) in entry.xattrs.sorted(by: { $0.key < $1.key }) where Self.keeps(xattr: name) {
            if Self.setAttribute(fd, name, value, value.count, 0) != 0 && errno != ENOTSUP && errno != EPERM {
                throw SystemCallError("set \(name) on \(Self.shown(path[...]))", errno: errno)
            }
        }
        var times = [entry.modified, entry.modified]
        futimens(fd, &times)
    }

    private func owners(_ entry: TarEntry, path: [String], parent: Int32, name: String) throws {
        guard setOwners else { return }
        guard fchownat(parent, name, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw ownerError(entry, path: path)
        }
    }

    private func ownerError(_ entry: TarEntry, path: [String]) -> Error {
        if errno == EINVAL {
            return TarError(
                "\(Self.shown(path[...])) belongs to \(entry.uid):\(entry.gid), beyond the ids a sandbox has (0-65535)")
        }
        return SystemCallError("set the owner of \(Self.shown(path[...]))", errno: errno)
    }

    /// Extended attributes a layer may set: file capabilities and the user namespace's own,
    /// never overlayfs's markers (a layer could otherwise redirect or hide what is below it).
    static func keeps(xattr name: String) -> Bool {
        name == "security.capability" || (name.hasPrefix("user.") && !name.hasPrefix("user.overlay."))
    }

    /// Directories' owners, modes, xattrs and times, deepest first.
    mutating func finishDirectories() throws {
        for (path, entry) in directories.reversed() {
            let fd =
                path.isEmpty
                ? dup(root) : try openParent(path, create: false)
            guard fd >= 0 else { throw SystemCallError("open the layer's top", errno: errno) }
            defer { close(fd) }
            if setOwners {
                guard fchown(fd, entry.uid, entry.gid) == 0 else { throw ownerError(entry, path: path) }
            }
            guard fchmod(fd, mode_t(entry.mode) & ~modeMask) == 0 else {
                throw SystemCallError("set the mode of \(Self.shown(path[...]))", errno: errno)
            }
            for (name, value) in entry.xattrs.sorted(by: { $0.key < $1.key }) where Self.keeps(xattr: name) {
                _ = Self.setAttribute(fd, name, value, value.count, 0)
            }
            var times = [entry.modified, entry.modified]
            futimens(fd, &times)
        }
    }

    // MARK: paths that stay inside

    /// A descriptor of the directory at `components` under the top, resolved as inside the
    /// container; missing directories on the way are made (0755, root's), as Docker does.
    private func openParent(_ components: [String], create: Bool = true) throws -> Int32 {
        var fd = dup(root)
        for (index, name) in components.enumerated() {
            var next = Self.openInRoot(root, components[0...index].joined(separator: "/"))
            if next < 0 && errno == ENOENT && create {
                _ = mkdirat(fd, name, 0o755)
                next = Self.openInRoot(root, components[0...index].joined(separator: "/"))
            }
            guard next >= 0 else {
                let saved = errno
                close(fd)
                throw SystemCallError("open \(Self.shown(components[0...index]))", errno: saved)
            }
            close(fd)
            fd = next
        }
        return fd
    }

    /// `openat2(root, path, O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
    static func openInRoot(_ root: Int32, _ path: String) -> Int32 {
        guard let syscall = Self.syscall else {
            errno = ENOSYS
            return -1
        }
        var how = OpenHow(
            flags: UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC), mode: 0, resolve: resolveInRoot | resolveNoMagicLinks)
        let result = path.withCString { name in
            withUnsafePointer(to: &how) { syscall(openat2Number, Int(root), name, UnsafeRawPointer($0), 24) }
        }
        return Int32(truncatingIfNeeded: result)
    }

    /// Removes whatever is at `name` in `parent` (a whole tree for a directory); nothing if
    /// nothing is there.
    static func remove(_ name: String, in parent: Int32) throws {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw SystemCallError("open \(name) to replace it", errno: errno) }
            defer { close(fd) }
            let children = try ImageFlattener.names(in: fd)
            for child in children { try remove(child, in: fd) }
            guard unlinkat(parent, name, AT_REMOVEDIR) == 0 else {
                throw SystemCallError("replace the directory \(name)", errno: errno)
            }
        } else if unlinkat(parent, name, 0) != 0 {
            throw SystemCallError("replace \(name)", errno: errno)
        }
    }

    /// A layer's path for an error line: one line, however its names were made (control
    /// characters shown as `?`), and no longer than 200 characters.
    static func shown(_ path: ArraySlice<String>) -> String {
        AirlockSystem.shown("/" + path.joined(separator: "/"))
    }
    static func shown(_ path: [String]) -> String { shown(path[...]) }

    /// `fsetxattr(2)`, which Swift's Glibc module does not export.
    private typealias SetXattr = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer, Int, Int32) -> Int32
    private static let setXattr: SetXattr? = {
        guard let symbol = dlsym(nil, "fsetxattr") else { return nil }
        return unsafeBitCast(symbol, to: SetXattr.self)
    }()

    static func setAttribute(_ fd: Int32, _ name: String, _ value: [UInt8], _ size: Int, _ flags: Int32) -> Int32 {
        guard let setXattr else {
            errno = ENOTSUP
            return -1
        }
        // An empty value still needs an address.
        let stored = value.isEmpty ? [0] : value
        return stored.withUnsafeBytes { bytes in
            guard let address = bytes.baseAddress else { return -1 }
            return setXattr(fd, name, address, size, flags)
        }
    }

    static func setAttribute(_ fd: Int32, _ name: String, _ value: String, _ size: Int, _ flags: Int32) -> Int32 {
        setAttribute(fd, name, Array(value.utf8), size, flags)
    }

    private struct OpenHow {
        var flags: UInt64
        var mode: UInt64
        var resolve: UInt64
    }

    private static let openat2Number = 437
    private static let resolveNoMagicLinks: UInt64 = 0x02
    private static let resolveInRoot: UInt64 = 0x10

    /// glibc's `syscall`, which Swift cannot call (it is variadic); its arguments are all
    /// integers, passed as a plain function's are.
    private typealias Syscall = @convention(c) (Int, Int, UnsafePointer<CChar>, UnsafeRawPointer, Int) -> Int
    private static let syscall: Syscall? = {
        guard let symbol = dlsym(nil, "syscall") else { return nil }
        return unsafeBitCast(symbol, to: Syscall.self)
    }()
}
