import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the sandbox's processes hold open under a directory: descriptors, working and root
/// directories and mapped files. A filter mounted over a new repository guards every path from
/// then on, but not what a process opened before it: such a descriptor would write past it.
enum SandboxOpenFiles {
    /// Processes of the sandbox (those in its user namespace: the container is in a pid
    /// namespace of its own) that hold something of
    /// `directory` (as the sandbox sees it) on the file system `device`, as "pid path" lines.
    static func references(under directory: String, device: UInt64, initPID: pid_t) -> [String] {
        guard let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(initPID)/ns/user")
        else { return [] }
        var found: [String] = []
        for entry in Files.entries(of: "/proc") where entry.kind == .directory {
            guard let pid = Int32(entry.name),
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user")) == namespace
            else { continue }
            let base = "/proc/\(pid)"
            let links = ["cwd", "root"] + Files.entries(of: base + "/fd").map { "fd/" + $0.name }
            for link in links where holds(base + "/" + link, directory: directory, device: device) {
                found.append("\(pid) \(link)")
            }
            for line in ((try? Files.read(base + "/maps")) ?? "").split(separator: "\n")
            where mapped(String(line), directory: directory, device: device) {
                found.append("\(pid) maps")
            }
        }
        return found
    }

    private static func holds(_ link: String, directory: String, device: UInt64) -> Bool {
        var info = stat()
        guard stat(link, &info) == 0, UInt64(info.st_dev) == device,
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link)
        else { return false }
        return Files.isWithin(target, directory)
    }

    /// A `maps` line ("start-end perms offset major:minor inode path") of a file under it.
    private static func mapped(_ line: String, directory: String, device: UInt64) -> Bool {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, let path = fields.last.map(String.init), Files.isWithin(path, directory) else {
            return false
        }
        let numbers = fields[3].split(separator: ":").compactMap { UInt64($0, radix: 16) }
        guard numbers.count == 2 else { return false }
        // glibc's major() and minor() of a dev_t.
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        return numbers[0] == major && numbers[1] == minor
    }
}
