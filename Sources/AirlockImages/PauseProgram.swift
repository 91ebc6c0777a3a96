import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a sandbox's init waits on in an image that has no `sleep` (distroless and `scratch`
/// images, which Docker's MCP catalog is full of): a static x86-64 program of 129 bytes, written
/// here byte by byte, that calls `pause(2)` for ever. It needs no libc, no loader, no file of
/// the image; a signal's default action ends it. `tini`, the init, is the host's static one.
public enum PauseProgram {
    /// Where it goes in an image's tree.
    public static let path = "/usr/bin/airlock-pause"

    /// Whether this machine runs it (the bytes are x86-64 code).
    public static var isAvailable: Bool {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return machine == "x86_64"
    }

    /// The ELF file: a 64-byte header, one loadable segment, and the loop
    /// `mov eax, 34 (pause); syscall; jmp back`.
    public static let bytes: [UInt8] = {
        let base: UInt64 = 0x40_0000
        let code: [UInt8] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]
        let size = UInt64(64 + 56 + code.count)
        var file: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        func put16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { file += $0 } }
        func put32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { file += $0 } }
        func put64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { file += $0 } }
        // e_type EXEC, e_machine x86-64, e_version, e_entry, e_phoff, e_shoff, e_flags.
        put16(2)
        put16(0x3e)
        put32(1)
        put64(base + 64 + 56)
        put64(64)
        put64(0)
        put32(0)
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
        for value: UInt16 in [64, 56, 1, 0, 0, 0] { put16(value) }
        // PT_LOAD, read + execute, the whole file at `base`.
        put32(1)
        put32(5)
        put64(0)
        put64(base)
        put64(base)
        put64(size)
        put64(size)
        put64(0x1000)
        return file + code
    }()

    /// Writes the program at ``path`` in the tree at `root` (an open directory), in place of
    /// whatever the image had there.
    static func add(to root: Int32) throws {
        let directory = LayerUnpacker.openInRoot(root, "usr/bin")
        guard directory >= 0 else { throw SystemCallError("open the image's /usr/bin", errno: errno) }
        defer { close(directory) }
        let name = "airlock-pause"
        try LayerUnpacker.remove(name, in: directory)
        let fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw SystemCallError("add \(path) to the image", errno: errno) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw SystemCallError("add \(path) to the image", errno: errno) }
        fchmod(fd, 0o755)
    }
}
