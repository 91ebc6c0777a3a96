import AirlockOCI
import Foundation
import Testing

@testable import AirlockExecAgent

/// The exec agent's wire messages and the translations it makes before a command starts.
@Suite struct ExecAgentWireTests {
    func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func eventsHaveOneKeyEach() throws {
        #expect(try json(ExecAgentEvent.started(pid: 42)) == #"{"started":{"pid":42}}"#)
        #expect(
            try json(ExecAgentEvent.failed(message: "exec: \"x\"", errno: 2))
                == #"{"failed":{"errno":2,"message":"exec: \"x\""}}"#)
        #expect(try json(ExecAgentEvent.exited(status: 3, signal: nil)) == #"{"exited":{"status":3}}"#)
        for event in [
            ExecAgentEvent.started(pid: 1), .failed(message: "m", errno: 13), .exited(status: nil, signal: 9),
        ] {
            let decoded = try JSONDecoder().decode(ExecAgentEvent.self, from: Data(try json(event).utf8))
            #expect(decoded == event)
        }
    }

    @Test func aStatusReadsAsAShellWouldReportIt() {
        #expect(ExecAgentServer.event(7 << 8).shellStatus == 7)
        #expect(ExecAgentServer.event(Int32(SIGKILL)).shellStatus == 137)
        #expect(ExecAgentServer.event(0).shellStatus == 0)
    }

    @Test func theRequestCarriesTheRuntimesProcessUnchanged() throws {
        let process = RuntimeSpec.Process(
            terminal: true, user: .init(uid: 1000, gid: 1000), args: ["bash"], env: ["PATH=/bin"], cwd: "/w",
            capabilities: .agent, rlimits: [.init(type: "RLIMIT_NPROC", hard: 9, soft: 9)], noNewPrivileges: true,
            oomScoreAdj: 500)
        let request = ExecAgentRequest(process: process, rows: 24, columns: 80)
        let line = try json(request)
        #expect(!line.contains("\n"))
        #expect(try JSONDecoder().decode(ExecAgentRequest.self, from: Data(line.utf8)) == request)
        #expect(line.contains(try json(process)))
    }

    @Test func capabilitiesAndLimitsAreTheKernelsNumbers() {
        #expect(LinuxCalls.capabilityNumbers["CAP_CHOWN"] == 0)
        #expect(LinuxCalls.capabilityNumbers["CAP_SYS_ADMIN"] == 21)
        #expect(LinuxCalls.capabilityNumbers["CAP_CHECKPOINT_RESTORE"] == 40)
        #expect(LinuxCalls.capabilityMask(["CAP_KILL", "CAP_SETUID"]) == (1 << 5 | 1 << 7))
        #expect(LinuxCalls.rlimitNumbers["RLIMIT_NOFILE"] == Int32(RLIMIT_NOFILE.rawValue))
        #expect(LinuxCalls.rlimitNumbers["RLIMIT_NPROC"] == 6)
    }

    @Test func aCommandIsSearchedOnItsOwnPath() {
        let process = RuntimeSpec.Process(
            terminal: false, user: .init(uid: 0, gid: 0), args: ["ls"], env: ["PATH=/opt/bin:/bin"], cwd: "/",
            capabilities: nil, rlimits: nil, noNewPrivileges: nil)
        #expect(
            CommandLauncher.ChildPlan(process: process, rows: nil, columns: nil).searchPath == ["/opt/bin", "/bin"])
    }

    @Test func airlocksFiltersCompileWithLibseccomp() throws {
        _ = try SeccompProgram(.airlockDefault)
        _ = try SeccompProgram(.engine)
        #expect(throws: (any Error).self) {
            try SeccompProgram(Seccomp(defaultAction: "SCMP_ACT_NOPE", architectures: [], syscalls: []))
        }
    }
}
