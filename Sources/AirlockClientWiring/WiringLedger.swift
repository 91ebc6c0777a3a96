import Foundation

/// What `connect` made besides the entry (the file, the server map, VS Code's `inputs`), so
/// that `disconnect` removes exactly that and nothing the user had, such as an empty map.
struct WiringLedger: Codable, Sendable {
    struct Record: Codable, Sendable, Equatable {
        var file: String
        var name: String
        var madeFile: Bool
        /// Key paths of the containers connect made, outermost first.
        var madePaths: [[String]]
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
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw WiringError(.io, "cannot record the change in \(path): \(error.localizedDescription)")
        }
    }

    func record(file: String, name: String) -> Record? {
        records.first { $0.file == file && $0.name == name }
    }

    mutating func put(_ record: Record) {
        records.removeAll { $0.file == record.file && $0.name == record.name }
        records.append(record)
    }

    mutating func drop(file: String, name: String) {
        records.removeAll { $0.file == file && $0.name == name }
    }
}
