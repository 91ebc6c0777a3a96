import AirlockEgress
import AirlockImages
import AirlockRuntime
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Pull, list, inspect and remove container images.",
        discussion: """
            An image is named as Docker names it (node:22, ghcr.io/org/app@sha256:…, localhost:5000/x), \
            or by a source: docker-archive:FILE[:REF] (docker save), oci-archive:FILE[:REF], oci:DIR[:REF] \
            (an OCI layout), docker-daemon:REF (the local Docker store, or DOCKER_HOST's), \
            containers-storage:REF (your Podman store: localhost/NAME for what Podman built or imported). Registries are reached through \
            the host's HTTPS proxy settings and trust store; credentials come from ~/.docker/config.json, \
            or --creds-secret NAME (an `airlock secret` holding USER:PASSWORD).
            Layers are unpacked once and shared by every image that has them.
            """,
        subcommands: [ImagePull.self, ImageList.self, ImageInspect.self, ImageRemove.self])
}

extension Context {
    func imageStore() -> ImageStore { ImageStore(store: store) }
}

struct ImagePull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Fetch an image and unpack its layers (progress on stderr).")

    @Argument(help: "The image: a reference (node:22) or a source (oci:DIR, docker-archive:FILE, …).")
    var image: String

    @Option(help: "An `airlock secret` holding USER:PASSWORD for the registry.")
    var credsSecret: String?

    @Flag(help: "Print the pulled image as JSON.")
    var json = false

    func run() throws {
        let source = try ImageSource.userInput(image)
        try RegistryAccess.check(source)
        let context = Context()
        var puller = ImagePuller(images: context.imageStore(), identity: try SandboxIdentity.current())
        if let credsSecret {
            puller.credentials = try SecretStore(store: context.store).load(credsSecret).value
        }
        let pulled = try puller.pull(source, log: Context.progress)
        if json {
            print(try JSONText.pretty(ImageRow(pulled)))
        } else {
            print(pulled.id)
        }
    }
}

/// An image as `ls` and `inspect` show it.
struct ImageRow: Codable {
    var id: String
    var references: [String]
    var manifestDigest: String
    var layers: [String]
    var architecture: String
    var size: Int64
    /// ISO 8601.
    var pulled: String
    var env: [String]
    var workingDir: String?
    var user: String?
    var entrypoint: [String]?
    var cmd: [String]?
    var usedBy: [String]?

    init(_ image: PulledImage, usedBy: [String]? = nil) {
        id = image.id
        references = image.references
        manifestDigest = image.manifestDigest
        layers = image.layers
        architecture = image.architecture
        size = image.size
        pulled = ISO8601DateFormatter().string(from: image.pulled)
        env = image.run.env ?? []
        workingDir = image.run.workingDir
        user = image.run.user
        entrypoint = image.run.entrypoint
        cmd = image.run.cmd
        self.usedBy = usedBy
    }
}

struct ImageList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List pulled images.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let images = Context().imageStore().all()
        if json {
            print(try JSONText.pretty(images.map { ImageRow($0) }))
            return
        }
        let formatter = ISO8601DateFormatter()
        var rows = [["IMAGE", "ID", "LAYERS", "SIZE", "PULLED"]]
        for image in images {
            for (index, name) in (image.references.isEmpty ? ["<none>"] : image.references).enumerated() {
                rows.append(
                    index == 0
                        ? [
                            name, image.shortID, "\(image.layers.count)", Self.size(image.size),
                            formatter.string(from: image.pulled),
                        ]
                        : [name, image.shortID, "", "", ""])
            }
        }
        print(Table.render(rows), terminator: "")
    }

    static func size(_ bytes: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary)
    }
}

struct ImageInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show an image: its layers and what it runs (JSON).")

    @Argument(help: "A name it was pulled as, or its ID (a prefix of at least 4 digits).")
    var image: String

    func run() throws {
        let images = Context().imageStore()
        guard let found = images.find(image) else {
            throw AirlockError(.notFound, "no pulled image '\(image)' (airlock image ls; airlock image pull \(image))")
        }
        print(try JSONText.pretty(ImageRow(found)))
    }
}

struct ImageRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a pulled image, and its layers no other image has.")

    @Argument(help: "A name it was pulled as, or its ID.")
    var image: String

    func run() throws {
        let context = Context()
        let images = context.imageStore()
        guard let found = images.find(image) else {
            throw AirlockError(.notFound, "no pulled image '\(image)' (airlock image ls)")
        }
        // Not while a pull runs: its blobs and layers are named by no image until it ends.
        try Files.makeDirectory(images.pullsDirectory)
        let lock = try FileLock(path: images.pullsDirectory + "/.lock")
        try lock.acquire(
            timeout: 3600, what: "an image pull", note: "waiting for an image pull to finish", log: Context.progress)
        defer { lock.release() }
        // The tree sandboxes start from goes too, unless a sandbox uses it: checked and removed
        // under the tree's own lock, which a sandbox being made on it takes once recorded.
        let identity = try SandboxIdentity.current()
        let prepared = PulledImageRootfs.digest(of: found)
        let treeLock = try PulledImageRootfs(images: images, identity: identity).lock(
            prepared, shortID: found.shortID, log: Context.progress)
        defer { treeLock.release() }
        let users = context.store.records().filter { $0.image == prepared }.map(\.name)
        guard users.isEmpty else {
            throw AirlockError(
                .conflict, "image \(found.shortID) is used by \(users.joined(separator: ", ")) (remove them first)")
        }
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        try namespace.removeTree([context.store.imagesDirectory + "/" + prepared])
        let removed = try images.remove(found, namespace: namespace)
        Context.progress("removed \(found.shortID) and \(removed.count) layer(s) no other image has")
        print(found.id)
    }
}
