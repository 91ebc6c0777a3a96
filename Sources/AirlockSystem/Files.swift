import Foundation

/// Small file helpers with errors a user can read.
public enum Files {
    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    public static func makeDirectory(_ path: String, mode: Int = 0o755) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw AirlockError(.failed, "cannot create \(path): \(error.localizedDescription)")
        }
    }

    public static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AirlockError(.notFound, "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes through a temporary file and a rename, so readers never see half a file.
    public static func writeAtomically(_ path: String, _ contents: String, mode: Int = 0o644) throws {
        let tmp = path + ".tmp.\(getpid())"
        guard
            FileManager.default.createFile(
                atPath: tmp, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        else { throw AirlockError(.failed, "cannot write \(path)") }
        guard rename(tmp, path) == 0 else { throw SystemCallError("rename \(tmp)", errno: errno) }
    }

    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Resolves `path` against the current directory and follows symlinks.
    public static func absolute(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        return url.path
    }
}
