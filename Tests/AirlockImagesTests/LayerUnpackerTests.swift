import Foundation
import Testing

@testable import AirlockImages

#if canImport(Glibc)
    import Glibc
#endif

/// Layers made by Python's tarfile (as Docker and BuildKit write them), unpacked for real.
@Suite struct LayerUnpackerTests {
    /// Writes a tar made by `script` (Python, with `tar` an open tarfile and `add` a helper)
    /// and returns its path.
    func makeTar(_ script: String) throws -> String {
        let path = NSTemporaryDirectory() + "airlock-layer-\(UUID().uuidString).tar"
        let program = """
            import io, sys, tarfile
            tar = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
            def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link="", pax=None, mtime=1700000000):
                info = tarfile.TarInfo(name)
                info.type = kind; info.mode = mode; info.uid = uid; info.gid = gid; info.linkname = link
                info.mtime = mtime; info.size = len(data) if kind == tarfile.REGTYPE else 0
                if pax: info.pax_headers = pax
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            \(script)
            tar.close()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", program, path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return path
    }

    func unpack(_ tar: String, into directory: String) throws -> LayerUnpacker.Summary {
        let fd = open(tar, O_RDONLY)
        defer { close(fd) }
        return try LayerUnpacker.unpack(from: fd, into: directory, setOwners: getuid() == 0)
    }

    func scratch() -> String { NSTemporaryDirectory() + "airlock-layer-\(UUID().uuidString)" }

    func attribute(_ path: String, _ name: String) -> String? {
        typealias Get = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer, Int) -> Int
        guard let symbol = dlsym(nil, "lgetxattr") else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { bytes in
            bytes.baseAddress.map { unsafeBitCast(symbol, to: Get.self)(path, name, $0, 256) } ?? -1
        }
        return count < 0 ? nil : String(decoding: buffer[0..<count], as: UTF8.self)
    }

    @Test func filesLinksAndModesAreAsTheLayerSays() throws {
        let long = String(repeating: "d", count: 120)
        let tar = try makeTar(
            """
            add("usr", tarfile.DIRTYPE, mode=0o755)
            add("usr/bin/tool", data=b"#!/bin/sh\\n", mode=0o4755)
            add("usr/bin/same", tarfile.LNKTYPE, link="usr/bin/tool")
            add("root-link", tarfile.SYMTYPE, link="/")
            add("etc/\(long)/file", data=b"long")
            add("dev/null", tarfile.CHRTYPE)
            add("run/pipe", tarfile.FIFOTYPE, mode=0o600)
            add("home/agent/notes", data=b"x", uid=1000, gid=1000, pax={"SCHILY.xattr.user.note": "kept", "SCHILY.xattr.user.overlay.opaque": "y"})
            add("readonly", tarfile.DIRTYPE, mode=0o555)
            add("readonly/inside", data=b"made before its directory was closed")
            """)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let summary = try unpack(tar, into: root)

        #expect(summary.devicesSkipped == 1)
        var info = stat()
        #expect(lstat(root + "/usr/bin/tool", &info) == 0 && info.st_mode & 0o7777 == 0o4755)
        var same = stat()
        #expect(lstat(root + "/usr/bin/same", &same) == 0 && same.st_ino == info.st_ino)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/root-link") == "/")
        #expect(try String(contentsOfFile: root + "/etc/\(long)/file", encoding: .utf8) == "long")
        #expect(lstat(root + "/dev/null", &info) != 0)
        #expect(lstat(root + "/run/pipe", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(attribute(root + "/home/agent/notes", "user.note") == "kept")
        #expect(attribute(root + "/home/agent/notes", "user.overlay.opaque") == nil)
        #expect(lstat(root + "/readonly", &info) == 0 && info.st_mode & 0o777 == 0o555)
        #expect(lstat(root + "/readonly/inside", &info) == 0)
        #expect(lstat(root + "/usr/bin/tool", &info) == 0 && info.st_mtim.tv_sec == 1_700_000_000)
        if getuid() == 0 {
            #expect(lstat(root + "/home/agent/notes", &info) == 0 && info.st_uid == 1000 && info.st_gid == 1000)
        }
        chmod(root + "/readonly", 0o755)
    }

    @Test func pathsNeverLeaveTheLayer() throws {
        let outside = scratch()
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "host".write(toFile: outside + "/victim", atomically: false, encoding: .utf8)
        let tar = try makeTar(
            """
            add("\(outside)", tarfile.DIRTYPE, mode=0o755)
            add("abs", tarfile.SYMTYPE, link="\(outside)")
            add("abs/planted", data=b"through an absolute link")
            add("up", tarfile.SYMTYPE, link="../../../../../../..\(outside)")
            add("up/planted-up", data=b"through a relative link")
            add("../../../../../..\(outside)/dotdot", data=b"by dot-dot")
            add("root", tarfile.SYMTYPE, link="/")
            add("root\(outside)/via-root", data=b"through a link to /")
            """)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try unpack(tar, into: root)

        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["victim"])
        #expect(try String(contentsOfFile: outside + "/victim", encoding: .utf8) == "host")
        for name in ["planted", "planted-up", "dotdot", "via-root"] {
            #expect(FileManager.default.fileExists(atPath: root + outside + "/" + name), "\(name)")
        }
    }

    @Test func aLinkToADirectoryTheLayerLacksLeadsNowhere() throws {
        let outside = scratch()
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let tar = try makeTar(
            """
            add("abs", tarfile.SYMTYPE, link="\(outside)")
            add("abs/planted", data=b"through an absolute link")
            """)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: (any Error).self) { _ = try unpack(tar, into: root) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test func aSlashJoinedToAMarkIsStillASlash() throws {
        // Swift's characters join "/" to a prepended (U+0600) or combining (U+0301) mark.
        #expect(try LayerUnpacker.components("v\u{600}/.bashrc") == ["v\u{600}", ".bashrc"])
        #expect(try LayerUnpacker.components("evil2/\u{301}x") == ["evil2", "\u{301}x"])
        #expect(try LayerUnpacker.components("a/./b/../../../c") == ["c"])
        #expect(throws: TarError.self) { try LayerUnpacker.components("..\u{0}x") }
        let outside = scratch()
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let tar = try makeTar(
            """
            add("v\\u0600", tarfile.SYMTYPE, link="\(outside)")
            add("v\\u0600/planted", data=b"through a joined slash")
            add("w", tarfile.SYMTYPE, link="\(outside)")
            add("w/\\u0301planted", data=b"through a combining mark")
            """)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try? unpack(tar, into: root)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test func theDigestOfTheWholeStreamIsReported() throws {
        let tar = try makeTar(#"add("a", data=b"x")"#)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let summary = try unpack(tar, into: root)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [tar]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
        #expect(summary.digest == "sha256:" + expected)
    }

    @Test func unpackingStopsBeforeTheDiskFills() throws {
        // 40 MiB of zeros: a few kilobytes once compressed, as a decompression bomb's are.
        let tar = try makeTar(#"add("zeros", data=bytes(40 << 20))"#)
        defer { unlink(tar) }
        func unpack(keepFree: Int64) throws -> Int64 {
            let root = scratch()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let fd = open(tar, O_RDONLY)
            defer { close(fd) }
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let directory = open(root, O_RDONLY | O_DIRECTORY)
            defer { close(directory) }
            do {
                _ = try LayerUnpacker.unpack(from: fd, intoDirectory: directory, setOwners: false, keepFree: keepFree)
            } catch {
                #expect("\(error)".contains("decompression bomb"))
            }
            var info = stat()
            return stat(root + "/zeros", &info) == 0 ? Int64(info.st_size) : -1
        }
        // Companion: with room, the whole file is written.
        #expect(try unpack(keepFree: 0) == 40 << 20)
        // Without it, writing stops at the first look at the free space.
        let interval = LayerUnpacker.spaceCheckInterval
        #expect((interval..<(interval + (1 << 20))).contains(try unpack(keepFree: .max)))
        #expect(LayerUnpacker.defaultReserve(totalBytes: 10 << 30) == 512 << 20)
        #expect(LayerUnpacker.defaultReserve(totalBytes: 1 << 40) == 2 << 30)
    }

    @Test func aHardLinkToAFileOutsideTheLayerIsRefused() throws {
        let tar = try makeTar(#"add("passwd", tarfile.LNKTYPE, link="/etc/passwd")"#)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: (any Error).self) { _ = try unpack(tar, into: root) }
        #expect(!FileManager.default.fileExists(atPath: root + "/passwd"))
    }

    @Test(.enabled(if: getuid() == 0, "a whiteout is a device node: made as root, or root of a user namespace"))
    func whiteoutsAndOpaqueDirectoriesAreOverlayfsOnes() throws {
        let tar = try makeTar(
            """
            add("etc", tarfile.DIRTYPE, mode=0o755)
            add("etc/.wh.gone")
            add("var/cache/.wh..wh..opq")
            add("var/cache/new", data=b"after the marker")
            """)
        defer { unlink(tar) }
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try unpack(tar, into: root)
        var info = stat()
        #expect(lstat(root + "/etc/gone", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0)
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/.wh.gone"))
        #expect(attribute(root + "/var/cache", "user.overlay.opaque") == "y")
        #expect(FileManager.default.fileExists(atPath: root + "/var/cache/new"))
    }

    @Test func aRegularMemberNamedLikeADirectoryKeepsItsBody() throws {
        // As Go's archive/tar reads it: only type NUL turns a trailing "/" into a directory.
        let tar = try makeTar(
            """
            add("dir/", data=b"a body that is not a hidden archive")
            add("after", data=b"next")
            """)
        defer { unlink(tar) }
        let fd = open(tar, O_RDONLY)
        defer { close(fd) }
        var reader = TarReader(fd: fd)
        let first = try #require(try reader.next())
        #expect(first.kind == .file && first.size == 35)
        #expect(try reader.next()?.path == "after")
    }

    @Test func tarHeadersInEveryFormatAreRead() throws {
        // GNU long names and base-256 numbers, as GNU tar writes them.
        let tar = try makeTar(
            """
            tar.format = tarfile.GNU_FORMAT
            add("g/" + "n" * 150, data=b"gnu long name")
            add("big-uid", data=b"", uid=0o10000000 + 5)
            """)
        defer { unlink(tar) }
        let fd = open(tar, O_RDONLY)
        defer { close(fd) }
        var reader = TarReader(fd: fd)
        let first = try #require(try reader.next())
        #expect(first.path == "g/" + String(repeating: "n", count: 150))
        var body: [UInt8] = []
        try reader.readBody(first) { body += $0 }
        #expect(String(decoding: body, as: UTF8.self) == "gnu long name")
        let second = try #require(try reader.next())
        #expect(second.uid == 0o10000000 + 5)
        #expect(try reader.next() == nil)
    }

    @Test func negativeNumbersAndHeapsOfExtendedHeadersAreRefused() throws {
        // GNU base-256 is two's complement: a uid of -1 is refused, not read as a large id.
        let negative = try makeTar(
            """
            tar.format = tarfile.GNU_FORMAT
            add("neg", data=b"", uid=-1)
            """)
        defer { unlink(negative) }
        // Three local pax headers of 600 KiB each before one member: more than 1 MiB at once.
        let heaped = try makeTar(
            """
            for i in range(3):
                info = tarfile.TarInfo("x")
                info.type = tarfile.XHDTYPE
                record = b" k%d=" % i + b"v" * (600 << 10) + b"\\n"
                size = len(record) + 8
                record = b"%d" % size + record
                record = b"%d" % (len(record)) + record[len(str(size)):]
                info.size = len(record)
                tar.fileobj.write(info.tobuf(tarfile.USTAR_FORMAT))
                tar.fileobj.write(record + b"\\0" * (-len(record) % 512))
                tar.offset += 512 + len(record) + (-len(record) % 512)
            add("after")
            """)
        defer { unlink(heaped) }
        for (tar, expected) in [(negative, "negative"), (heaped, "more than 1 MiB")] {
            let fd = open(tar, O_RDONLY)
            defer { close(fd) }
            var reader = TarReader(fd: fd)
            #expect {
                _ = try reader.next()
            } throws: { "\($0)".contains(expected) }
        }
    }
}
