import AirlockImages
import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation

struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "List, show and build image templates.",
        discussion: "User templates are YAML files in $XDG_CONFIG_HOME/airlock/templates/ (see `template show shell`).",
        subcommands: [TemplateList.self, TemplateShow.self, TemplateBuild.self, TemplateRemove.self])
}

struct TemplateList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List templates and pulled images, and whether they are built.")

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Codable {
        var name: String
        var source: String
        var digest: String
        var built: Bool
        var description: String?
    }

    func run() throws {
        let context = Context()
        let builder = try? context.imageBuilder()
        let fromImages = ImageTemplateBuilder(sandboxes: context.sandboxes)
        var rows = try context.templates.all().map { entry in
            let template = entry.template
            let built = template.from == nil ? builder?.existing(template) != nil : fromImages.existing(template) != nil
            let digest = template.from == nil ? template.digest : fromImages.treeDigest(template) ?? "-"
            return Row(
                name: template.name, source: entry.source, digest: String(digest.prefix(12)), built: built,
                description: template.description ?? template.from.map { "from \($0)" })
        }
        // Pulled images serve as templates too (`run --image NAME`); built once merged for a sandbox.
        for image in context.imageStore().all() {
            let prepared = Files.exists(
                context.store.imagesDirectory + "/" + PulledImageRootfs.digest(of: image) + "/image.json")
            for reference in image.references {
                rows.append(
                    Row(
                        name: reference, source: "image (run --image)", digest: image.shortID, built: prepared,
                        description: "container image (\(image.layers.count) layers: airlock image inspect)"))
            }
        }
        if json {
            print(try JSONText.pretty(rows))
            return
        }
        print(
            Table.render(
                [["NAME", "BUILT", "DIGEST", "SOURCE", "DESCRIPTION"]]
                    + rows.map { [$0.name, $0.built ? "yes" : "no", $0.digest, $0.source, $0.description ?? ""] }),
            terminator: "")
    }
}

struct TemplateShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a template as YAML.")

    @Argument(help: "Template name.")
    var name: String

    func run() throws {
        let entry = try Context().templates.find(name)
        print("# source: \(entry.source)\n# digest: \(entry.template.digest)")
        print(try entry.template.yaml(), terminator: "")
    }
}

struct TemplateBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Build a template's image now (otherwise the first run does).")

    @Argument(help: "Template name.")
    var name: String

    func run() throws {
        let context = Context()
        let template = try context.templates.find(name).template
        if template.from != nil {
            print(
                try ImageTemplateBuilder(sandboxes: context.sandboxes).ensure(template, log: Context.progress).image
                    .digest)
            return
        }
        let builder = try context.imageBuilder()
        if let image = builder.existing(template) {
            Context.progress("template '\(name)' is already built")
            print(image.digest)
            return
        }
        let image = try builder.ensure(template, log: Context.progress)
        print(image.digest)
    }
}

struct TemplateRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a template's built image (the next run rebuilds it).")

    @Argument(help: "Template name.")
    var name: String

    func run() throws {
        let context = Context()
        let template = try context.templates.find(name).template
        let fromImages = ImageTemplateBuilder(sandboxes: context.sandboxes)
        let digest = template.from == nil ? template.digest : fromImages.treeDigest(template) ?? ""
        let users = context.store.records().filter { $0.image == digest }.map(\.name)
        guard users.isEmpty else {
            throw AirlockError(
                .conflict,
                "the image of template '\(name)' is used by \(users.joined(separator: ", ")) (remove them first)")
        }
        let removed =
            template.from == nil
            ? try context.imageBuilder().remove(template) : try fromImages.remove(template, log: Context.progress)
        guard removed else {
            let hint = template.from.map { " (its image \($0) is removed with `airlock image rm`)" } ?? ""
            throw AirlockError(.notFound, "template '\(name)' has no built image\(hint)")
        }
        print(digest)
    }
}
