import AirlockSystem
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One member of a tar stream, with what pax and GNU extension headers said about it applied.
public struct TarEntry: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case file, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
    }

    public var path: String
    public var kind: Kind
    /// Permission bits with set-id and sticky bits.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var modified: timespec
    /// A link's target (hard link: a path in the archive; symbolic: anything).
    public var linkTarget: String
    /// Extended attributes from pax `SCHILY.xattr.` records.
    public var xattrs: [String: [UInt8]]

    public static func == (a: TarEntry, b: TarEntry) -> Bool {
        a.path == b.path && a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid
            && a.size == b.size && a.modified.tv_sec == b.modified.tv_sec && a.linkTarget == b.linkTarget
            && a.xattrs == b.xattrs
    }
}

public struct TarError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Reads a tar stream from a descriptor, member by member: ustar and GNU headers, GNU long
/// names, pax extended headers (local and global), sizes and ids in base-256. Bodies stream
/// through ``readBody(_:_:)``; nothing is kept but one block and the current member's header.
public struct TarReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes of the current member's body (and its padding) not read yet.
    private var pending: Int64 = 0
    private var globalPax: [String: [UInt8]] = [:]
    /// Every byte read, hashed.
    private var hasher = SHA256()

    static let block = 512

    public init(fd: Int32) {
        self.fd = fd
    }

    /// The next member, or nil at the end of the archive.
    public mutating func next() throws -> TarEntry? {
        try skip(pending)
        pending = 0
        var pax: [String: [UInt8]] = [:]
        var longName: String?
        var longLink: String?
        while true {
            guard let header = try readExactly(Self.block) else { return nil }
            if header.allSatisfy({ $0 == 0 }) { return nil }
            guard Self.checksumMatches(header) else { throw TarError("a tar header's checksum is wrong") }
            let type = header[156]
            let size = try Self.number(header[124..<136], "size")
            guard size >= 0 else { throw TarError("a tar member has a negative size") }
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try Self.paxRecords(try readBody(size: size))
                if type == UInt8(ascii: "g") {
                    globalPax.merge(records) { $1 }
                } else {
                    pax.merge(records) { $1 }
                }
                // Each header is at most 1 MiB; so are all that apply at once, however many
                // headers a layer strings together.
                let held = (globalPax.values.map(\.count) + pax.values.map(\.count)).reduce(0, +)
                guard held <= Self.extendedHeaderLimit else {
                    throw TarError("the extended tar headers of one member add up to more than 1 MiB")
                }
                continue
            case UInt8(ascii: "L"):
                longName = Self.string(try readBody(size: size)[...])
                continue
            case UInt8(ascii: "K"):
                longLink = Self.string(try readBody(size: size)[...])
                continue
            default:
                break
            }
            let raw = globalPax.merging(pax) { $1 }
            let records = raw.mapValues { String(decoding: $0, as: UTF8.self) }
            var entry = try Self.entry(header, size: size)
            if let longName { entry.path = longName }
            if let longLink { entry.linkTarget = longLink }
            if let path = records["path"] { entry.path = path }
            if let target = records["linkpath"] { entry.linkTarget = target }
            if let value = records["size"] {
                guard let size = Int64(value), size >= 0 else { throw TarError("a pax size is not a number") }
                entry.size = size
            }
            if let value = records["uid"] { entry.uid = UInt32(value) ?? entry.uid }
            if let value = records["gid"] { entry.gid = UInt32(value) ?? entry.gid }
            if let value = records["mtime"] { entry.modified = Self.time(value) ?? entry.modified }
            for (key, value) in raw where key.hasPrefix("SCHILY.xattr.") {
                entry.xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = value
            }
            // Only regular files carry a body (a hard link's size is its target's).
            let hasBody = entry.kind == .file
            if !hasBody { entry.size = 0 }
            pending = hasBody ? Self.padded(entry.size) : 0
            return entry
        }
    }

    /// Streams the current member's body to `sink`, a chunk at a time.
    public mutating func readBody(_ entry: TarEntry, _ sink: (ArraySlice<UInt8>) throws -> Void) throws {
        var left = entry.size
        while left > 0 {
            try fill(1)
            guard start < buffer.count else {
                throw TarError("the archive ends inside \(LayerUnpacker.shown([entry.path]))")
            }
            let take = Int(min(Int64(buffer.count - start), left))
            try sink(buffer[start..<(start + take)])
            start += take
            left -= Int64(take)
        }
        pending = Self.padded(entry.size) - entry.size
    }

    /// Reads what follows the end of the archive (its zero blocks and any padding) and returns
    /// the `sha256:` digest of the whole stream.
    public mutating func finish() throws -> String {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw TarError("cannot read the archive: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
        }
        return "sha256:" + hex(hasher.finalize())
    }

    // MARK: reading

    private mutating func readBody(size: Int64) throws -> [UInt8] {
        guard size <= Self.extendedHeaderLimit else { throw TarError("an extended tar header is larger than 1 MiB") }
        guard let body = try readExactly(Int(size)) else { throw TarError("the archive ends inside a header") }
        try skip(Self.padded(size) - size)
        return body
    }

    private mutating func readExactly(_ count: Int) throws -> [UInt8]? {
        try fill(count)
        guard buffer.count - start >= count else {
            if buffer.count == start { return nil }
            throw TarError("the archive ends in the middle of a block")
        }
        defer { start += count }
        return Array(buffer[start..<(start + count)])
    }

    private mutating func skip(_ count: Int64) throws {
        var left = count
        while left > 0 {
            try fill(1)
            guard start < buffer.count else { throw TarError("the archive ends inside a member") }
            let take = Int(min(Int64(buffer.count - start), left))
            start += take
            left -= Int64(take)
        }
    }

    /// Reads until `count` bytes are buffered or the stream ends.
    private mutating func fill(_ count: Int) throws {
        if buffer.count - start >= count { return }
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: max(count, 256 * 1024))
        while buffer.count < count {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw TarError("cannot read the archive: \(String(cString: strerror(errno)))") }
            if got == 0 { return }
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
            buffer += chunk[0..<got]
        }
    }

    // MARK: fields

    static let extendedHeaderLimit = 1 << 20

    static func padded(_ size: Int64) -> Int64 { (size + 511) / 512 * 512 }

    static func checksumMatches(_ header: [UInt8]) -> Bool {
        guard let stored = try? number(header[148..<156], "checksum") else { return false }
        var unsigned = 0
        var signed = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? 32 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        return stored == Int64(unsigned) || stored == Int64(signed)
    }

    static func entry(_ header: [UInt8], size: Int64) throws -> TarEntry {
        var path = string(header[0..<100])
        let magic = Array(header[257..<263])
        // ustar's prefix field (GNU's headers use those bytes for times instead).
        if magic == Array("ustar\0".utf8) {
            let prefix = string(header[345..<500])
            if !prefix.isEmpty { path = prefix + "/" + path }
        }
        let kind: TarEntry.Kind
        switch header[156] {
        // A name ending in "/" makes a directory only of the old type NUL, as Go's archive/tar
        // (Docker's) reads it: a '0' member keeps its body whatever its name.
        case 0: kind = path.utf8.last == UInt8(ascii: "/") ? .directory : .file
        case UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        default:
            let type = header[156]
            let shown = (33...126).contains(type) ? String(UnicodeScalar(type)) : "byte \(type)"
            throw TarError("a tar member of an unknown type '\(shown)' (\(LayerUnpacker.shown([path])))")
        }
        let seconds = try number(header[136..<148], "time")
        return TarEntry(
            path: path, kind: kind, mode: UInt32(truncatingIfNeeded: try number(header[100..<108], "mode")) & 0o7777,
            uid: UInt32(truncatingIfNeeded: try number(header[108..<116], "uid")),
            gid: UInt32(truncatingIfNeeded: try number(header[116..<124], "gid")), size: size,
            modified: timespec(tv_sec: Int(seconds), tv_nsec: 0), linkTarget: string(header[157..<257]), xattrs: [:])
    }

    /// An octal field (NUL- or space-ended), or base-256 when its first byte has the high bit.
    static func number(_ field: ArraySlice<UInt8>, _ what: String) throws -> Int64 {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            // GNU's base-256: two's complement, so 0xff starts a negative number. No size, id
            // or time of a layer's is negative.
            guard first & 0x40 == 0 else { throw TarError("a tar \(what) is negative") }
            var value: Int64 = Int64(first & 0x3f)
            for byte in field.dropFirst() {
                guard value < (Int64.max >> 8) else { throw TarError("a tar \(what) is too large") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var digits = 0
        for byte in field {
            if byte == 0 || (byte == 32 && digits > 0) { break }
            if byte == 32 { continue }
            guard (48...55).contains(byte) else { throw TarError("a tar \(what) field is not octal") }
            guard value < (Int64.max >> 3) else { throw TarError("a tar \(what) is too large") }
            value = value * 8 + Int64(byte - 48)
            digits += 1
        }
        return value
    }

    static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// `LENGTH KEY=VALUE\n` records; values as bytes (an xattr's may be binary).
    static func paxRecords(_ data: [UInt8]) throws -> [String: [UInt8]] {
        var records: [String: [UInt8]] = [:]
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: 32), let length = Int(string(data[index..<space])),
                length > 0, index + length <= data.count, data[index + length - 1] == 10
            else { throw TarError("a pax header is malformed") }
            let record = data[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw TarError("a pax record has no '='")
            }
            records[String(decoding: record[record.startIndex..<equals], as: UTF8.self)] = Array(
                record[(equals + 1)...])
            index += length
        }
        return records
    }

    /// A pax time: seconds, maybe with a fraction.
    static func time(_ text: String) -> timespec? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard let seconds = parts.first.flatMap({ Int($0) }) else { return nil }
        var nanoseconds = 0
        if parts.count == 2 {
            let digits = String(parts[1].prefix(9)).padding(toLength: 9, withPad: "0", startingAt: 0)
            nanoseconds = Int(digits) ?? 0
        }
        return timespec(tv_sec: seconds, tv_nsec: nanoseconds)
    }
}
