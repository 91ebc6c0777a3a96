import AirlockRuntime
import ArgumentParser
import Testing

@testable import AirlockCommands

@Suite struct QuickExecTests {
    /// What the argument parser makes of the same words.
    static func parsed(_ words: [String]) throws -> (name: String, request: Sandboxes.ExecRequest) {
        var exec = try #require(try AirlockCommand.parseAsRoot(words) as? Exec)
        try exec.validate()
        var request = Sandboxes.ExecRequest(command: exec.command)
        request.user = exec.user
        request.workdir = exec.workdir
        request.environment = exec.env
        request.tty = exec.tty
        request.interactive = exec.interactive
        return (exec.name, request)
    }

    @Test(arguments: [
        ["exec", "box", "--", "true"],
        ["exec", "-it", "box", "--", "bash", "-l"],
        ["exec", "-i", "-t", "-u", "root", "box", "--", "id", "-u"],
        ["exec", "--user", "agent", "-w", "/tmp", "-e", "A=1", "--env", "B=2", "box", "--", "sh", "-c", "echo $A"],
        ["exec", "-ti", "box", "--", "--", "x"],
    ])
    func readsTheEverydayFormAsTheParserDoes(words: [String]) throws {
        let quick = try #require(QuickExec(["airlock"] + words))
        let full = try Self.parsed(words)
        #expect(quick.name == full.name)
        #expect(quick.request.command == full.request.command)
        #expect(quick.request.user == full.request.user)
        #expect(quick.request.workdir == full.request.workdir)
        #expect(quick.request.environment == full.request.environment)
        #expect(quick.request.tty == full.request.tty && quick.request.interactive == full.request.interactive)
    }

    @Test(arguments: [
        ["exec", "box", "true"], ["exec", "--help", "box", "--", "x"], ["exec", "-x", "box", "--", "x"],
        ["exec", "--user=root", "box", "--", "id"], ["exec", "box", "--"], ["exec", "-u"], ["run", "shell", "--", "x"],
        ["exec", "-u", "--tty", "box", "--", "x"], ["exec", "-e", "-X", "box", "--", "x"],
    ])
    func leavesEverythingElseToTheParser(words: [String]) {
        #expect(QuickExec(["airlock"] + words) == nil)
    }
}
