import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Pulls an image into the ``ImageStore``: skopeo fetches it (registries with their token auth,
/// `~/.docker/config.json`, the host's proxy settings and trust store, archives, layouts, the
/// local Docker store) into a staging layout whose blobs go to the shared blob directory, so a
/// layer fetched once is never fetched again; then each layer not unpacked yet is unpacked,
/// in the sandbox's user namespace (``LayerUnpacker``). A killed pull leaves only what the next
/// one sweeps.
public struct ImagePuller: Sendable {
    public let images: ImageStore
    public let identity: SandboxIdentity

    public init(images: ImageStore, identity: SandboxIdentity) {
        self.images = images
        self.identity = identity
    }

    /// Credentials for a registry (`user:password`), when the caller has them.
    public var credentials: String?

    public func pull(_ source: ImageSource, log: @escaping @Sendable (String) -> Void) throws -> PulledImage {
        try images.store.prepare()
        for directory in [images.blobs, images.layersDirectory, images.pullsDirectory, images.imagesDirectory] {
            try Files.makeDirectory(directory)
        }
        let lock = try FileLock(path: images.pullsDirectory + "/.lock")
        try lock.acquire(
            timeout: 3600, what: "another image pull", note: "waiting for another pull to finish", log: log)
        defer { lock.release() }
        let namespace = try UserNamespace(identity: identity)
        defer { namespace.close() }
        try sweep(namespace: namespace)

        let started = Monotonic.now()
        let staging = images.pullsDirectory + "/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { Files.remove(staging) }
        try fetch(source, into: staging, log: log)
        let (manifestDigest, manifest) = try readManifest(staging: staging, source: source)
        let configBlob = try readBlob(manifest.config.digest)
        guard let config = try? JSONDecoder().decode(OCIDocuments.ImageConfig.self, from: configBlob) else {
            throw AirlockError(.failed, "the config of \(source) cannot be read")
        }
        try Self.checkPlatform(config, source: source)
        let diffIDs = config.rootfs?.diffIDs ?? []
        // Digests become paths in the store: each must be one, not a path of its own.
        for digest in [manifest.config.digest] + manifest.layers.map(\.digest) + diffIDs {
            try ImageStore.check(digest, in: source)
        }
        guard diffIDs.count == manifest.layers.count else {
            throw AirlockError(
                .failed,
                "\(source) names \(manifest.layers.count) layers but its config \(diffIDs.count) (a broken image)")
        }
        for (index, (layer, diffID)) in zip(manifest.layers, diffIDs).enumerated() {
            let what = "layer \(index + 1)/\(diffIDs.count) \(String(ImageStore.hex(diffID).prefix(12)))"
            if images.hasLayer(diffID) {
                log("\(what): already unpacked")
                continue
            }
            let layerStarted = Monotonic.now()
            let record = try unpack(layer, diffID: diffID, namespace: namespace)
            log(
                String(
                    format: "%@: unpacked %@ in %.1fs", what, Self.size(record.bytes), Monotonic.now() - layerStarted))
        }
        let configID = ImageStore.hex(manifest.config.digest)
        var image = PulledImage(
            id: configID, references: [source.description], manifestDigest: manifestDigest, layers: diffIDs,
            run: config.config ?? OCIDocuments.RunConfig(), architecture: config.architecture ?? "amd64",
            size: manifest.layers.reduce(0) { $0 + ($1.size ?? 0) }, pulled: Date())
        if let earlier = images.load(configID) {
            image.references += earlier.references.filter { $0 != source.description }
        }
        // A name leads to one image: the newest pulled as it.
        for other in images.all() where other.id != configID && other.references.contains(source.description) {
            var moved = other
            moved.references.removeAll { $0 == source.description }
            try images.save(moved)
        }
        try images.save(image)
        log(String(format: "pulled %@ (%@) in %.1fs", source.description, image.shortID, Monotonic.now() - started))
        return image
    }

    /// A prefix that kills a child when this process dies, however it dies: a killed pull
    /// leaves no fetch or unpack running (what they left, the next pull sweeps). Inside the
    /// namespace it comes after `nsenter`, whose entering the namespace would clear it.
    static let diesWithUs = ["setpriv", "--pdeathsig", "SIGKILL", "--"]

    // MARK: fetching

    /// `DOCKER_HOST`, when it names a daemon (skopeo itself reads only the default socket).
    static var dockerHost: String? {
        guard let host = ProcessInfo.processInfo.environment["DOCKER_HOST"],
            host.hasPrefix("unix://") || host.hasPrefix("tcp://")
        else { return nil }
        return host
    }

    /// The source as skopeo names it.
    static func skopeoName(_ source: ImageSource) -> String {
        switch source {
        case .registry(let reference):
            // A digest pins it; skopeo takes a digest or a tag, not both.
            var name = "docker://" + reference.registry + "/" + reference.repository
            if let digest = reference.digest {
                name += "@" + digest
            } else if let tag = reference.tag {
                name += ":" + tag
            }
            return name
        case .dockerDaemon(let reference):
            return "docker-daemon:" + reference.registry + "/" + reference.repository + ":"
                + (reference.tag ?? "latest")
        case .podmanStore(let reference):
            // Podman names what it imported or built `localhost/NAME`, what it pulled by the
            // registry's full name: both are the reference as written, normalised.
            var name = "containers-storage:" + reference.registry + "/" + reference.repository
            if let digest = reference.digest {
                name += "@" + digest
            } else {
                name += ":" + (reference.tag ?? "latest")
            }
            return name
        default:
            return source.description
        }
    }

    private func fetch(_ source: ImageSource, into staging: String, log: @escaping @Sendable (String) -> Void) throws {
        guard let skopeo = Executables.find("skopeo") else {
            throw AirlockError(
                .unsupported, "pulling images needs skopeo (sudo apt-get install skopeo, or scripts/install.sh)")
        }
        var argv =
            Self.diesWithUs + [
                skopeo, "--insecure-policy", "copy", "--dest-shared-blob-dir", images.blobs,
            ]
        // Credentials go in a file only this user reads, never on a command line (`/proc`).
        let authFile = staging + ".auth.json"
        defer { Files.remove(authFile) }
        if let credentials, case .registry(let reference) = source {
            let entry = ["auths": [reference.registry: ["auth": Data(credentials.utf8).base64EncodedString()]]]
            try Files.writeAtomically(
                authFile, String(decoding: try JSONEncoder().encode(entry), as: UTF8.self), mode: 0o600)
            argv += ["--src-authfile", authFile]
        }
        if case .dockerDaemon = source, let host = Self.dockerHost {
            // Where the user's `docker` goes: another daemon's socket, or Podman's Docker API.
            argv += ["--src-daemon-host", host]
        }
        argv += [Self.skopeoName(source), "oci:" + staging + ":image"]
        let output = try Pipe2()
        let child = try ChildProcess.spawn(argv, stdin: .null, stdout: .fd(output.write), stderr: .fd(output.write))
        output.closeWrite()
        let reader = FileHandle(fileDescriptor: output.read, closeOnDealloc: false)
        var pending = ""
        var lines: [String] = []
        while true {
            let data = reader.availableData
            if data.isEmpty { break }
            pending += String(decoding: data, as: UTF8.self)
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline]).trimmingCharacters(in: .whitespaces)
                pending = String(pending[pending.index(after: newline)...])
                guard !line.isEmpty else { continue }
                lines.append(line)
                if line.hasPrefix("Copying") || line.hasPrefix("Writing manifest") { log(line) }
            }
        }
        close(output.read)
        let status = child.wait()
        guard status == 0 else {
            throw AirlockError(.failed, Self.explain(lines.last(where: { !$0.hasPrefix("Copying") }) ?? "", source))
        }
    }

    /// skopeo's last words, as one line a user can act on.
    static func explain(_ line: String, _ source: ImageSource) -> String {
        let lower = line.lowercased()
        let name = source.description
        if case .podmanStore = source, lower.contains("does not resolve to an image") {
            return "image \(name) is not in your Podman store (podman images lists what it holds)"
        }
        if lower.contains("manifest unknown") || lower.contains("name unknown") || lower.contains("not found")
            || lower.contains("no such file") || lower.contains("no such image")
            || lower.contains("no descriptor found")
        {
            return "image \(name) not found (\(Self.lastWords(line)))"
        }
        if lower.contains("unauthorized") || lower.contains("authentication required")
            || lower.contains("invalid username/password") || lower.contains("denied")
        {
            return "the registry refused the credentials for \(name) (\(Self.lastWords(line)))"
        }
        if lower.contains("digest") && (lower.contains("mismatch") || lower.contains("does not match")) {
            return "\(name) does not match its pinned digest (\(Self.lastWords(line)))"
        }
        if lower.contains("connection refused") || lower.contains("no such host") || lower.contains("timeout")
            || lower.contains("network is unreachable") || lower.contains("certificate")
        {
            return "cannot reach the registry of \(name) (\(Self.lastWords(line)))"
        }
        return "pulling \(name) failed: \(Self.lastWords(line))"
    }

    /// The end of a Go error chain: the part after its last `: ` that still says something.
    static func lastWords(_ line: String) -> String {
        var text = line
        if let range = text.range(of: "time=\"") { text = String(text[range.upperBound...]) }
        if let range = text.range(of: "msg=\"") { text = String(text[range.upperBound...]) }
        if text.hasSuffix("\"") { text.removeLast() }
        return text.replacingOccurrences(of: "\\\"", with: "\"")
    }

    private func readManifest(staging: String, source: ImageSource) throws -> (String, OCIDocuments.Manifest) {
        guard let text = Files.readRegularFile(staging + "/index.json", limit: 1 << 20),
            let index = try? JSONDecoder().decode(OCIDocuments.Index.self, from: Data(text.utf8)),
            let descriptor = index.manifests.first
        else { throw AirlockError(.failed, "the pull of \(source) left no image index") }
        guard
            let manifest = try? JSONDecoder().decode(OCIDocuments.Manifest.self, from: try readBlob(descriptor.digest))
        else { throw AirlockError(.failed, "the manifest of \(source) cannot be read") }
        return (descriptor.digest, manifest)
    }

    private func readBlob(_ digest: String) throws -> Data {
        guard ImageReference.isDigest(digest) else {
            throw AirlockError(.failed, "the image names a blob '\(digest.prefix(80))' that is not a sha256 digest")
        }
        let path = images.blobs + "/sha256/" + ImageStore.hex(digest)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AirlockError(.failed, "blob \(digest) is missing from \(images.blobs)")
        }
        return data
    }

    static func checkPlatform(_ config: OCIDocuments.ImageConfig, source: ImageSource) throws {
        let machine = hostArchitecture()
        let os = config.os ?? "linux"
        let architecture = config.architecture ?? machine
        guard os == "linux", architecture == machine else {
            throw AirlockError(
                .unsupported, "\(source) is an image for \(os)/\(architecture); this machine runs linux/\(machine)")
        }
    }

    /// The machine's architecture as OCI names it.
    static func hostArchitecture() -> String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "armv7l": return "arm"
        default: return machine
        }
    }

    // MARK: unpacking

    /// Decompresses the layer's blob into `_unpack-layer` in the namespace, in a partial
    /// directory that becomes the layer's only when whole.
    private func unpack(_ layer: OCIDocuments.Descriptor, diffID: String, namespace: UserNamespace) throws
        -> LayerRecord
    {
        guard let compression = OCIDocuments.Compression(mediaType: layer.mediaType) else {
            throw AirlockError(.unsupported, "a layer of type \(layer.mediaType ?? "?") cannot be unpacked")
        }
        let blob = images.blobs + "/sha256/" + ImageStore.hex(layer.digest)
        let partial = images.layersDirectory + "/.partial-\(getpid())-" + ImageStore.hex(diffID)
        try namespace.removeTree([partial])
        try Files.makeDirectory(partial)
        do {
            let input = open(blob, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw SystemCallError("open \(blob)", errno: errno) }
            defer { close(input) }
            let pipe = try Pipe2()
            let errors = try Pipe2()
            var decompressor: ChildProcess?
            switch compression {
            case .gzip:
                decompressor = try ChildProcess.spawn(
                    Self.diesWithUs + ["gzip", "-dc"], stdin: .fd(input), stdout: .fd(pipe.write),
                    stderr: .fd(errors.write))
            case .zstd:
                guard Executables.find("zstd") != nil else {
                    throw AirlockError(.unsupported, "this image has zstd layers: sudo apt-get install zstd")
                }
                decompressor = try ChildProcess.spawn(
                    Self.diesWithUs + ["zstd", "-dc"], stdin: .fd(input), stdout: .fd(pipe.write),
                    stderr: .fd(errors.write))
            case .none:
                break
            }
            pipe.closeWrite()
            let unpacker = try ChildProcess.spawn(
                namespace.enterPrefix + Self.diesWithUs + [
                    Executables.current, "_unpack-layer", "--state", "-", partial + "/root",
                ],
                stdin: .fd(decompressor == nil ? input : pipe.read), stdout: .fd(errors.write),
                stderr: .fd(errors.write))
            pipe.closeRead()
            errors.closeWrite()
            let said = String(
                decoding: FileHandle(fileDescriptor: errors.read, closeOnDealloc: false).readDataToEndOfFile(),
                as: UTF8.self)
            errors.closeRead()
            let unpacked = unpacker.wait()
            let decompressed = decompressor?.wait() ?? 0
            let lines = said.split(separator: "\n").map(String.init)
            let fields = lines.last?.split(separator: " ").map(String.init) ?? []
            let counts = fields.prefix(3).compactMap { Int64($0) }
            guard unpacked == 0, decompressed == 0, counts.count == 3, fields.count == 4 else {
                throw AirlockError(
                    .failed, "unpacking layer \(diffID.prefix(19)) failed: \(lines.last ?? "exit status \(unpacked)")")
            }
            // What was unpacked is what the config names: no image can plant its content under
            // another's layer digest, for every image that shares it.
            guard fields[3] == diffID else {
                throw AirlockError(
                    .failed,
                    "layer \(diffID.prefix(19)) is not what the image's config says (its content is \(fields[3].prefix(19))): a corrupt or forged image"
                )
            }
            let record = LayerRecord(
                diffID: diffID, blob: layer.digest, entries: Int(counts[0]), bytes: counts[1],
                devicesSkipped: Int(counts[2]))
            let encoded = try JSONEncoder().encode(record)
            try Files.writeAtomically(partial + "/layer.json", String(decoding: encoded, as: UTF8.self))
            let final = images.layerDirectory(diffID)
            if rename(partial, final) != 0 {
                // Another pull unpacked it meanwhile: theirs stays, if it is whole. Any other
                // failure is one.
                let failure = errno
                guard failure == EEXIST || failure == ENOTEMPTY, images.hasLayer(diffID) else {
                    throw SystemCallError("keep layer \(diffID.prefix(19))", errno: failure)
                }
                try namespace.removeTree([partial])
            }
            return record
        } catch {
            try? namespace.removeTree([partial])
            throw error
        }
    }

    /// What killed pulls and removals left: staging layouts, partial layers and layers half
    /// removed, of processes that are gone.
    func sweep(namespace: UserNamespace) throws {
        func abandoned(_ name: String, prefix: String) -> Bool {
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }) else {
                return false
            }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: images.pullsDirectory)) ?? []
        where abandoned(name, prefix: "") {
            Files.remove(images.pullsDirectory + "/" + name)
        }
        let partials = ((try? FileManager.default.contentsOfDirectory(atPath: images.layersDirectory)) ?? [])
            .filter { abandoned($0, prefix: ".partial-") || abandoned($0, prefix: ".removing-") }
        try namespace.removeTree(partials.map { images.layersDirectory + "/" + $0 })
    }

    static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 30
            ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
            : bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) : "\(bytes / 1024) KiB"
    }
}
