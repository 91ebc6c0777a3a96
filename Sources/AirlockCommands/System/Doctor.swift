import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check what this host gives Airlock (user namespaces, ids, cgroups, runtimes) and how to fix gaps.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let checks = HostDoctor().run()
        if json {
            print(try JSONText.pretty(checks))
        } else {
            for check in checks {
                let mark = check.level == .ok ? "ok  " : (check.level == .warning ? "warn" : "FAIL")
                print("\(mark)  \(check.name): \(check.detail)")
                if let fix = check.fix, check.level != .ok { print("      fix: \(fix)") }
            }
        }
        if checks.contains(where: { $0.level == .error }) { throw ExitCode(1) }
    }
}
