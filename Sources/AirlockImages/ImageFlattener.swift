import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Makes one root filesystem out of an image's unpacked layers, as overlayfs would show them
/// merged, with hard links to the layers' files: no file's content is copied, so the layers
/// stay the one copy on disk, and a sandbox's writes go to its own upper layer as before.
///
/// Whiteouts (char 0/0) remove what lower layers made; an opaque directory
/// (`user.overlay.opaque`) starts empty. Nothing is followed: directories are entered with
/// `O_NOFOLLOW`, and links are linked as links. Runs as root of the user namespace.
public struct ImageFlattener {
    let target: Int32
    /// Directories to give their layer's owner, mode and times once all is in place.
    private var directories: [(source: String, path: [String])] = []

    /// Merges `layers` (unpacked roots, bottom first) into `target` (made, empty).
    public static func flatten(layers: [String], into target: String) throws {
        try Files.makeDirectory(target)
        let fd = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(target)", errno: errno) }
        defer { close(fd) }
        var flattener = ImageFlattener(target: fd)
        for layer in layers {
            let source = open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard source >= 0 else { throw SystemCallError("open the layer \(layer)", errno: errno) }
            defer { close(source) }
            flattener.directories.append((layer, []))
            try flattener.merge(source, into: fd, path: [], layer: layer)
        }
        flattener.finishDirectories()
    }

    init(target: Int32) {
        self.target = target
    }

    private mutating func merge(_ source: Int32, into destination: Int32, path: [String], layer: String) throws {
        for name in try Self.names(in: source) {
            var info = stat()
            guard fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw SystemCallError("look at \(Self.shown(path + [name]))", errno: errno)
            }
            switch info.st_mode & S_IFMT {
            case S_IFCHR where info.st_rdev == 0:
                // A whiteout: what lower layers had here is gone.
                try LayerUnpacker.remove(name, in: destination)
            case S_IFDIR:
                var existing = stat()
                let present = fstatat(destination, name, &existing, AT_SYMLINK_NOFOLLOW) == 0
                let child = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw SystemCallError("open \(Self.shown(path + [name]))", errno: errno) }
                defer { close(child) }
                if present && ((existing.st_mode & S_IFMT) != S_IFDIR || Self.isOpaque(child)) {
                    try LayerUnpacker.remove(name, in: destination)
                }
                if mkdirat(destination, name, 0o700) != 0 && errno != EEXIST {
                    throw SystemCallError("make \(Self.shown(path + [name]))", errno: errno)
                }
                let next = openat(destination, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard next >= 0 else { throw SystemCallError("open \(Self.shown(path + [name]))", errno: errno) }
                defer { close(next) }
                directories.append((layer, path + [name]))
                try merge(child, into: next, path: path + [name], layer: layer)
            default:
                try LayerUnpacker.remove(name, in: destination)
                guard linkat(source, name, destination, name, 0) == 0 else {
                    throw SystemCallError("link \(Self.shown(path + [name]))", errno: errno)
                }
            }
        }
    }

    /// Directories' owners, modes and times from the highest layer that has them, deepest first.
    private func finishDirectories() {
        // By bytes: Swift's String equality would take "é" and "e\u{301}", two names on disk,
        // for one directory.
        var done = Set<[[UInt8]]>()
        for (layer, path) in directories.reversed() where done.insert(path.map { Array($0.utf8) }).inserted {
            var info = stat()
            let source = ([layer] + path).joined(separator: "/")
            guard lstat(source, &info) == 0 else { continue }
            // A later layer may have removed it, or put something else there.
            guard let fd = path.isEmpty ? dup(target) : try? Self.openDirectory(path, under: target) else { continue }
            defer { close(fd) }
            fchown(fd, info.st_uid, info.st_gid)
            fchmod(fd, info.st_mode & 0o7777)
            var times = [info.st_atim, info.st_mtim]
            futimens(fd, &times)
        }
    }

    static func openDirectory(_ path: [String], under root: Int32) throws -> Int32 {
        var fd = dup(root)
        for name in path {
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            guard next >= 0 else { throw SystemCallError("open \(shown(path))", errno: errno) }
            fd = next
        }
        return fd
    }

    static func isOpaque(_ fd: Int32) -> Bool {
        var value: UInt8 = 0
        return getAttribute?(fd, "user.overlay.opaque", &value, 1) == 1 && value == UInt8(ascii: "y")
    }

    private typealias GetXattr = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeMutableRawPointer, Int) -> Int
    private static let getAttribute: GetXattr? = {
        guard let symbol = dlsym(nil, "fgetxattr") else { return nil }
        return unsafeBitCast(symbol, to: GetXattr.self)
    }()

    static func names(in directory: Int32) throws -> [String] {
        let copy = dup(directory)
        guard copy >= 0, let stream = fdopendir(copy) else { throw SystemCallError("read a directory", errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: item.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func shown(_ path: [String]) -> String { LayerUnpacker.shown(path[...]) }
}
