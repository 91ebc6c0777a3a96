import AirlockRuntime
import ArgumentParser

struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files and directories into or out of a sandbox, running or stopped.",
        discussion: """
            As `docker cp`: a sandbox path is NAME:PATH (absolute), `-` is a tar stream on \
            standard input or output.

              airlock cp ./seed.sql shell-app:/tmp/        # into /tmp
              airlock cp shell-app:/var/log/app ./logs     # a directory, as ./logs
              airlock cp shell-app:/etc/nginx/. ./conf     # a directory's contents
              tar -c data | airlock cp - shell-app:/srv

            Into an existing directory a file or directory goes inside it; otherwise it takes the \
            name given. What goes in belongs to the sandbox's agent; what comes out belongs to \
            you. Symbolic links are copied as links and never followed, on either side: a link \
            inside the sandbox leads only to the sandbox's own files, and what comes out is \
            unpacked without following any link; it loses set-id bits and writes for others. A \
            link the sandbox could have planted on the way to a destination in its workspace is \
            refused. A stopped sandbox \
            is started for the copy and stopped again. The sandbox's image needs `tar`.
            """)

    @Argument(help: "Where from: a host path, NAME:PATH, or - (a tar stream on standard input).")
    var source: String

    @Argument(help: "Where to: a host path, NAME:PATH, or - (a tar stream on standard output).")
    var destination: String

    func run() throws {
        let context = Context()
        try SandboxCopy(sandboxes: context.sandboxes).copy(
            from: SandboxCopy.Endpoint(source), to: SandboxCopy.Endpoint(destination))
    }
}
