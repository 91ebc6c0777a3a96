import Testing

@testable import AirlockRuntime

/// The runtimes' own words when `exec` cannot start a command, as runc 1.1 and crun write them
/// to their JSON logs, and what `run` and `exec` make of them.
@Suite struct ExecFailureTests {
    let runc = RuntimeDriver(kind: .runc, stateRoot: "/s/runc", binary: "runc")
    let crun = RuntimeDriver(kind: .crun, stateRoot: "/s/crun", binary: "crun")

    static func runcLog(_ message: String) -> String {
        let escaped = message.replacingOccurrences(of: "\"", with: "\\\"")
        return """
            {"level":"warning","msg":"some warning","time":"2026-01-01T00:00:00Z"}
            {"level":"error","msg":"exec failed: unable to start container process: \(escaped)","time":"2026-01-01T00:00:00Z"}

            """
    }

    @Test(arguments: [
        (#"exec: "nope": executable file not found in $PATH"#, ExecFailure.Kind.notFound),
        (#"exec: "/nonexist/x": stat /nonexist/x: no such file or directory"#, .notFound),
        (#"exec: "/tmp/noexec": permission denied"#, .notExecutable),
        (#"exec: "/tmp": permission denied"#, .notExecutable),
        (#"chdir to cwd ("/nonexist") set in config.json failed: no such file or directory"#, .runtime),
    ])
    func runcMessages(message: String, kind: ExecFailure.Kind) {
        let failure = runc.execFailure(status: 255, log: Self.runcLog(message))
        #expect(failure?.kind == kind)
        #expect(failure?.message.hasSuffix(message) == true)
        #expect(failure?.printed == true)  // runc prints it on stderr itself
    }

    @Test(arguments: [
        ("executable file `nope` not found in $PATH: No such file or directory", ExecFailure.Kind.notFound),
        ("the path `/tmp/noexec` exists but it is not executable", .notExecutable),
        ("the path `/tmp` is not a regular file", .notExecutable),
        ("open `/tmp/x`: Permission denied", .notExecutable),
        ("chdir to `/nonexist`: No such file or directory", .runtime),
    ])
    func crunMessages(message: String, kind: ExecFailure.Kind) {
        let log = #"{"msg": "\#(message)", "level": "error", "time": "2026-01-01T00:00:00.000000Z"}"# + "\n"
        let failure = crun.execFailure(status: 1, log: log)
        #expect(failure?.kind == kind)
        #expect(failure?.printed == false)  // with a log file, crun writes only there
    }

    @Test(arguments: [
        (
            #"executing processes for container: executing command \"nope\" in sandbox: error finding executable \"nope\" in PATH [/usr/bin /bin]: no such file or directory"#,
            ExecFailure.Kind.notFound
        ),
        (
            #"executing command \"/etc/hostname\" in sandbox: failed to load /etc/hostname: permission denied"#,
            .notExecutable
        ),
        (#"executing command \"/x\" in sandbox: failed to load /x: no such file or directory"#, .notFound),
        (#"loading sandbox: file does not exist"#, .runtime),
    ])
    func runscMessages(message: String, kind: ExecFailure.Kind) {
        let runsc = RuntimeDriver(kind: .runsc, stateRoot: "/s/runsc", binary: "runsc")
        let log = #"{"msg":"\#(message)","level":"error","time":"2026-12-01T11:09:55.798657355Z"}"# + "\n"
        let failure = runsc.execFailure(status: 128, log: log)
        #expect(failure?.kind == kind)
        #expect(failure?.printed == true)  // runsc also writes it on stderr
    }

    @Test func aCommandsOwnStatusIsNotAFailure() {
        let log = Self.runcLog(#"exec: "nope": executable file not found in $PATH"#)
        // Companion of the tests above: the same log with another status, or the runtime's
        // failure status with nothing in the log (a command that exits 255 itself).
        #expect(runc.execFailure(status: 255, log: log) != nil)
        #expect(runc.execFailure(status: 3, log: log) == nil)
        #expect(runc.execFailure(status: 255, log: "") == nil)
        #expect(runc.execFailure(status: 255, log: #"{"level":"warning","msg":"w"}"# + "\n") == nil)
        let runsc = RuntimeDriver(kind: .runsc, stateRoot: "/s", binary: "runsc")
        #expect(runsc.execFailure(status: 3, log: log) == nil)
        #expect(runsc.execFailure(status: 128, log: "") == nil)
    }

    @Test func execLogsTheRuntimesErrorsToAFile() {
        #expect(
            runc.execArguments(id: "box", processFile: "/p.json", tty: false, logFile: "/x.log")
                == [
                    "runc", "--root", "/s/runc", "--log", "/x.log", "--log-format", "json", "exec", "--process",
                    "/p.json", "box",
                ])
        #expect(
            crun.execArguments(id: "box", processFile: "/p.json", tty: true, logFile: "/x.log")
                == [
                    "crun", "--root", "/s/crun", "--cgroup-manager=disabled", "--log=file:/x.log",
                    "--log-format=json", "exec", "--tty", "--process", "/p.json", "box",
                ])
    }
}
