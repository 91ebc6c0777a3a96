import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation

struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save a stopped sandbox's filesystem as a template, or as an image file for docker load.",
        discussion: """
            The image is the sandbox's image with everything its agent changed over it: packages \
            installed, files written outside the workspace. Never in it: the workspace and other \
            mounts, the home (it holds the agent's logins; a new sandbox's home comes from the \
            image's /etc/skel), Airlock's CA and the sandbox's /etc files, /tmp.

              airlock stop shell-myapp
              airlock save shell-myapp myapp-base          # a template
              airlock run --template myapp-base shell ~/src/other
              airlock save shell-myapp -o myapp.tar        # an OCI archive
              docker load -i myapp.tar                     # as airlock/shell-myapp:latest

            A template is kept as an OCI layout in $AIRLOCK_HOME/saved and named in your \
            templates directory (`airlock template ls`). The file is one uncompressed layer.
            """)

    @Argument(help: "The sandbox to save (stopped).")
    var name: String

    @Argument(help: "The new template's name.")
    var template: String?

    @Option(name: [.customShort("o"), .long], help: "Write an OCI archive (docker load reads it) instead.")
    var output: String?

    @Flag(help: "Print JSON: what was saved, its size and the seconds taken.")
    var json = false

    func validate() throws {
        guard (template == nil) != (output == nil) else {
            throw ValidationError("give a template name or -o FILE (one of them)")
        }
    }

    struct Report: Encodable {
        var saved: String
        var bytes: Int64
        var seconds: Double
    }

    func run() throws {
        let context = Context()
        let target: SandboxSave.Output =
            if let output {
                // Not resolved: a link at the file's name is replaced, never written through.
                .archive(Files.absoluteAsGiven(output))
            } else {
                .template(template ?? "")
            }
        let result = try SandboxSave(sandboxes: context.sandboxes).save(name, to: target, log: Context.progress)
        if json {
            print(
                try SandboxReport.json(
                    Report(saved: result.saved, bytes: result.bytes, seconds: (result.seconds * 1000).rounded() / 1000))
            )
        } else {
            print(result.saved)
        }
    }
}
