import Foundation

/// Why the runtime's `exec` did not start a command: the command is not there, it cannot be
/// run, or the runtime itself failed. `run` and `exec` turn these into 127, 126 and 125, as
/// docker does.
///
/// A command that exits with the runtime's own failure status (runc's 255, crun's 1, runsc's
/// 128) is told apart by the runtime's log: only the runtime's failures leave an error in it.
public struct ExecFailure: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No such file, or no such program on the command's `PATH`.
        case notFound
        /// The file exists but cannot be executed (no execute permission, a directory).
        case notExecutable
        /// The runtime failed before the command could start (no such working directory, ...).
        case runtime
    }

    public var kind: Kind
    /// The runtime's own words.
    public var message: String
    /// Whether the runtime has printed the message on stderr already: runc and runsc do even
    /// when they log to a file; crun then writes it only to the file.
    public var printed: Bool

    public init(kind: Kind, message: String, printed: Bool) {
        self.kind = kind
        self.message = message
        self.printed = printed
    }

    public var description: String { message }
}

extension RuntimeDriver {
    /// The status the runtime's `exec` exits with when it failed itself.
    var execFailureStatus: Int32 {
        switch kind {
        case .runc: 255
        case .crun: 1
        case .runsc: 128
        }
    }

    /// Flags that make the runtime write its errors, as JSON lines, to `file` (global flags:
    /// they go before the subcommand).
    func logArguments(_ file: String) -> [String] {
        switch kind {
        case .runc: ["--log", file, "--log-format", "json"]
        case .crun: ["--log=file:" + file, "--log-format=json"]
        case .runsc: ["--log=" + file, "--log-format=json"]
        }
    }

    /// What made an `exec` that exited with `status` fail, from the runtime's JSON log; nil when
    /// the status is the command's own.
    func execFailure(status: Int32, log: String) -> ExecFailure? {
        guard status == execFailureStatus else { return nil }
        let errors = log.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let entry = try? JSONDecoder().decode(LogEntry.self, from: Data(line.utf8)), entry.level == "error"
            else { return nil }
            return entry.msg.split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        guard let message = errors.last else { return nil }
        return ExecFailure(
            kind: Self.failureKind(kind, message: message), message: message, printed: kind != .crun)
    }

    private struct LogEntry: Decodable {
        var level: String
        var msg: String
    }

    /// Sorts a runtime's error message. Only what the runtime says about the command's own file
    /// counts: "no such file or directory" about the working directory is the runtime's failure.
    static func failureKind(_ kind: Kind, message: String) -> ExecFailure.Kind {
        switch kind {
        case .runc:
            // runc: `exec failed: unable to start container process: exec: "CMD": REASON`
            guard let match = message.firstMatch(of: /exec: "[^"]*": (.*)$/) else { return .runtime }
            let reason = String(match.output.1)
            if reason.hasPrefix("executable file not found") || reason.hasSuffix("no such file or directory") {
                return .notFound
            }
            if reason.hasSuffix("permission denied") || reason.hasSuffix("is a directory") { return .notExecutable }
            return .runtime
        case .crun:
            // crun: "executable file `CMD` not found in $PATH: ...", "the path `CMD` exists but it
            // is not executable", "the path `CMD` is not a regular file", "open `CMD`: ...".
            if message.hasPrefix("executable file `") { return .notFound }
            if message.hasPrefix("the path `") { return .notExecutable }
            if message.hasPrefix("open `") && message.hasSuffix("Permission denied") { return .notExecutable }
            return .runtime
        case .runsc:
            // runsc: `... error finding executable "CMD" in PATH [...]: no such file or
            // directory`, `... failed to load CMD: permission denied`.
            if message.contains("error finding executable \"") { return .notFound }
            guard let match = message.firstMatch(of: /failed to load [^:]*: (.*)$/) else { return .runtime }
            let reason = String(match.output.1)
            if reason.hasSuffix("no such file or directory") { return .notFound }
            if reason.hasSuffix("permission denied") || reason.hasSuffix("is a directory") { return .notExecutable }
            return .runtime
        }
    }
}
