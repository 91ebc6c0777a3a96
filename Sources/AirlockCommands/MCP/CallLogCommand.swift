import AirlockMCP
import AirlockSystem
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension MCPCommand {
    /// `airlock mcp log`: the tool calls a gateway served, from the end of its call log.
    struct CallLogCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "log",
            abstract: "Show the tool calls through a sandbox's MCP gateway (or a gateway's --call-log file).",
            discussion: """
                Each call: when, how it ended, how long it took, which server and tool, and the \
                argument names (never their values); --json adds the client. The log is rotated \
                at 8 MiB, three older files kept; --limit reads from its end.
                """)

        @Argument(help: "A sandbox made with --mcp.")
        var name: String?

        @Option(help: ArgumentHelp("A gateway's --call-log file instead of a sandbox's.", valueName: "file"))
        var file: String?

        @Flag(name: .long, help: "Print the JSON lines as they are stored.")
        var json = false

        @Option(name: .long, help: "Show only the last N calls.")
        var limit: Int?

        @Flag(name: [.customShort("f"), .long], help: "Keep printing new calls as they come.")
        var follow = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if (name == nil) == (file == nil) { throw ValidationError("name a sandbox or give --file, one of them") }
        }

        func run() throws {
            let path: String
            if let file {
                path = Files.absolute(file)
                guard Files.exists(path) else { throw AirlockError(.notFound, "no call log at \(path)") }
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                var info = stat()
                defer { if fd >= 0 { close(fd) } }
                guard fd >= 0, fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                    throw AirlockError(
                        .invalidArgument,
                        "cannot read \(path) as a call log: "
                            + (fd < 0 ? String(cString: strerror(errno)) : "not a file"))
                }
            } else {
                let context = Context()
                let name = name ?? ""
                let record = try context.sandboxes.record(name)
                guard record.mcp != nil else {
                    throw AirlockError(.notFound, "sandbox \(name) has no MCP gateway (it was made without --mcp)")
                }
                path = context.store.sandbox(name).mcpCallLog
            }
            var tail = LogTail(path: path)
            if !json { print(Self.header) }
            for line in limit.map({ tail.readLast($0) }) ?? tail.readAll() { emit(line) }
            guard follow else { return }
            fflush(nil)
            while true {
                usleep(200_000)
                let fresh = tail.readNew()
                for line in fresh { emit(line) }
                if !fresh.isEmpty { fflush(nil) }
            }
        }

        private func emit(_ bytes: [UInt8]) {
            let text = String(decoding: bytes, as: UTF8.self)
            guard !json else {
                print(text)
                return
            }
            guard let entry = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else { return }
            print(Self.row(entry))
        }

        static let header = "TIME                      OUTCOME   MS      SERVER / TOOL                       ARGUMENTS"

        static func row(_ entry: JSONValue) -> String {
            let arguments: [String] =
                if case .array(let names)? = entry["arguments"] { names.compactMap(\.stringValue) } else { [] }
            let tool = (entry["server"]?.stringValue ?? "?") + " / " + (entry["tool"]?.stringValue ?? "?")
            return [
                (entry["time"]?.stringValue ?? "").padding(toLength: 25, withPad: " ", startingAt: 0),
                (entry["outcome"]?.stringValue ?? "").padding(toLength: 9, withPad: " ", startingAt: 0),
                String(Int((entry["duration_ms"]?.doubleValue ?? 0).rounded())).padding(
                    toLength: 7, withPad: " ", startingAt: 0),
                tool.padding(toLength: 35, withPad: " ", startingAt: 0),
                arguments.joined(separator: ","),
            ].joined(separator: " ")
        }
    }
}
