import AirlockSystem
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop and remove every sandbox (images stay cached).")

    @Flag(name: .shortAndLong, help: "Do not ask for confirmation.")
    var force = false

    func run() throws {
        let context = Context()
        let names = context.store.sandboxNames()
        guard !names.isEmpty else {
            Context.progress("no sandboxes")
            return
        }
        if !force {
            guard isatty(0) == 1 else {
                throw AirlockError(.invalidArgument, "reset removes \(names.count) sandbox(es); confirm with -f")
            }
            FileHandle.standardError.write(
                Data("Remove \(names.count) sandbox(es): \(names.joined(separator: ", "))? [y/N] ".utf8))
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { throw ExitCode(1) }
        }
        for name in names {
            try context.sandboxes.remove(name, force: true)
            print(name)
        }
    }
}
