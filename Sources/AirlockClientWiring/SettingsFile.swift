import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A client's settings file on disk: read whole, replaced whole in one rename (so the client
/// never reads half a file), through any symlinks to where they point, with its mode and owner
/// kept.
enum SettingsFile {
    static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    /// The text of the file (a byte-order mark kept), or nil if there is none.
    static func read(_ path: String) throws(WiringError) -> String? {
        let target = resolved(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else { return nil }
        guard !isDirectory.boolValue else { throw WiringError(.io, "\(path) is a directory") }
        guard let data = FileManager.default.contents(atPath: target) else {
            throw WiringError(.io, "\(path) cannot be read")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw WiringError(.malformed, "\(path) is not UTF-8 text; nothing was changed")
        }
        return text
    }

    /// Refuses a file the user made read-only, before anything is changed.
    static func checkWritable(_ path: String) throws(WiringError) {
        let target = resolved(path)
        guard exists(target) else { return }
        guard access(target, W_OK) == 0 else {
            throw WiringError(.io, "\(path) is read-only; nothing was changed")
        }
    }

    /// Writes `text` to `path`, making missing directories below `base`; returns the
    /// directories it made, outermost first.
    @discardableResult
    static func write(_ text: String, to path: String, base: String) throws(WiringError) -> [String] {
        let target = resolved(path)
        let directory = (target as NSString).deletingLastPathComponent
        let manager = FileManager.default
        var made: [String] = []
        var missing = directory
        while !manager.fileExists(atPath: missing) && missing.hasPrefix(base + "/") {
            made.insert(missing, at: 0)
            missing = (missing as NSString).deletingLastPathComponent
        }
        guard manager.fileExists(atPath: missing) else { throw WiringError(.io, "\(missing) does not exist") }
        var status = stat()
        let existing = stat(target, &status) == 0
        for created in made {
            guard mkdir(created, 0o755) == 0 || errno == EEXIST else {
                throw WiringError(.io, "cannot make \(created): \(String(cString: strerror(errno)))")
            }
        }
        let temporary = directory + "/." + (target as NSString).lastPathComponent + ".airlock-\(getpid())"
        let descriptor = open(
            temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, existing ? status.st_mode & 0o7777 : 0o644)
        guard descriptor >= 0 else {
            throw WiringError(.io, "cannot write in \(directory): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            written += count
        }
        // The owner too: root editing a user's file (sudo with HOME kept) must not take it.
        if existing && (status.st_uid != getuid() || status.st_gid != getgid()) {
            _ = fchown(descriptor, status.st_uid, status.st_gid)
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw WiringError(.io, "cannot replace \(path): \(reason)")
        }
        return made
    }

    /// Removes the file, then those of `madeDirectories` that this leaves empty, innermost first.
    static func remove(_ path: String, madeDirectories: [String]) throws(WiringError) {
        let target = resolved(path)
        guard unlink(target) == 0 || errno == ENOENT else {
            throw WiringError(.io, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        for directory in madeDirectories.reversed() where rmdir(directory) != 0 { break }
    }

    /// Where a settings file really is, through every symlink (a dotfiles manager's); the path
    /// itself when it does not exist yet.
    static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }
}
