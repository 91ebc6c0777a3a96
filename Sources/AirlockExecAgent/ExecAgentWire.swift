import AirlockOCI

/// The messages between Airlock's CLI (or supervisor) and a sandbox's exec agent, one JSON
/// object per line over the agent's Unix socket.
///
/// The client sends one ``ExecAgentRequest``; without a terminal, the command's standard
/// input, output and error follow it as descriptors (SCM_RIGHTS). The agent answers one
/// ``ExecAgentEvent/started`` (with a terminal, the pseudo-terminal's master follows it as a
/// descriptor) or ``ExecAgentEvent/failed``, then, when the command ends, its
/// ``ExecAgentEvent/exited``. While the command runs the client may send
/// ``ExecAgentControl`` lines; when the client goes away, the command is killed.
public struct ExecAgentRequest: Codable, Sendable, Equatable {
    /// The process, exactly as `runc exec --process` reads it.
    public var process: RuntimeSpec.Process
    /// The terminal's size, with `process.terminal`.
    public var rows: UInt16?
    public var columns: UInt16?

    public init(process: RuntimeSpec.Process, rows: UInt16? = nil, columns: UInt16? = nil) {
        self.process = process
        self.rows = rows
        self.columns = columns
    }
}

/// What the agent tells the client.
public enum ExecAgentEvent: Codable, Sendable, Equatable {
    /// The command runs, as `pid` in the sandbox's pid namespace.
    case started(pid: Int32)
    /// It never ran: `errno` is the failing call's (ENOENT for a program not found, as runc
    /// reports it), `message` says which call on what.
    case failed(message: String, errno: Int32)
    /// It ended: with an exit status, or killed by a signal.
    case exited(status: Int32?, signal: Int32?)

    enum CodingKeys: String, CodingKey { case started, failed, exited }
    struct Failure: Codable { var message: String, errno: Int32 }
    struct Exit: Codable { var status: Int32?, signal: Int32? }
    struct Start: Codable { var pid: Int32 }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let start = try container.decodeIfPresent(Start.self, forKey: .started) {
            self = .started(pid: start.pid)
        } else if let failure = try container.decodeIfPresent(Failure.self, forKey: .failed) {
            self = .failed(message: failure.message, errno: failure.errno)
        } else {
            let exit = try container.decode(Exit.self, forKey: .exited)
            self = .exited(status: exit.status, signal: exit.signal)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .started(let pid): try container.encode(Start(pid: pid), forKey: .started)
        case .failed(let message, let errno):
            try container.encode(Failure(message: message, errno: errno), forKey: .failed)
        case .exited(let status, let signal):
            try container.encode(Exit(status: status, signal: signal), forKey: .exited)
        }
    }

    /// The status a shell would report: the exit status, or 128 + the signal.
    public var shellStatus: Int32? {
        guard case .exited(let status, let signal) = self else { return nil }
        return status ?? signal.map { 128 + $0 }
    }
}

/// What the client may send while the command runs.
public struct ExecAgentControl: Codable, Sendable, Equatable {
    /// A signal for the command (its process group, as a terminal would send it).
    public var signal: Int32?

    public init(signal: Int32?) {
        self.signal = signal
    }
}
