import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A pulled image made into what a sandbox starts from: an ``Image`` whose root filesystem is
/// its layers merged (hard links, ``ImageFlattener``) with the agent's account set up
/// (``ImageAccount``). Made once per image, by `_flatten-image` in the user namespace; a
/// sandbox's own layer goes on top of it as on a template's image.
public struct PulledImageRootfs: Sendable {
    public let images: ImageStore
    public let identity: SandboxIdentity

    /// Bumped when what is made here changes, so that older trees are made again.
    static let formatVersion = 5

    public init(images: ImageStore, identity: SandboxIdentity) {
        self.images = images
        self.identity = identity
    }

    /// The image's digest in `images/`.
    public static func digest(of pulled: PulledImage) -> String {
        let text = "pulled-image v\(formatVersion) \(pulled.id)"
        return sha256Hex(text)
    }

    /// Held while the tree of `digest` is made, removed, or taken into use by a new sandbox.
    public func lock(_ digest: String, shortID: String, log: @escaping @Sendable (String) -> Void) throws -> FileLock {
        let lock = try FileLock(path: images.store.imagesDirectory + "/." + digest + ".lock")
        try lock.acquire(
            timeout: 600, what: "the preparation of image \(shortID)",
            note: "waiting for another command preparing or removing image \(shortID)", log: log)
        return lock
    }

    /// Whether the tree of `digest` is still there. A command that made a sandbox on it asks
    /// once the sandbox is recorded: an `image rm` (which checks for sandboxes and removes
    /// the tree under the same lock) either saw the sandbox or removed the tree before this.
    public func isStillThere(_ digest: String, log: @escaping @Sendable (String) -> Void) throws -> Bool {
        let lock = try lock(digest, shortID: String(digest.prefix(12)), log: log)
        defer { lock.release() }
        return load(images.store.imagesDirectory + "/" + digest) != nil
    }

    /// The image and the account the agent runs as in it, made if missing.
    public func ensure(_ pulled: PulledImage, log: @escaping @Sendable (String) -> Void) throws -> (
        Image, Template.UserSetup
    ) {
        let store = images.store
        let digest = Self.digest(of: pulled)
        let directory = store.imagesDirectory + "/" + digest
        if let made = load(directory) { return made }
        try store.prepare()
        let lock = try lock(digest, shortID: pulled.shortID, log: log)
        defer { lock.release() }
        if let made = load(directory) { return made }
        let started = Monotonic.now()
        for layer in pulled.layers where !images.hasLayer(layer) {
            throw AirlockError(
                .notFound, "layer \(layer.prefix(19)) of image \(pulled.shortID) is gone (airlock image pull it again)")
        }
        let (image, user) = try makeTree(
            digest, layers: pulled.layers.map(images.layerRoot), named: pulled.references.first ?? pulled.shortID,
            workingDir: pulled.run.workingDir, started: started)
        log(String(format: "prepared image %@ for sandboxes in %.1fs", pulled.shortID, image.buildSeconds))
        return (image, user)
    }

    /// Merges `layers` (roots, bottom first) into the tree of `digest` in `images/` that
    /// sandboxes start from, with their init and the agent's account. The caller holds the
    /// digest's ``lock(_:shortID:log:)``.
    public func makeTree(
        _ digest: String, layers: [String], named: String, workingDir: String? = nil, started: Double
    ) throws -> (Image, Template.UserSetup) {
        let store = images.store
        let directory = store.imagesDirectory + "/" + digest
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        // Named as a template's build names it: the sweep of builds' leftovers leaves it alone
        // while this holds the digest's lock, and takes it once the process is gone.
        let partial = store.imagesDirectory + "/.partial-" + digest
        try namespace.removeTree([partial])
        try Files.makeDirectory(partial)
        do {
            let output = try ChildProcess.run(
                namespace.enterPrefix + [Executables.current, "_flatten-image", "--state", "-", partial + "/rootfs"],
                input: (layers + (workingDir.map { ["workdir:" + $0] } ?? [])).joined(separator: "\n") + "\n")
            guard output.status == 0,
                let user = try? JSONDecoder().decode(Template.UserSetup.self, from: Data(output.stdout.utf8))
            else {
                throw AirlockError(.failed, "preparing image \(named) failed: \(output.lastErrorLine)")
            }
            let image = Image(digest: digest, template: named, built: Date(), buildSeconds: Monotonic.now() - started)
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            try Files.writeAtomically(
                partial + "/account.json", String(decoding: try encoder.encode(user), as: UTF8.self))
            try Files.writeAtomically(
                partial + "/image.json", String(decoding: try encoder.encode(image), as: UTF8.self))
            guard rename(partial, directory) == 0 else {
                throw SystemCallError("rename \(partial)", errno: errno)
            }
            return (image, user)
        } catch {
            try? namespace.removeTree([partial])
            throw error
        }
    }

    /// The tree of `digest` and its account, if made.
    public func existing(_ digest: String) -> (Image, Template.UserSetup)? {
        load(images.store.imagesDirectory + "/" + digest)
    }

    private func load(_ directory: String) -> (Image, Template.UserSetup)? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let image = Files.readRegularFile(directory + "/image.json", limit: 1 << 16),
            let account = Files.readRegularFile(directory + "/account.json", limit: 1 << 16),
            let decodedImage = try? decoder.decode(Image.self, from: Data(image.utf8)),
            let user = try? decoder.decode(Template.UserSetup.self, from: Data(account.utf8))
        else { return nil }
        return (decodedImage, user)
    }

    /// What `_flatten-image` does, in the namespace: merge the layers, give it the sandbox's
    /// init, set the account up.
    public static func make(rootfs: String, layers: [String], workingDir: String? = nil) throws -> Template.UserSetup {
        try ImageFlattener.flatten(layers: layers, into: rootfs)
        try addInit(to: rootfs)
        try addSleeper(rootfs)
        if let workingDir { makeWorkingDirectory(workingDir, in: rootfs) }
        return try ImageAccount.setUp(in: rootfs)
    }

    /// The image's WorkingDir, made if the layers lack it (as `docker run` makes it): a root's
    /// directory of mode 755, each part made inside the tree, none followed if it is a link.
    static func makeWorkingDirectory(_ path: String, in rootfs: String) {
        guard ImageAccount.isPlainPath(path) else { return }
        var directory = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return }
        defer { close(directory) }
        for part in ImageAccount.bytewiseComponents(path) {
            _ = mkdirat(directory, part, 0o755)
            let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return }
            close(directory)
            directory = next
        }
    }

    /// A sandbox's init is `tini -- sleep infinity`; in an image without `sleep` (distroless,
    /// `scratch`) it waits on ``PauseProgram`` instead, where this machine can run it.
    static func addSleeper(_ rootfs: String) throws {
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(rootfs)", errno: errno) }
        defer { close(root) }
        guard !hasProgram(root, "sleep") else { return }
        guard PauseProgram.isAvailable else {
            throw AirlockError(
                .unsupported,
                "the image has no /bin/sleep for the sandbox's init to wait on (images without one, such as distroless ones, run only on x86-64 hosts)"
            )
        }
        try PauseProgram.add(to: root)
    }

    /// Whether the tree at `rootfs` has `/bin/sh` (an agent's commands and a code sandbox's run
    /// through a shell; an MCP server's program need not).
    public static func hasShell(_ rootfs: String) -> Bool {
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { return false }
        defer { close(root) }
        return hasProgram(root, "sh")
    }

    /// `/bin/NAME` or `/usr/bin/NAME` in the tree.
    private static func hasProgram(_ root: Int32, _ name: String) -> Bool {
        ImageAccount.exists(root, "bin/" + name) || ImageAccount.exists(root, "usr/bin/" + name)
    }

    /// The host's static tini, where a sandbox's init is (`/usr/bin/tini`), if the image has none.
    static let hostInit = "/usr/bin/tini-static"

    static func addInit(to rootfs: String) throws {
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(rootfs)", errno: errno) }
        defer { close(root) }
        var directory = LayerUnpacker.openInRoot(root, "usr/bin")
        if directory < 0 {
            _ = mkdirat(root, "usr", 0o755)
            let usr = LayerUnpacker.openInRoot(root, "usr")
            if usr >= 0 {
                _ = mkdirat(usr, "bin", 0o755)
                close(usr)
            }
            directory = LayerUnpacker.openInRoot(root, "usr/bin")
        }
        guard directory >= 0 else { throw SystemCallError("open the image's /usr/bin", errno: errno) }
        defer { close(directory) }
        var info = stat()
        if fstatat(directory, "tini", &info, AT_SYMLINK_NOFOLLOW) == 0 { return }
        guard let program = FileManager.default.contents(atPath: hostInit) else {
            throw AirlockError(
                .unsupported,
                "the image has no /usr/bin/tini and this machine no \(hostInit) (sudo apt-get install tini)")
        }
        let fd = openat(directory, "tini", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw SystemCallError("add /usr/bin/tini to the image", errno: errno) }
        defer { close(fd) }
        let written = program.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == program.count else { throw SystemCallError("add /usr/bin/tini to the image", errno: errno) }
        fchmod(fd, 0o755)
    }
}
