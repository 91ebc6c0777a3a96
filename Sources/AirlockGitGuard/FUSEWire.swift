#if canImport(Glibc)
    import Glibc
#endif

/// The FUSE kernel protocol (`linux/fuse.h`, 7.31), as far as a passthrough filter needs it:
/// request headers and bodies read from `/dev/fuse`, replies written back. All little-endian,
/// at fixed offsets.
enum FUSEWire {
    static let major: UInt32 = 7
    static let minor: UInt32 = 31
    static let inHeaderSize = 40
    static let outHeaderSize = 16
    static let attrSize = 88
    static let rootNode: UInt64 = 1

    enum Opcode: UInt32 {
        case lookup = 1, forget = 2, getattr = 3, setattr = 4, readlink = 5, symlink = 6, mknod = 8, mkdir = 9
        case unlink = 10, rmdir = 11, rename = 12, link = 13, open = 14, read = 15, write = 16, statfs = 17
        case release = 18, fsync = 20, setxattr = 21, getxattr = 22, listxattr = 23, removexattr = 24
        case flush = 25, initialize = 26, opendir = 27, readdir = 28, releasedir = 29, fsyncdir = 30
        case getlk = 31, setlk = 32, setlkw = 33, access = 34, create = 35, interrupt = 36, bmap = 37
        case destroy = 38, ioctl = 39, poll = 40, batchForget = 42, fallocate = 43, readdirplus = 44
        case rename2 = 45, lseek = 46, copyFileRange = 47
    }

    /// Flags of `fuse_init_out`.
    static let asyncRead: UInt32 = 1 << 0
    static let atomicOTrunc: UInt32 = 1 << 3
    static let bigWrites: UInt32 = 1 << 5
    static let autoInvalData: UInt32 = 1 << 12
    static let maxPagesFlag: UInt32 = 1 << 22

    /// `fuse_open_out.open_flags`: no page cache (every read and write comes here); keep the
    /// page cache of an earlier open.
    static let directIO: UInt32 = 1 << 0
    static let keepCache: UInt32 = 1 << 1

    /// `fuse_setattr_in.valid` bits.
    static let setMode: UInt32 = 1 << 0
    static let setUID: UInt32 = 1 << 1
    static let setGID: UInt32 = 1 << 2
    static let setSize: UInt32 = 1 << 3
    static let setATime: UInt32 = 1 << 4
    static let setMTime: UInt32 = 1 << 5
    static let setHandle: UInt32 = 1 << 6
    static let setATimeNow: UInt32 = 1 << 7
    static let setMTimeNow: UInt32 = 1 << 8

    /// One request: the header's fields and the body after it.
    struct Request {
        var opcode: UInt32
        var unique: UInt64
        var node: UInt64
        var uid: UInt32
        var body: ArraySlice<UInt8>

        init?(_ bytes: ArraySlice<UInt8>) {
            guard bytes.count >= FUSEWire.inHeaderSize else { return nil }
            let base = bytes.startIndex
            opcode = FUSEWire.load32(bytes, base + 4)
            unique = FUSEWire.load64(bytes, base + 8)
            node = FUSEWire.load64(bytes, base + 16)
            uid = FUSEWire.load32(bytes, base + 24)
            body = bytes[(base + FUSEWire.inHeaderSize)...]
        }

        func u32(_ offset: Int) -> UInt32 { FUSEWire.load32(body, body.startIndex + offset) }
        func u64(_ offset: Int) -> UInt64 { FUSEWire.load64(body, body.startIndex + offset) }

        /// The NUL-terminated names after a fixed part of `offset` bytes.
        func names(after offset: Int) -> [String] {
            guard body.count >= offset else { return [] }
            return body[(body.startIndex + offset)...].split(separator: 0, omittingEmptySubsequences: false)
                .dropLast().map { String(decoding: $0, as: UTF8.self) }
        }
    }

    static func load32(_ bytes: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        guard at + 4 <= bytes.endIndex else { return 0 }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[at + index]) << (8 * UInt32(index)) }
        return value
    }

    static func load64(_ bytes: ArraySlice<UInt8>, _ at: Int) -> UInt64 {
        UInt64(load32(bytes, at)) | (UInt64(load32(bytes, at + 4)) << 32)
    }

    /// A reply body under construction.
    struct Reply {
        var bytes: [UInt8] = []

        mutating func u16(_ value: UInt16) {
            for index in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        mutating func u32(_ value: UInt32) {
            for index in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        mutating func u64(_ value: UInt64) {
            for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

        /// `fuse_attr` for a host `stat`, with its owner as the sandbox sees it.
        mutating func attr(_ info: stat, owner: (UInt32) -> UInt32, group: (UInt32) -> UInt32) {
            u64(UInt64(info.st_ino))
            u64(UInt64(info.st_size))
            u64(UInt64(info.st_blocks))
            u64(UInt64(bitPattern: Int64(info.st_atim.tv_sec)))
            u64(UInt64(bitPattern: Int64(info.st_mtim.tv_sec)))
            u64(UInt64(bitPattern: Int64(info.st_ctim.tv_sec)))
            u32(UInt32(info.st_atim.tv_nsec))
            u32(UInt32(info.st_mtim.tv_nsec))
            u32(UInt32(info.st_ctim.tv_nsec))
            u32(UInt32(info.st_mode))
            u32(UInt32(info.st_nlink))
            u32(owner(info.st_uid))
            u32(group(info.st_gid))
            u32(UInt32(truncatingIfNeeded: info.st_rdev))
            u32(UInt32(info.st_blksize))
            u32(0)
        }

        /// `fuse_entry_out`: a node and how long the kernel may cache it (not at all: the host's
        /// git changes the same directory while the sandbox runs).
        mutating func entry(node: UInt64, _ info: stat, owner: (UInt32) -> UInt32, group: (UInt32) -> UInt32) {
            u64(node)
            u64(0)  // generation
            u64(0)  // entry_valid
            u64(0)  // attr_valid
            u32(0)
            u32(0)
            attr(info, owner: owner, group: group)
        }

        mutating func attrOut(_ info: stat, owner: (UInt32) -> UInt32, group: (UInt32) -> UInt32) {
            u64(0)
            u32(0)
            u32(0)
            attr(info, owner: owner, group: group)
        }

        mutating func open(handle: UInt64, flags: UInt32 = 0) {
            u64(handle)
            u32(flags)
            u32(0)
        }

        /// One `fuse_dirent`, padded to 8 bytes; false when it does not fit in `limit`.
        mutating func dirent(inode: UInt64, offset: UInt64, type: UInt8, name: String, limit: Int) -> Bool {
            let nameBytes = Array(name.utf8)
            let size = 24 + nameBytes.count
            let padded = (size + 7) & ~7
            guard bytes.count + padded <= limit else { return false }
            u64(inode)
            u64(offset)
            u32(UInt32(nameBytes.count))
            u32(UInt32(type))
            bytes.append(contentsOf: nameBytes)
            zeros(padded - size)
            return true
        }
    }

    /// A success header at the start of `buffer`, whose body is already in place after it.
    static func writeHeader(into buffer: inout [UInt8], length: Int, unique: UInt64) {
        for index in 0..<4 { buffer[index] = UInt8(truncatingIfNeeded: UInt32(length) >> (8 * UInt32(index))) }
        for index in 4..<8 { buffer[index] = 0 }
        for index in 0..<8 { buffer[8 + index] = UInt8(truncatingIfNeeded: unique >> (8 * UInt64(index))) }
    }

    /// Header + body for a request's answer; `error` is a positive errno or 0.
    static func frame(unique: UInt64, error: Int32, body: [UInt8]) -> [UInt8] {
        var reply = Reply()
        reply.u32(UInt32(outHeaderSize + body.count))
        reply.u32(UInt32(bitPattern: -error))
        reply.u64(unique)
        reply.bytes.append(contentsOf: body)
        return reply.bytes
    }
}
