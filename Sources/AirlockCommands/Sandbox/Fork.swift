import AirlockRuntime
import ArgumentParser
import Foundation

struct Fork: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a second sandbox from a stopped one's files: its installed packages, changes and home.",
        discussion: """
            The new sandbox shares the image and gets copies of the first one's own layer, home, \
            settings and network policy, at the same workspace or another (--workspace). Each \
            then goes its own way: a change in one is not in the other. Published ports are not \
            forked (their host ports are the first sandbox's). The first sandbox must be stopped, \
            so that its files are still while they are copied.

              airlock stop shell-myapp
              airlock fork shell-myapp shell-myapp-try2 --workspace ~/src/myapp-try2
              airlock run --name shell-myapp-try2 shell ~/src/myapp-try2

            Copies share blocks on btrfs and XFS (reflinks); on ext4 they cost what the bytes do.
            """)

    @Argument(help: "The sandbox to fork.")
    var name: String

    @Argument(help: "The new sandbox's name.")
    var newName: String

    @Option(help: "The new sandbox's workspace (default: the first one's).")
    var workspace: String?

    @Flag(help: "Print JSON: the new sandbox's name, workspace, bytes copied and seconds taken.")
    var json = false

    struct Report: Encodable {
        var name: String
        var workspace: String
        var bytesCopied: Int64
        var seconds: Double
    }

    func run() throws {
        let context = Context()
        let result = try SandboxFork(sandboxes: context.sandboxes).fork(name, into: newName, workspace: workspace)
        if json {
            print(
                try SandboxReport.json(
                    Report(
                        name: result.record.name, workspace: result.record.workspace, bytesCopied: result.bytes,
                        seconds: (result.seconds * 1000).rounded() / 1000)))
            return
        }
        print(result.record.name)
        context.sandboxes.log(
            String(
                format: "forked %@ into %@ (%@ copied in %.1f s); start it with: airlock run --name %@ %@ %@", name,
                newName, ByteCountFormatter.string(fromByteCount: result.bytes, countStyle: .binary), result.seconds,
                newName, result.record.agent, result.record.workspace))
    }
}
