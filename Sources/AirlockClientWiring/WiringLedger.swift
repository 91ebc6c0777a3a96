import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What `connect` made in each settings file besides its entries (the file, its directories,
/// the server map, VS Code's `inputs`), so that `disconnect` removes exactly that once the last
/// of its entries is gone, and nothing the user had, such as an empty map or directory.
struct WiringLedger: Codable, Sendable {
    struct Record: Codable, Sendable, Equatable {
        /// The settings file, every symlink resolved.
        var file: String
        /// The entries connect wrote there.
        var names: [String]
        var madeFile: Bool
        /// Key paths of the containers connect made, in the order it made them.
        var madePaths: [[String]]
        /// Directories connect made for the file, outermost first.
        var madeDirectories: [String]
    }

    var records: [Record] = []

    static func load(_ path: String?) -> WiringLedger {
        guard let path, let data = FileManager.default.contents(atPath: path),
            let ledger = try? JSONDecoder().decode(WiringLedger.self, from: data)
        else { return WiringLedger() }
        return ledger
    }

    func save(_ path: String?) throws(WiringError) {
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw WiringError(.io, "cannot record the change in \(path): \(error.localizedDescription)")
        }
    }

    /// Runs `body` holding the ledger's lock, so that two `connect`s at once do not lose one
    /// another's entry.
    static func locked<T>(_ path: String?, _ body: () throws(WiringError) -> T) throws(WiringError) -> T {
        guard let path else { return try body() }
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw WiringError(.io, "cannot lock \(path).lock: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else {
            throw WiringError(.io, "cannot lock \(path).lock: \(String(cString: strerror(errno)))")
        }
        return try body()
    }

    func record(file: String) -> Record? {
        records.first { $0.file == file }
    }

    mutating func put(_ record: Record) {
        records.removeAll { $0.file == record.file }
        if !record.names.isEmpty { records.append(record) }
    }
}
