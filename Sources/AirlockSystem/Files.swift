import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Small file helpers with errors a user can read.
public enum Files {
    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The size in bytes of the file at `path`, nil if it cannot be seen.
    public static func size(_ path: String) -> Int64? {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : nil
    }

    /// Whether `path` itself is a symbolic link (not following it).
    public static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// One name in a directory and what it is (not following a symlink).
    public struct DirectoryEntry: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case directory, symlink, regular, other
        }

        public var name: String
        public var kind: Kind
    }

    /// The entries of a directory, unsorted, without `.` and `..`; empty when it cannot be
    /// read. One `readdir` pass: the kind comes from the directory itself where the file
    /// system says it, so walking a large tree costs no `stat` per file.
    public static func entries(of directory: String) -> [DirectoryEntry] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let kind: DirectoryEntry.Kind
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_LNK): kind = .symlink
            case Int32(DT_REG): kind = .regular
            case Int32(DT_UNKNOWN):
                var info = stat()
                guard lstat(directory + "/" + name, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: kind = .directory
                case S_IFLNK: kind = .symlink
                case S_IFREG: kind = .regular
                default: kind = .other
                }
            default: kind = .other
            }
            entries.append(DirectoryEntry(name: name, kind: kind))
        }
        return entries
    }

    public static func makeDirectory(_ path: String, mode: Int = 0o755) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw AirlockError(.failed, "cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Makes `relative` (and its parents) under `base`, refusing to pass through a symlink: for
    /// directories a sandbox could have changed, so that a link it left cannot steer the
    /// host into making directories elsewhere.
    public static func makeDirectories(_ relative: String, under base: String, mode: mode_t = 0o700) throws {
        var path = base
        for component in relative.split(separator: "/") where component != "." {
            guard component != ".." else { throw AirlockError(.invalidArgument, "'\(relative)' leaves \(base)") }
            path += "/" + component
            if mkdir(path, mode) != 0 && errno != EEXIST {
                throw AirlockError(.failed, "cannot create \(path)", cause: SystemCallError("mkdir", errno: errno))
            }
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw AirlockError(.failed, "cannot use \(path): it is not a directory (a symlink or file is there)")
            }
        }
    }

    public static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AirlockError(.notFound, "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a file only if it is a regular file (never following a symlink) no larger than
    /// `limit` bytes; nil otherwise.
    public static func readRegularFile(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= limit else { return nil }
        var buffer = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// Writes through a temporary file and a rename, so readers never see half a file. The
    /// file has `mode` from its creation: a secret is never readable by others, not even for
    /// the moment between creating a file and changing its mode.
    /// `durable` waits for the disk, for what must survive a crash (keys).
    public static func writeAtomically(_ path: String, _ contents: String, mode: Int = 0o644, durable: Bool = false)
        throws
    {
        let temporary = path + ".tmp.\(getpid())"
        unlink(temporary)  // left over by a crashed process that had our pid
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw SystemCallError("open \(temporary)", errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            var bytes = Array(contents.utf8)[...]
            while !bytes.isEmpty {
                let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { throw SystemCallError("write \(temporary)", errno: errno) }
                bytes = bytes.dropFirst(count)
            }
            guard !durable || fsync(fd) == 0 else { throw SystemCallError("fsync \(temporary)", errno: errno) }
        }
        guard rename(temporary, path) == 0 else { throw SystemCallError("rename \(temporary)", errno: errno) }
        renamed = true
    }

    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Whether `path` is `directory` or lies below it (both absolute and resolved).
    public static func isWithin(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/")
    }

    /// Resolves `path` against the current directory and follows symlinks.
    /// `path` from the working directory, its links not resolved: what a link at its name is
    /// replaced or refused, never followed, needs.
    public static func absoluteAsGiven(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    public static func absolute(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        return url.path
    }
}

/// Enough of a file's identity to notice a change (an atomic rename changes the inode; a file
/// added to or removed from a directory changes the directory's time), for caches of what was
/// read from it.
public struct FileStamp: Equatable, Sendable {
    var inode: UInt64
    var size: Int64
    var modified: Int
    var modifiedNanoseconds: Int

    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
    }

    /// The files of these directories, by path, each with its stamp: what changes when one is
    /// written by rename (a new inode), even within one tick of the clock, which a directory's
    /// own time may not show.
    public static func contents(of directories: [String]) -> [String: FileStamp?] {
        var stamps: [String: FileStamp?] = [:]
        for directory in directories {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                stamps[directory + "/" + name] = FileStamp(path: directory + "/" + name)
            }
        }
        return stamps
    }
}
