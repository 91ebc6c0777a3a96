import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Moves between open directories, by descriptor: a name is looked up once, in the directory
/// the caller holds, and never followed if it is a link. A place another process can change
/// while it is used (a workspace a sandbox writes) cannot redirect the move elsewhere.
public enum DirectoryMoves {
    /// Moves `name` in `source` to `target` in `destination`. Two real directories are merged,
    /// entry by entry; otherwise the entry replaces what is there, unless that is a directory
    /// (a file cannot replace one) or the entry is a directory and a file is there.
    public static func move(_ name: String, from source: Int32, to target: String, in destination: Int32) throws {
        let from = kind(name, in: source)
        let to = kind(target, in: destination)
        if from == .directory && to == .directory {
            let inner = try openDirectory(name, in: source)
            defer { close(inner) }
            let outer = try openDirectory(target, in: destination)
            defer { close(outer) }
            for entry in try ImageFlattener.names(in: inner) { try move(entry, from: inner, to: entry, in: outer) }
            return
        }
        if to == .directory { throw AirlockError(.conflict, "cannot put a file over the directory \(target)") }
        if from == .directory && to != nil {
            throw AirlockError(.conflict, "cannot put a directory over the file \(target)")
        }
        guard renameat(source, name, destination, target) == 0 else {
            throw SystemCallError("move \(target) into place", errno: errno)
        }
    }

    /// Removes `name` in `parent` and all under it, never following a link.
    public static func remove(_ name: String, in parent: Int32) throws {
        try LayerUnpacker.remove(name, in: parent)
    }

    /// Opens the directory at `path` one component at a time: a link is followed while the
    /// directory it is in lies outside every one of `roots` (places a sandbox writes, whose
    /// links the sandbox may have planted), and refused inside them, whatever the path's own
    /// spelling (a link of the user's above a workspace still leads into it).
    public static func openDirectory(_ path: String, refusingLinksUnder roots: [String]) throws -> Int32 {
        let absolute = Files.absoluteAsGiven(path)
        var fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open /", errno: errno) }
        for component in absolute.split(separator: "/") where component != "." {
            let here = physicalPath(fd)
            let guarded = roots.contains { here == $0 || here.hasPrefix($0 == "/" ? "/" : $0 + "/") }
            if guarded && component == ".." {
                close(fd)
                throw AirlockError(.invalidArgument, "\(path): '..' inside a place the sandbox writes")
            }
            let flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (guarded ? O_NOFOLLOW : 0)
            let next = openat(fd, String(component), flags)
            let code = errno
            let isLink = next < 0 && guarded && kind(String(component), in: fd) == .link
            close(fd)
            guard next >= 0 else {
                if isLink {
                    throw AirlockError(
                        .conflict, "\(path) goes through a link the sandbox can change; give the real path")
                }
                throw SystemCallError("open \(path)", errno: code)
            }
            fd = next
        }
        return fd
    }

    /// Where an open directory is, as the kernel names it.
    static func physicalPath(_ fd: Int32) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
    }

    enum Kind { case directory, link, other }

    static func kind(_ name: String, in parent: Int32) -> Kind? {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFLNK: return .link
        default: return .other
        }
    }

    /// The names in an open directory.
    public static func names(in directory: Int32) throws -> [String] {
        try ImageFlattener.names(in: directory)
    }

    /// Opens `name` in `parent`, a real directory (not a link).
    public static func openDirectory(_ name: String, inDirectory parent: Int32) throws -> Int32 {
        try openDirectory(name, in: parent)
    }

    private static func openDirectory(_ name: String, in parent: Int32) throws -> Int32 {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(name)", errno: errno) }
        return fd
    }
}
