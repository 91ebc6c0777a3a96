import AirlockRuntime
import AirlockSystem
import ArgumentParser

/// Airlock's exit statuses, in one table: ``AirlockCommand/main(_:)`` picks from it and the
/// help of `airlock`, `run` and `exec` shows it.
///
/// `run` and `exec` return the command's own status, so their own failures take the numbers
/// docker's `run` and `exec` use, which commands rarely return: 125 when Airlock failed, 126 when
/// the command cannot be run, 127 when it is not found. The other commands have a status for
/// each kind of failure (``AirlockError/Code``). Usage errors are 64 (EX_USAGE) everywhere.
enum ExitStatus {
    static let usage = AirlockError.Code.invalidArgument.exitStatus
    static let airlockFailed: Int32 = 125
    static let cannotRun: Int32 = 126
    static let notFound: Int32 = 127

    /// The status for an error thrown by a command's `run`; `runsCommand` for `run` and `exec`.
    static func of(_ error: any Error, runsCommand: Bool) -> Int32 {
        if let failure = error as? ExecFailure {
            switch failure.kind {
            case .notFound: return notFound
            case .notExecutable: return cannotRun
            case .runtime: return airlockFailed
            }
        }
        if runsCommand { return airlockFailed }
        return (error as? AirlockError)?.code.exitStatus ?? AirlockError.Code.failed.exitStatus
    }

    /// Whether `command` returns the status of a command it runs in a sandbox.
    static func runsCommand(_ command: any ParsableCommand) -> Bool {
        command is Run || command is Exec
    }

    // Lines under 80 columns: the argument parser wraps longer ones without their indent.

    /// The "EXIT STATUS" section of `run` and `exec`.
    static let commandHelp = """
        EXIT STATUS:
          The command's own status, or, as docker does:
           \(airlockFailed)  Airlock itself failed (no such sandbox, it could not start, ...)
           \(cannotRun)  the command exists but cannot be run (not executable, a directory)
           \(notFound)  the command was not found
            \(usage)  a usage error (an unknown option, a missing argument)
          A command that exits with one of these itself looks the same: the line
          on stderr tells them apart.
        """

    /// The "EXIT STATUS" section of `airlock`.
    static let help = """
        EXIT STATUS:
          run and exec return the command's own status, or
           \(airlockFailed)  Airlock failed (no such sandbox, it could not start, ...)
           \(cannotRun)  the command exists but cannot be run
           \(notFound)  the command was not found
          the other commands:
             0  success
             1  failed
             \(AirlockError.Code.notFound.exitStatus)  not found (a sandbox, agent, template, workspace)
             \(AirlockError.Code.conflict.exitStatus)  conflict (a name taken; not running; running)
             \(AirlockError.Code.unsupported.exitStatus)  unsupported by this host (a runtime, a kernel feature)
             \(AirlockError.Code.busy.exitStatus)  busy (another airlock holds the sandbox; try again)
            \(AirlockError.Code.invalidConfiguration.exitStatus)  a configuration file cannot be used (a network policy)
          and every command:
            \(usage)  a usage error (an unknown option, a bad argument or value)
        """
}
