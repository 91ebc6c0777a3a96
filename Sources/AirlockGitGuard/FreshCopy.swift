import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// New inodes for the files that decide what git runs, in a repository the guard adopted while
/// the sandbox ran.
///
/// Such a repository stood unfiltered for a moment, and a descriptor opened then (kept in a
/// process, or in flight in a unix socket where no scan of `/proc` finds it) writes past the
/// filter for as long as it lives. A descriptor holds an inode, not a name: once the name
/// leads to a copy the guard made, the old descriptor writes into a file nothing reads.
enum FreshCopy {
    /// The checked files that can be in a git directory git has just made (or a sandbox made to
    /// look so); nested ones (`modules/`, `worktrees/`) keep a repository from being adopted.
    static let checkedFiles = [
        ["config"], ["rebase-merge", "git-rebase-todo"], ["rebase-merge", "strategy"], ["rebase-apply", "strategy"],
        ["sequencer", "todo"], ["sequencer", "opts"],
    ]

    /// Replaces each checked file under `root` (a descriptor of the git directory) by a copy.
    /// A file that is not a regular file, or a path through a link, is left for the check that
    /// follows adoption to refuse.
    static func renewCheckedFiles(root: Int32) {
        for path in checkedFiles {
            var directory = dup(root)
            for name in path.dropLast() where directory >= 0 {
                let next = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                close(directory)
                directory = next
            }
            guard directory >= 0, let name = path.last else { continue }
            defer { close(directory) }
            let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var info = stat()
            let content = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? readAll(fd) : nil
            close(fd)
            if let content { _ = replace(name, in: directory, with: content, mode: info.st_mode & 0o7777) }
        }
    }

    /// Writes `content` to a new file beside `name` in `directory`, then renames it onto
    /// `name`. Returns 0, or the errno of the step that failed (nothing is left behind).
    static func replace(_ name: String, in directory: Int32, with content: [UInt8], mode: mode_t) -> Int32 {
        let temporary = ".airlock-fresh-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { return errno }
        var written = 0
        while written < content.count {
            let count = content[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let saved = count < 0 ? errno : EIO
                close(fd)
                unlinkat(directory, temporary, 0)
                return saved
            }
            written += count
        }
        // The mode asked for, not the umask's share of it.
        fchmod(fd, mode)
        close(fd)
        guard renameat(directory, temporary, directory, name) == 0 else {
            let saved = errno
            unlinkat(directory, temporary, 0)
            return saved
        }
        return 0
    }

    /// The whole of a small regular file, or nil.
    static func readAll(_ fd: Int32, limit: Int = 1 << 20) -> [UInt8]? {
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return content }
            content += buffer[0..<count]
            if content.count > limit { return nil }
        }
    }
}
