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
        let images = TemplateImages(sandboxes: context.sandboxes)
        var rows = try context.templates.all().map { entry in
            let template = entry.template
            return Row(
                name: template.name, source: entry.source,
                digest: String((images.treeDigest(template) ?? "-").prefix(12)),
                built: images.existing(template) != nil,
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
        let images = TemplateImages(sandboxes: context.sandboxes)
        if let image = images.existing(template) {
            Context.progress("template '\(name)' is already built")
            print(image.digest)
            return
        }
        print(try images.ensure(template, log: Context.progress).image.digest)
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
        let images = TemplateImages(sandboxes: context.sandboxes)
        let digest = images.treeDigest(template) ?? ""
        let users = context.store.records().filter { $0.image == digest }.map(\.name)
        guard users.isEmpty else {
            throw AirlockError(
                .conflict,
                "the image of template '\(name)' is used by \(users.joined(separator: ", ")) (remove them first)")
        }
        guard try images.remove(template, log: Context.progress) else {
            let hint = template.from.map { " (its image \($0) is removed with `airlock image rm`)" } ?? ""
            throw AirlockError(.notFound, "template '\(name)' has no built image\(hint)")
        }
        print(digest)
    }
}
