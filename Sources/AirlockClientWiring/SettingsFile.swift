import Foundation

/// A client's settings file on disk: read whole, replaced whole in one rename (so the client
/// never reads half a file), through a symlink to where it points, with its mode kept.
enum SettingsFile {
    static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    /// The text of the file, or nil if there is none.
    static func read(_ path: String) throws(WiringError) -> String? {
        let target = resolved(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else { return nil }
        guard !isDirectory.boolValue else { throw WiringError(.io, "\(path) is a directory") }
        guard let data = FileManager.default.contents(atPath: target) else {
            throw WiringError(.io, "\(path) cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WiringError(.malformed, "\(path) is not UTF-8 text; nothing was changed")
        }
        return text
    }

    /// Writes `text` to `path`, making missing directories below `base`.
    static func write(_ text: String, to path: String, base: String) throws(WiringError) {
        let target = resolved(path)
        let directory = (target as NSString).deletingLastPathComponent
        let manager = FileManager.default
        let mode = (try? manager.attributesOfItem(atPath: target)[.posixPermissions] as? Int) ?? 0o644
        do {
            if !manager.fileExists(atPath: directory) {
                guard directory.hasPrefix(base) || base == "/" else {
                    throw WiringError(.io, "\(directory) does not exist")
                }
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let temporary = directory + "/." + (target as NSString).lastPathComponent + ".airlock-\(getpid())"
            guard
                manager.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
            else { throw WiringError(.io, "cannot write in \(directory)") }
            guard rename(temporary, target) == 0 else {
                let reason = String(cString: strerror(errno))
                try? manager.removeItem(atPath: temporary)
                throw WiringError(.io, "cannot replace \(path): \(reason)")
            }
        } catch let error as WiringError {
            throw error
        } catch {
            throw WiringError(.io, "cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Removes the file, then each directory above it that this leaves empty, up to `base`.
    static func remove(_ path: String, base: String) throws(WiringError) {
        let target = resolved(path)
        guard unlink(target) == 0 || errno == ENOENT else {
            throw WiringError(.io, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        var directory = (target as NSString).deletingLastPathComponent
        let stop = (base as NSString).standardizingPath
        while directory.hasPrefix(stop + "/"), rmdir(directory) == 0 {
            directory = (directory as NSString).deletingLastPathComponent
        }
    }

    /// Where a symlinked settings file (a dotfiles manager's) really is.
    static func resolved(_ path: String) -> String {
        guard let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return path }
        if destination.hasPrefix("/") { return destination }
        return ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(destination)
    }
}
