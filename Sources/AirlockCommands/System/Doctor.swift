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
        checks.append(KVMCheck.run())
        checks.append(defaultIsolation(runtimes))
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

    /// The tier and runtime a new sandbox gets, or why there is none (a broken settings file).
    private func defaultIsolation(_ runtimes: RuntimeChoice) -> HostCheck {
        let name = "default isolation"
        do {
            let choice = try runtimes.choose(runtime: nil, isolation: nil)
            let from: String
            if !(ProcessInfo.processInfo.environment[RuntimeChoice.environmentVariable] ?? "").isEmpty {
                from = "$\(RuntimeChoice.environmentVariable)"
            } else if (try? UserSettings.load())?.isolation != nil {
                from = UserSettings.file()
            } else {
                from = "the default; --isolation, or `isolation:` in \(UserSettings.file()), chooses another"
            }
            return HostCheck(
                name: name, level: .ok,
                detail:
                    "\(choice.isolation.rawValue) (\(choice.runtime.rawValue)) for new sandboxes (from \(from))",
                fix: nil)
        } catch {
            return HostCheck(name: name, level: .error, detail: "\(error)", fix: nil)
        }
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
