import AirlockEgress
import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation
import Testing

@testable import AirlockCommands

@Suite struct ExitStatusTests {
    @Test func runAndExecTurnEveryFailureOfAirlocksInto125() {
        for code in [AirlockError.Code.invalidArgument, .notFound, .conflict, .unsupported, .busy, .failed] {
            #expect(ExitStatus.of(AirlockError(code, "x"), runsCommand: true) == 125)
        }
        #expect(ExitStatus.of(SystemCallError("open", errno: ENOENT), runsCommand: true) == 125)
        // Companion: other commands keep a status for each kind of failure.
        #expect(ExitStatus.of(AirlockError(.notFound, "x"), runsCommand: false) == 3)
        #expect(ExitStatus.of(AirlockError(.invalidArgument, "x"), runsCommand: false) == 64)
        #expect(ExitStatus.of(AirlockError(.invalidConfiguration, "x"), runsCommand: false) == 78)
        #expect(ExitStatus.of(SystemCallError("open", errno: ENOENT), runsCommand: false) == 1)
    }

    @Test(arguments: [
        (ExecFailure.Kind.notFound, Int32(127)), (.notExecutable, 126), (.runtime, 125),
    ])
    func aCommandTheRuntimeCouldNotStart(kind: ExecFailure.Kind, status: Int32) {
        #expect(ExitStatus.of(ExecFailure(kind: kind, message: "m", printed: true), runsCommand: true) == status)
    }

    @Test(arguments: [
        ["exec", "--bogus", "box", "--", "true"], ["run", "--bogus", "shell"], ["ls", "--bogus"], ["exec", "box"],
        ["rm"],
    ])
    func usageErrorsAre64(arguments: [String]) {
        do {
            _ = try AirlockCommand.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(AirlockCommand.exitCode(for: error).rawValue == 64)
        }
    }

    @Test func onlyRunAndExecReturnTheCommandsStatus() throws {
        #expect(ExitStatus.runsCommand(try AirlockCommand.parseAsRoot(["run", "shell", "."])))
        #expect(ExitStatus.runsCommand(try AirlockCommand.parseAsRoot(["exec", "box", "--", "true"])))
        #expect(!ExitStatus.runsCommand(try AirlockCommand.parseAsRoot(["ls"])))
        #expect(!ExitStatus.runsCommand(try AirlockCommand.parseAsRoot(["create", "shell", "."])))
    }

    @Test func theHelpShowsTheTable() {
        for command in [Run.self, Exec.self] as [any ParsableCommand.Type] {
            let help = AirlockCommand.helpMessage(for: command)
            #expect(help.contains("EXIT STATUS:"))
            #expect(help.contains("125  Airlock itself failed"))
            #expect(help.contains("127  the command was not found"))
        }
        let root = AirlockCommand.helpMessage()
        #expect(root.contains("EXIT STATUS:"))
        #expect(root.contains("78  a configuration file cannot be used"))
    }
}

@Suite struct NetworkLogRowTests {
    @Test func aRefusalShowsItsReason() throws {
        let reason = "policy error: /home/u/.config/airlock/policy.yaml: line 2, column 1: did not find expected ']'"
        let line = """
            {"bytesIn":0,"bytesOut":0,"decision":"deny","durationMs":1,"host":"example.com","method":"CONNECT",\
            "port":443,"reason":"\(reason)","sandbox":"box","scheme":"https",\
            "time":"2026-01-02T03:04:05.678Z","via":"proxy"}
            """
        let entry = try NetworkLog.decoder.decode(NetworkLogEntry.self, from: Data(line.utf8))
        #expect(NetworkCommand.LogCommand.row(entry).hasSuffix(reason))
    }
}
