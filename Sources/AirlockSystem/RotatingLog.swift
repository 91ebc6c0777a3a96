import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A log of lines with a bounded size: appended to `path` until it reaches `maximumBytes`,
/// then moved to `path.1` (and `.1` to `.2`, ... up to `keep`, the oldest dropped) and started
/// anew. Each line is one `write` on an `O_APPEND` descriptor, so lines from several threads
/// never interleave. The whole log never holds more than `(keep + 1) * maximumBytes` (plus one
/// line).
public final class RotatingLog: Sendable {
    public let path: String
    public let maximumBytes: Int
    public let keep: Int
    private let state: Mutex<(fd: Int32, size: Int)>

    public static let defaultMaximumBytes = 8 << 20
    public static let defaultKeep = 3

    public init(path: String, maximumBytes: Int = RotatingLog.defaultMaximumBytes, keep: Int = RotatingLog.defaultKeep)
        throws
    {
        self.path = path
        self.maximumBytes = maximumBytes
        self.keep = keep
        let fd = try Self.open(path)
        var info = stat()
        let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        state = Mutex((fd, size))
    }

    deinit {
        _ = state.withLock { close($0.fd) }
    }

    public func append(_ line: [UInt8]) {
        var line = line
        if line.last != UInt8(ascii: "\n") { line.append(UInt8(ascii: "\n")) }
        state.withLock { state in
            if state.size > 0 && state.size + line.count > maximumBytes { rotate(&state) }
            let written = line.withUnsafeBytes { write(state.fd, $0.baseAddress, $0.count) }
            if written > 0 { state.size += written }
        }
    }

    /// The files of the log, oldest first (those that exist).
    public static func files(of path: String, keep: Int = RotatingLog.defaultKeep) -> [String] {
        (stride(from: keep, through: 1, by: -1).map { "\(path).\($0)" } + [path]).filter { access($0, F_OK) == 0 }
    }

    private func rotate(_ state: inout (fd: Int32, size: Int)) {
        unlink("\(path).\(keep)")
        for index in stride(from: keep - 1, through: 1, by: -1) {
            rename("\(path).\(index)", "\(path).\(index + 1)")
        }
        if keep > 0 { rename(path, "\(path).1") } else { unlink(path) }
        guard let fresh = try? Self.open(path) else { return }
        close(state.fd)
        state = (fresh, 0)
    }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(path)", errno: errno) }
        return fd
    }
}

/// Reads a ``RotatingLog``: its last lines without reading the rest, and what is appended
/// after (across a rotation) without reading anything twice.
public struct LogTail {
    public let path: String
    public let keep: Int
    private var offset: Int64 = 0
    private var inode: UInt64?
    private var partial: [UInt8] = []

    public init(path: String, keep: Int = RotatingLog.defaultKeep) {
        self.path = path
        self.keep = keep
    }

    /// Every line now in the log, oldest first; what follows is for ``readNew()``.
    public mutating func readAll() -> [[UInt8]] {
        let older = RotatingLog.files(of: path, keep: keep).dropLast().flatMap { file in
            Self.lines(of: Self.readFile(file, from: 0).bytes)
        }
        return older + readNew()
    }

    /// The last `count` lines (or fewer), reading backwards from the end of the current file
    /// and into the rotated ones only as far as needed; what follows is for ``readNew()``.
    public mutating func readLast(_ count: Int) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var first = true
        for file in RotatingLog.files(of: path, keep: keep).reversed() {
            let (found, end, inode) = Self.lastLines(of: file, count: count - lines.count)
            if first, file == path {
                offset = end
                self.inode = inode
            }
            first = false
            lines = found + lines
            if lines.count >= count { break }
        }
        if inode == nil {
            // No current file yet: follow from its start once it exists.
            offset = 0
        }
        return lines
    }

    /// The complete lines appended since the last read. A rotation is noticed by the file's
    /// inode: the rest of the old file (now `.1`) is read first, then the new one from its start.
    public mutating func readNew() -> [[UInt8]] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        var bytes: [UInt8] = []
        if let inode, inode != UInt64(info.st_ino) {
            bytes += Self.readFile("\(path).1", from: offset, expecting: inode).bytes
            offset = 0
        }
        let (fresh, end) = Self.readFile(path, from: offset)
        inode = UInt64(info.st_ino)
        offset = end
        partial += bytes + fresh
        guard let last = partial.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let complete = Array(partial[...last])
        partial = Array(partial[(last + 1)...])
        return Self.lines(of: complete)
    }

    static func lines(of bytes: [UInt8]) -> [[UInt8]] {
        bytes.split(separator: UInt8(ascii: "\n")).map(Array.init)
    }

    /// The bytes of `file` from `offset` to its end, and where that end is; nothing if it is
    /// not the file `expecting` names.
    private static func readFile(_ file: String, from offset: Int64, expecting inode: UInt64? = nil) -> (
        bytes: [UInt8], end: Int64
    ) {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], offset) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, inode == nil || UInt64(info.st_ino) == inode else { return ([], offset) }
        let size = Int64(info.st_size)
        guard size > offset else { return ([], size < offset ? size : offset) }
        var bytes = [UInt8](repeating: 0, count: Int(size - offset))
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard count > 0 else { return ([], offset) }
        return (Array(bytes[..<count]), offset + Int64(count))
    }

    /// Up to `count` complete lines from the end of `file`, read backwards in blocks; and the
    /// offset just past the last complete line, and the file's inode.
    private static func lastLines(of file: String, count: Int) -> (lines: [[UInt8]], end: Int64, inode: UInt64?) {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], 0, nil) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return ([], 0, nil) }
        let size = Int64(info.st_size)
        var position = size
        var chunks: [[UInt8]] = []
        var newlines = 0
        let block: Int64 = 64 << 10
        // Enough bytes for count + 1 newlines (the last may end an incomplete line), or all;
        // each block is read and counted once.
        while position > 0 && newlines <= count {
            let start = max(0, position - block)
            var chunk = [UInt8](repeating: 0, count: Int(position - start))
            let read = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
            guard read == chunk.count else { break }
            newlines += chunk.count(where: { $0 == UInt8(ascii: "\n") })
            chunks.append(chunk)
            position = start
        }
        var tail = [UInt8]()
        tail.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
        for chunk in chunks.reversed() { tail += chunk }
        // A line still being written is left for the next read.
        var end = size
        if let last = tail.lastIndex(of: UInt8(ascii: "\n")) {
            end = size - Int64(tail.count - last - 1)
            tail = Array(tail[...last])
        } else {
            return ([], position, UInt64(info.st_ino))
        }
        var lines = lines(of: tail)
        // The first piece may be the end of a line that starts before the bytes read.
        if position > 0 && !lines.isEmpty { lines.removeFirst() }
        return (Array(lines.suffix(count)), end, UInt64(info.st_ino))
    }
}
