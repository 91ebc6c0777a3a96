import AirlockImages
import AirlockSystem
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop and remove every sandbox (images stay cached), and what killed builds left.")

    @Flag(name: .shortAndLong, help: "Do not ask for confirmation.")
    var force = false

    func run() throws {
        let context = Context()
        let names = context.store.sandboxNames()
        guard !names.isEmpty else {
            Context.progress("no sandboxes")
            try sweepLeftovers(context)
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
        try sweepLeftovers(context)
    }

    private func sweepLeftovers(_ context: Context) throws {
        let builder = try context.imageBuilder()
        for leftover in try BuildLeftovers(store: context.store, identity: builder.identity).sweep(
            earlierVersions: true)
        {
            Context.progress("removed \(leftover.path) (\(leftover.what))")
        }
    }
}
