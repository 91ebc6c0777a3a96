import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A built image: a read-only root filesystem stored under its recipe's digest.
public struct Image: Codable, Sendable, Equatable {
    public var digest: String
    public var template: String
    public var built: Date
    public var buildSeconds: Double

    /// The root filesystem directory of this image in `store`.
    public func rootfs(in store: StateStore) -> String {
        store.imageRootfs(digest)
    }
}

/// Builds templates into images with mmdebstrap, once per recipe.
public struct ImageBuilder: Sendable {
    /// Bumped when the way images are laid out changes, so old digests stop matching.
    public static let formatVersion = 2

    public let store: StateStore
    public let identity: SandboxIdentity

    public init(store: StateStore, identity: SandboxIdentity) {
        self.store = store
        self.identity = identity
    }

    /// The image for `template` if it is already built.
    public func existing(_ template: Template) -> Image? {
        let path = store.imagesDirectory + "/" + template.digest + "/image.json"
        guard let text = try? Files.read(path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Image.self, from: Data(text.utf8))
    }

    /// Returns the image for `template`, building it first when needed; progress goes to `log`.
    /// What killed builds left is swept first (at every run and create, not only at builds).
    public func ensure(_ template: Template, log: @escaping @Sendable (String) -> Void) throws -> Image {
        // Cheap when there is nothing: the namespace is made only for what is found.
        _ = try? BuildLeftovers(store: store, identity: identity).sweep()
        if let image = existing(template) { return image }
        try store.prepare()
        let lock = try buildLock(for: template)
        try lock.acquire(
            timeout: 3600, what: "the build of template '\(template.name)'",
            note: "waiting for another build of template '\(template.name)'", log: log)
        defer { lock.release() }
        if let image = existing(template) { return image }
        return try build(template, log: log)
    }

    func build(_ template: Template, log: @escaping @Sendable (String) -> Void) throws -> Image {
        let digest = template.digest
        let final = store.imagesDirectory + "/" + digest
        let partial = store.imagesDirectory + "/.partial-" + digest
        let tarball = store.imagesDirectory + "/.build-" + digest + "-\(getpid()).tar"
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        // Whatever an interrupted build of this recipe left: its partial tree and tarball.
        try namespace.removeTree([partial, final])
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: store.imagesDirectory)) ?? []
        for name in leftovers where name.hasPrefix(".build-" + digest) {
            Files.remove(store.imagesDirectory + "/" + name)
        }
        let started = Monotonic.now()
        log(
            "building image for template '\(template.name)' (\(template.allPackages.count) packages, Debian \(template.suite))"
        )
        do {
            let mmdebstrap = Mmdebstrap(
                template: template, mode: getuid() == 0 ? "root" : "unshare", output: tarball,
                mirror: ProcessInfo.processInfo.environment["AIRLOCK_DEBIAN_MIRROR"])
            // If airlock is killed mid-build, mmdebstrap and everything it started go too: no
            // second writer can appear once the build lock is free again.
            let scratch = try BuildScratch()
            defer { scratch.remove(using: namespace) }
            try runStreaming(
                scratch.contained(mmdebstrap.arguments), template: template.name, started: started, log: log)
            log(String(format: "[%5.1fs] unpacking root filesystem", Monotonic.now() - started))
            try Files.makeDirectory(partial + "/rootfs")
            try namespace.run(
                ["tar", "--numeric-owner", "--exclude=./dev/*", "-xpf", tarball, "-C", partial + "/rootfs"],
                what: "unpacking the image")
            Files.remove(tarball)
            let image = Image(
                digest: digest, template: template.name, built: Date(), buildSeconds: Monotonic.now() - started)
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try Files.writeAtomically(
                partial + "/image.json", String(decoding: try encoder.encode(image), as: UTF8.self))
            guard rename(partial, final) == 0 else { throw SystemCallError("rename \(partial)", errno: errno) }
            log(String(format: "[%5.1fs] image %@ ready", image.buildSeconds, String(digest.prefix(12))))
            return image
        } catch {
            Files.remove(tarball)
            try? namespace.removeTree([partial])
            throw error
        }
    }

    /// Runs mmdebstrap, relaying its progress lines with the elapsed time, and the output of the
    /// template's steps indented under them.
    func runStreaming(
        _ argv: [String], template: String, started: Double, log: @escaping @Sendable (String) -> Void
    ) throws {
        let output = try Pipe2()
        let child = try ChildProcess.spawn(
            argv, stdin: .null, stdout: .fd(output.write), stderr: .fd(output.write), newSession: true)
        output.closeWrite()
        let reader = FileHandle(fileDescriptor: output.read, closeOnDealloc: false)
        var pending = ""
        var lastLines: [String] = []
        var lastStepLine: String?
        while true {
            let data = reader.availableData
            if data.isEmpty { break }
            pending += String(decoding: data, as: UTF8.self)
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending = String(pending[pending.index(after: newline)...])
                lastLines = Array((lastLines + [line]).suffix(12))
                if line.hasPrefix("I: ") || line.hasPrefix("E: ") || line.hasPrefix("W: ") {
                    log(String(format: "[%5.1fs] ", Monotonic.now() - started) + line)
                } else if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    log("         | " + line)
                    lastStepLine = line.trimmingCharacters(in: .whitespaces)
                }
            }
        }
        let status = child.wait()
        guard status == 0 else {
            // A failed step's own last words say more than mmdebstrap's "command failed".
            let failure = lastLines.last(where: { $0.hasPrefix("E: ") }) ?? lastLines.last ?? "exit status \(status)"
            let detail = lastStepLine.map { "\(failure) (last output: \($0))" } ?? failure
            throw AirlockError(.failed, "image build for template '\(template)' failed: \(detail)")
        }
    }

    /// Deletes the template's image under its build lock; false when there was none.
    public func remove(_ template: Template) throws -> Bool {
        guard existing(template) != nil else { return false }
        let lock = try buildLock(for: template)
        try lock.acquire(timeout: 60, what: "the build of template '\(template.name)'")
        defer { lock.release() }
        let final = store.imagesDirectory + "/" + template.digest
        let doomed = store.imagesDirectory + "/.removing-" + template.digest + "-\(getpid())"
        guard rename(final, doomed) == 0 else { throw SystemCallError("rename \(final)", errno: errno) }
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        try namespace.removeTree([doomed])
        return true
    }

    /// Serialises everything that writes one recipe's image: it is stored by digest, so two
    /// templates with the same recipe share it.
    func buildLock(for template: Template) throws -> FileLock {
        try FileLock(path: store.imagesDirectory + "/." + template.digest + ".lock")
    }

    /// Every image on disk with its template name.
    public func list() -> [Image] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: store.imagesDirectory)) ?? []
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return names.compactMap { name in
            guard let text = try? Files.read(store.imagesDirectory + "/" + name + "/image.json") else { return nil }
            return try? decoder.decode(Image.self, from: Data(text.utf8))
        }
    }
}
