import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the git guard did while a sandbox ran: writes it refused, repositories it moved out of
/// the workspace. One JSON object per line in the sandbox's directory, appended by the filters
/// and the watcher (each line in one `write`, so threads and processes never interleave), read
/// by `airlock guard`, `stop`, `run` and `ls`.
public struct GuardJournal: Sendable {
    /// One thing the guard did.
    public struct Event: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable {
            /// A write to git's control state, refused by the filter in front of `.git`.
            case refused
            /// A new repository or `.git` file, moved out of the host's view.
            case quarantined
        }

        public var time: Date
        public var kind: Kind
        /// The path as the sandbox sees it.
        public var path: String
        public var reason: String
        /// For a quarantined repository: where it is kept, and where it was on the host.
        public var keptAt: String?
        public var hostPath: String?

        public init(
            time: Date = Date(), kind: Kind, path: String, reason: String, keptAt: String? = nil,
            hostPath: String? = nil
        ) {
            self.time = time
            self.kind = kind
            self.path = path
            self.reason = reason
            self.keptAt = keptAt
            self.hostPath = hostPath
        }
    }

    public let file: String

    public init(file: String) {
        self.file = file
    }

    public func record(_ event: Event) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.timestamp(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(event) else { return }
        line.append(UInt8(ascii: "\n"))
        let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Every event so far, oldest first (lines that do not parse are skipped).
    public func events() -> [Event] {
        guard let data = FileManager.default.contents(atPath: file) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Self.date(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: text))
            }
            return date
        }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(Event.self, from: $0) }
    }

    /// ISO 8601 with milliseconds: a session's events are told from the last one's.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
