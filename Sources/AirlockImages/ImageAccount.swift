import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The account an agent runs as in a root filesystem made from someone else's image: the
/// image's own user with uid 1000 (`node` in node's images, `vscode` in devcontainers), else
/// an `agent` added with uid 1000; with password-less sudo only if the image has sudo.
///
/// The files are the image's, so nothing in them is followed: `/etc` is opened inside the root
/// (`RESOLVE_IN_ROOT`), and a link in place of `/etc/passwd` is replaced, never written
/// through. Runs as root of the user namespace, on a tree whose files are links to the
/// layers': a changed file is written anew, never in place.
public enum ImageAccount {
    public static let uid = 1000

    /// Sets the account up in `rootfs` and returns it.
    public static func setUp(in rootfs: String, preferredName: String = "agent") throws -> Template.UserSetup {
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(rootfs)", errno: errno) }
        defer { close(root) }
        _ = mkdirat(root, "etc", 0o755)
        let etc = LayerUnpacker.openInRoot(root, "etc")
        guard etc >= 0 else { throw SystemCallError("open the image's /etc", errno: errno) }
        defer { close(etc) }
        let shell = exists(root, "bin/bash") ? "/bin/bash" : "/bin/sh"
        let passwd = read(etc, "passwd") ?? "root:x:0:0:root:/root:/bin/sh\n"
        var name = preferredName
        var home = "/home/" + preferredName
        if let line = passwd.split(separator: "\n").first(where: {
            $0.split(separator: ":", omittingEmptySubsequences: false).dropFirst(2).first == "\(uid)"
        }) {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard isUserName(fields[0]) else {
                throw AirlockError(
                    .unsupported,
                    "the image's account with uid \(uid) has a name Airlock cannot use: '\(fields[0].prefix(40))'")
            }
            name = fields[0]
            // Its home as the image says, if it is one to mount a home over; /home/NAME otherwise.
            home = fields.count > 5 && isHome(fields[5], in: root) ? fields[5] : "/home/" + name
        } else {
            let taken = Set(passwd.split(separator: "\n").map { String($0.prefix { $0 != ":" }) })
            if taken.contains(name) { name = "airlock-agent" }
            try replace(etc, "passwd", with: Self.appending(passwd, "\(name):x:\(uid):\(uid)::\(home):\(shell)"))
            let group = read(etc, "group") ?? "root:x:0:\n"
            if !group.split(separator: "\n").contains(where: {
                $0.split(separator: ":", omittingEmptySubsequences: false).dropFirst(2).first == "\(uid)"
            }) {
                try replace(etc, "group", with: Self.appending(group, "\(name):x:\(uid):"))
            }
            if let shadow = read(etc, "shadow") {
                try replace(etc, "shadow", with: Self.appending(shadow, "\(name):!:19000::::::"), mode: 0o640)
            }
        }
        try makeHome(root, home)
        var sudo = false
        if exists(root, "usr/bin/sudo") {
            _ = mkdirat(etc, "sudoers.d", 0o750)
            let directory = openat(etc, "sudoers.d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if directory >= 0 {
                defer { close(directory) }
                let rules =
                    "\(name) ALL=(ALL:ALL) NOPASSWD:ALL\nDefaults env_keep += \"\(Mmdebstrap.sudoKeptVariables.joined(separator: " "))\"\n"
                try replace(directory, "airlock", with: rules, mode: 0o440)
                sudo = true
            }
        }
        return Template.UserSetup(name: name, shell: shell, sudo: sudo, home: home == "/home/" + name ? nil : home)
    }

    /// A name `useradd` accepts: lowercase letters, digits, `_`, `-`, `.`, not starting with `-`.
    static func isUserName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "-"), name.utf8.count <= 32 else { return false }
        return name.utf8.allSatisfy {
            (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: ".")
        }
    }

    /// An absolute path of printable ASCII with no `.`, `..` or empty components (an image's
    /// other homes are not followed: `/home/NAME` is used instead).
    static func isPlainPath(_ path: String) -> Bool {
        guard path.utf8.first == UInt8(ascii: "/"), path.utf8.allSatisfy({ (33...126).contains($0) }) else {
            return false
        }
        let components = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        return !components.isEmpty
            && components.allSatisfy { !$0.isEmpty && !$0.elementsEqual(".".utf8) && !$0.elementsEqual("..".utf8) }
    }

    /// Whether `path` may be a home Airlock mounts the account's own directory over: `/root`,
    /// or a directory below `/home`, `/srv`, `/opt` or `/var/lib` (never one of those itself:
    /// an image's `bin` account lives in `/bin`, `sys` in `/dev`, `www-data` in `/var/www`).
    static func isHomeLocation(_ path: String) -> Bool {
        guard isPlainPath(path) else { return false }
        let parts = bytewiseComponents(path)
        return path == "/root" || (parts.count >= 2 && ["home", "srv", "opt"].contains(parts[0]))
            || (parts.count >= 3 && parts[0] == "var" && parts[1] == "lib")
    }

    /// ``isHomeLocation(_:)``, and in the image at `root` reached without a link, each part a
    /// directory or missing (a home that links to `/proc/1` is no home).
    static func isHome(_ path: String, in root: Int32) -> Bool {
        guard isHomeLocation(path) else { return false }
        var directory = dup(root)
        defer { close(directory) }
        for part in bytewiseComponents(path) {
            var info = stat()
            guard fstatat(directory, part, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return errno == ENOENT }
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return false }
            let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return false }
            close(directory)
            directory = next
        }
        return true
    }

    /// A path's components, split on the byte `/` (never on Swift's characters, which join a
    /// `/` to a combining mark after it).
    static func bytewiseComponents(_ path: String) -> [String] {
        path.utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
    }

    static func appending(_ text: String, _ line: String) -> String {
        (text.isEmpty || text.hasSuffix("\n") ? text : text + "\n") + line + "\n"
    }

    /// Whether something is at `path` in the tree at `root` (looked up inside it, the last
    /// part not followed).
    static func exists(_ root: Int32, _ path: String) -> Bool {
        let components = bytewiseComponents(path)
        let parent = LayerUnpacker.openInRoot(root, components.dropLast().joined(separator: "/"))
        guard parent >= 0, let last = components.last else { return false }
        defer { close(parent) }
        var info = stat()
        return fstatat(parent, String(last), &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// The most of an image's account file read: an image can make its `/etc/passwd` as large
    /// as it likes, and nothing real comes near this.
    static let accountFileLimit = 4 << 20

    /// A small regular file of `directory`, or nil (missing, not a plain file, or larger than
    /// ``accountFileLimit``).
    static func read(_ directory: Int32, _ name: String) -> String? {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= accountFileLimit else {
            return nil
        }
        let bytes: Data
        do {
            bytes =
                try FileHandle(fileDescriptor: fd, closeOnDealloc: false).read(upToCount: accountFileLimit) ?? Data()
        } catch {
            return nil
        }
        // CRLF files (made on Windows) read as Unix ones.
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// Writes a new file in place of `name` (whatever it was: a link is not followed).
    static func replace(_ directory: Int32, _ name: String, with text: String, mode: mode_t = 0o644) throws {
        let temporary = ".airlock-\(getpid())-\(name)"
        unlinkat(directory, temporary, 0)
        let fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemCallError("write the image's /etc/\(name)", errno: errno) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchown(fd, 0, 0)
        fchmod(fd, mode)
        close(fd)
        guard written == bytes.count, renameat(directory, temporary, directory, name) == 0 else {
            unlinkat(directory, temporary, 0)
            throw SystemCallError("write the image's /etc/\(name)", errno: errno)
        }
    }

    /// The home directory, the user's own, made where the image has none (never through a link).
    private static func makeHome(_ root: Int32, _ home: String) throws {
        guard isPlainPath(home) else { return }
        let components = bytewiseComponents(home)
        guard let last = components.last else { return }
        var parent = dup(root)
        for (index, name) in components.dropLast().enumerated() {
            _ = mkdirat(parent, name, 0o755)
            // Resolved inside the root: a link on the way leads where it would in the sandbox.
            let next = LayerUnpacker.openInRoot(root, components[0...index].joined(separator: "/"))
            close(parent)
            guard next >= 0 else { return }
            parent = next
        }
        defer { close(parent) }
        if mkdirat(parent, last, 0o755) == 0 {
            fchownat(parent, last, uid_t(uid), gid_t(uid), AT_SYMLINK_NOFOLLOW)
        }
    }
}
