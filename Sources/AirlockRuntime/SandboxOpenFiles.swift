import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the sandbox's processes hold open under a directory: descriptors, working and root
/// directories and mapped files. A filter mounted over a new repository guards every path from
/// then on, but not what a process opened before it: such a descriptor would write past it.
enum SandboxOpenFiles {
    /// One thing held: by which process, how, what (as the sandbox sees it), and whether it is
    /// a directory (from which any name under it can be made).
    struct Reference: CustomStringConvertible {
        var pid: Int32
        var how: String
        var path: String
        var isDirectory: Bool

        var description: String { "\(pid) \(how) \(path)" }
    }

    /// What processes of the sandbox (those in its user namespace: the container is in a pid
    /// namespace of its own) hold of `directory` (as the sandbox sees it) on the file system
    /// `device`.
    static func references(under directory: String, device: UInt64, initPID: pid_t) -> [Reference] {
        guard let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(initPID)/ns/user")
        else { return [] }
        var found: [Reference] = []
        for entry in Files.entries(of: "/proc") where entry.kind == .directory {
            guard let pid = Int32(entry.name),
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user")) == namespace
            else { continue }
            let base = "/proc/\(pid)"
            let links = ["cwd", "root"] + Files.entries(of: base + "/fd").map { "fd/" + $0.name }
            for link in links {
                if let (path, isDirectory) = held(base + "/" + link, directory: directory, device: device) {
                    found.append(Reference(pid: pid, how: link, path: path, isDirectory: isDirectory))
                }
            }
            for line in ((try? Files.read(base + "/maps")) ?? "").split(separator: "\n") {
                if let path = mapped(String(line), directory: directory, device: device) {
                    found.append(Reference(pid: pid, how: "maps", path: path, isDirectory: false))
                }
            }
        }
        return found
    }

    private static func held(_ link: String, directory: String, device: UInt64) -> (String, Bool)? {
        var info = stat()
        guard stat(link, &info) == 0, UInt64(info.st_dev) == device,
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link),
            Files.isWithin(target, directory)
        else { return nil }
        return (target, (info.st_mode & S_IFMT) == S_IFDIR)
    }

    /// A `maps` line ("start-end perms offset major:minor inode path") of a file under it.
    private static func mapped(_ line: String, directory: String, device: UInt64) -> String? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, let path = fields.last.map(String.init), Files.isWithin(path, directory) else {
            return nil
        }
        let numbers = fields[3].split(separator: ":").compactMap { UInt64($0, radix: 16) }
        guard numbers.count == 2 else { return nil }
        // glibc's major() and minor() of a dev_t.
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        return numbers[0] == major && numbers[1] == minor ? path : nil
    }
}
