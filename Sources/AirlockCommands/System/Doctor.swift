import AirlockImages
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
        var checks = HostDoctor().run()
        checks.append(leftovers())
        let runtimes = RuntimeChoice(store: Context().store)
        runtimes.remember(checks)
        checks.append(
            HostCheck(
                name: "default runtime", level: .ok,
                detail:
                    "\((try? runtimes.kind(named: nil))?.rawValue ?? "none") for new sandboxes (crun where it runs; --runtime or $\(RuntimeChoice.environmentVariable) chooses another)",
                fix: nil))
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

    /// What killed image builds left (processes, trees owned by subordinate ids), removed.
    private func leftovers() -> HostCheck {
        let name = "build leftovers"
        do {
            let context = Context()
            let builder = try context.imageBuilder()
            let removed = try BuildLeftovers(store: context.store, identity: builder.identity).sweep()
            guard !removed.isEmpty else { return HostCheck(name: name, level: .ok, detail: "none", fix: nil) }
            let list = removed.map { "\($0.path) (\($0.what))" }.joined(separator: ", ")
            return HostCheck(name: name, level: .warning, detail: "removed \(removed.count): \(list)", fix: nil)
        } catch {
            return HostCheck(
                name: name, level: .warning, detail: "cannot sweep: \(error)", fix: "airlock reset -f, once it works")
        }
    }
}
