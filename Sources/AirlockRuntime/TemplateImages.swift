import AirlockImages
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The image a template's sandboxes start from, of either kind: a Debian recipe's, which
/// ``ImageBuilder`` builds with mmdebstrap, or one `from` a container image, built here as
/// `docker build` runs a Dockerfile's `FROM` and `RUN`: the template's packages (with the
/// image's `apt-get`) and steps run as root in a sandbox made from the image, and what they
/// changed (the sandbox's own layer) is merged over the image into a tree of its own.
///
/// The steps run the image's programs, which nothing vouches for: never on the host (as
/// mmdebstrap's chroot runs a Debian template's), always inside a sandbox, and their
/// downloads go through its proxy under the user's policy.
public struct TemplateImages: Sendable {
    public let sandboxes: Sandboxes

    /// Bumped when what a build makes changes, so that older trees are made again.
    static let formatVersion = 1

    public init(sandboxes: Sandboxes) {
        self.sandboxes = sandboxes
    }

    /// What a sandbox of the template starts from: its tree, the agent's account in it, and
    /// the container image it was built on, if any (whose `Env` the agent gets).
    public struct Built: Sendable {
        public var image: Image
        public var user: Template.UserSetup
        public var pulled: PulledImage?
    }

    /// The tree's digest: the recipe's and the very image it was built on (a tag moves).
    static func digest(_ template: Template, on pulled: PulledImage) -> String {
        let text = "from-template v\(formatVersion) \(template.digest) \(pulled.id)"
        return sha256Hex(text)
    }

    /// The template's tree, built first when missing (pulling its image if needed).
    public func ensure(_ template: Template, log: @escaping @Sendable (String) -> Void) throws -> Built {
        let identity = try SandboxIdentity.current()
        guard let reference = template.from else {
            let image = try ImageBuilder(store: store, identity: identity).ensure(template, log: log)
            return Built(image: image, user: template.user, pulled: nil)
        }
        let (base, pulled, baseUser) = try Sandboxes.prepareImage(reference, store: store, identity: identity, log: log)
        guard !template.packagesOverImage.isEmpty || !template.steps.isEmpty else {
            return Built(image: base, user: baseUser, pulled: pulled)
        }
        let trees = PulledImageRootfs(images: ImageStore(store: store), identity: identity)
        let digest = Self.digest(template, on: pulled)
        if let (image, user) = trees.existing(digest) { return Built(image: image, user: user, pulled: pulled) }
        let lock = try trees.lock(digest, shortID: "of template '\(template.name)'", log: log)
        defer { lock.release() }
        if let (image, user) = trees.existing(digest) { return Built(image: image, user: user, pulled: pulled) }
        let started = Monotonic.now()
        log("building template '\(template.name)' from image \(reference) (\(pulled.shortID))")
        let upper = try runSteps(template, on: reference, started: started, log: log)
        defer { try? sandboxes.remove(upper.sandbox, force: true) }
        log(String(format: "[%5.1fs] merging the steps' changes over the image", Monotonic.now() - started))
        let (image, user) = try trees.makeTree(
            digest, layers: [base.rootfs(in: store), upper.layer], named: template.name, started: started)
        log(String(format: "[%5.1fs] image %@ ready", image.buildSeconds, String(digest.prefix(12))))
        return Built(image: image, user: user, pulled: pulled)
    }

    /// Makes the build's sandbox, runs the packages and steps in it as root, stops it, and
    /// returns it with its own layer (what the steps changed).
    private func runSteps(
        _ template: Template, on reference: String, started: Double, log: @escaping @Sendable (String) -> Void
    ) throws -> (sandbox: String, layer: String) {
        var request = DisposableRequest(
            label: "build-" + template.name, template: "", network: .policy,
            limits: SandboxRecord.Limits(memoryBytes: 4 << 30, cpus: nil, pids: 4096), diskBytes: 1 << 30,
            owner: try ProcessIdentity.current())
        request.image = reference
        request.imageUser = "root"
        request.writableRoot = true
        request.shellNeededBy = "a template's build"
        // A build is the user's own recipe, and its package managers want a whole kernel: the
        // container tier, whatever the sandboxes made from the image will run under.
        request.isolation = .container
        let record = try sandboxes.createDisposable(request)
        do {
            try sandboxes.start(record.name)
            var commands: [(what: String, script: String)] = []
            if !template.packagesOverImage.isEmpty {
                let names = template.packagesOverImage.joined(separator: " ")
                commands.append(
                    (
                        "packages: \(names)",
                        """
                        command -v apt-get >/dev/null || { echo "the image has no apt-get to install packages with: install them in steps" >&2; exit 100; }
                        apt-get update -q
                        apt-get install -y -q --no-install-recommends \(names)
                        rm -rf /var/lib/apt/lists/*
                        """
                    ))
            }
            for (index, step) in template.steps.enumerated() {
                commands.append(("step \(index + 1)/\(template.steps.count): \(step)", step))
            }
            // Each line of a script stops it when it fails (`sh -e`; not inside `a && b`).
            for (what, script) in commands {
                log(String(format: "[%5.1fs] %@", Monotonic.now() - started, what))
                var exec = Sandboxes.ExecRequest(command: ["/bin/sh", "-ec", script])
                exec.user = "root"
                exec.workdir = "/"
                exec.environment = ["DEBIAN_FRONTEND=noninteractive", "HOME=/root"]
                let status = try run(record.name, exec)
                guard status == 0 else {
                    throw AirlockError(
                        .failed,
                        "template '\(template.name)': \(what.prefix(120)) failed (exit status \(status); its output is above)"
                    )
                }
            }
            try sandboxes.stop(record.name)
            return (record.name, store.sandbox(record.name).upper)
        } catch {
            try? sandboxes.remove(record.name, force: true)
            throw error
        }
    }

    private var store: StateStore { sandboxes.store }

    /// The digest of the template's tree: a recipe's own, or for one from an image that on the
    /// image as pulled now (nil while it is not pulled: the tree depends on which image the
    /// reference names).
    public func treeDigest(_ template: Template) -> String? {
        guard let reference = template.from else { return template.digest }
        guard let pulled = ImageStore(store: store).find(reference) else { return nil }
        return template.packagesOverImage.isEmpty && template.steps.isEmpty
            ? PulledImageRootfs.digest(of: pulled) : Self.digest(template, on: pulled)
    }

    /// The built tree of `template`, if there is one.
    public func existing(_ template: Template) -> Image? {
        guard let identity = try? SandboxIdentity.current() else { return nil }
        guard template.from != nil else { return ImageBuilder(store: store, identity: identity).existing(template) }
        guard let digest = treeDigest(template) else { return nil }
        return PulledImageRootfs(images: ImageStore(store: store), identity: identity).existing(digest)?.0
    }

    /// Removes the built tree of `template` (never a container image it is from: `image rm`
    /// does that); false when there is none.
    public func remove(_ template: Template, log: @escaping @Sendable (String) -> Void) throws -> Bool {
        let identity = try SandboxIdentity.current()
        guard template.from != nil else { return try ImageBuilder(store: store, identity: identity).remove(template) }
        guard let digest = treeDigest(template), template.packagesOverImage.count + template.steps.count > 0 else {
            return false
        }
        let trees = PulledImageRootfs(images: ImageStore(store: store), identity: identity)
        let lock = try trees.lock(digest, shortID: "of template '\(template.name)'", log: log)
        defer { lock.release() }
        guard trees.existing(digest) != nil else { return false }
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        try namespace.removeTree([store.imagesDirectory + "/" + digest])
        return true
    }

    /// Runs a command with its output on this process's stderr, where a build's progress goes.
    private func run(_ name: String, _ request: Sandboxes.ExecRequest) throws -> Int32 {
        let prepared = try sandboxes.prepareExec(name, request)
        defer { prepared.removeFiles() }
        let child = try ChildProcess.spawn(prepared.argv, stdin: .null, stdout: .fd(STDERR_FILENO))
        let status = child.wait()
        if let failure = prepared.failure(status: status) { throw failure }
        return status
    }
}
