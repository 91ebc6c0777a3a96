import AirlockEgress
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension NetworkCommand {
    struct LogCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "log",
            abstract: "Show egress decisions: what each sandbox reached or was refused, and why.")

        @Argument(help: "A sandbox name (default: every sandbox).")
        var name: String?

        @Flag(name: .long, help: "Print the JSON lines as they are stored.")
        var json = false

        @Option(name: .long, help: "Show only the last N entries.")
        var limit: Int?

        @Flag(name: [.customShort("f"), .long], help: "Keep printing new entries as they come.")
        var follow = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let context = Context()
            let names: [String]
            if let name {
                _ = try context.sandboxes.record(name)
                names = [name]
            } else {
                names = context.store.sandboxNames()
            }
            // The last lines are read from the end of each log; following reads only what is new.
            var readers = names.map { LogReader(path: context.store.sandbox($0).networkLog) }
            var entries = readers.indices.flatMap { readers[$0].readFirst(limit: limit) }
                .sorted { $0.entry.time < $1.entry.time }
            if let limit { entries = Array(entries.suffix(limit)) }
            if !json { print(Self.header) }
            for line in entries { emit(line) }
            guard follow else { return }
            fflush(nil)
            while true {
                usleep(200_000)
                let fresh = readers.indices.flatMap { readers[$0].readNew() }.sorted { $0.entry.time < $1.entry.time }
                for line in fresh { emit(line) }
                if !fresh.isEmpty { fflush(nil) }
            }
        }

        private func emit(_ line: LogReader.Line) {
            print(json ? line.text : Self.row(line.entry))
        }

        static let header =
            "TIME          DECISION  METHOD   DESTINATION                          OUT     IN      MS  RULE / REASON"

        static func row(_ entry: NetworkLogEntry) -> String {
            let time = timeFormat.format(entry.time)
            var destination =
                "\(entry.scheme)://\(entry.host.contains(":") ? "[\(entry.host)]" : entry.host):\(entry.port)"
            if let path = entry.path { destination += path }
            return [
                time.padding(toLength: 13, withPad: " ", startingAt: 0),
                entry.decision.padding(toLength: 9, withPad: " ", startingAt: 0),
                entry.method.padding(toLength: 8, withPad: " ", startingAt: 0),
                (destination.count > 36 ? String(destination.prefix(35)) + "…" : destination)
                    .padding(toLength: 36, withPad: " ", startingAt: 0),
                bytes(entry.bytesOut).leftPadded(7), bytes(entry.bytesIn).leftPadded(7),
                String(Int(entry.durationMs.rounded())).leftPadded(6),
                entry.decision == "allow" ? (entry.rule ?? "") : (entry.reason ?? ""),
            ].joined(separator: " ")
        }

        static func bytes(_ count: Int) -> String {
            switch count {
            case ..<1024: "\(count)B"
            case ..<(1024 * 1024): "\(count / 1024)K"
            case ..<(1024 * 1024 * 1024): "\(count / 1024 / 1024)M"
            default: String(format: "%.1fG", Double(count) / 1024 / 1024 / 1024)
            }
        }

        static let timeFormat = Date.VerbatimFormatStyle(
            format:
                "\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits).\(secondFraction: .fractional(3))",
            timeZone: .current, calendar: .current)
    }
}

/// Reads a sandbox's network log (a ``RotatingLog``): its last lines, or all of it, and then
/// what is appended.
struct LogReader {
    struct Line {
        var text: String
        var entry: NetworkLogEntry
    }

    private var tail: LogTail

    init(path: String) {
        tail = LogTail(path: path)
    }

    /// The last `limit` entries, or every entry when there is no limit.
    mutating func readFirst(limit: Int?) -> [Line] {
        Self.decode(limit.map { tail.readLast($0) } ?? tail.readAll())
    }

    mutating func readNew() -> [Line] {
        Self.decode(tail.readNew())
    }

    private static func decode(_ lines: [[UInt8]]) -> [Line] {
        lines.compactMap { bytes in
            guard let entry = try? NetworkLog.decoder.decode(NetworkLogEntry.self, from: Data(bytes)) else {
                return nil
            }
            return Line(text: String(decoding: bytes, as: UTF8.self), entry: entry)
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
