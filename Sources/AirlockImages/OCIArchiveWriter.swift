import AirlockSystem
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes an image of one layer as an OCI image layout, with Docker's `manifest.json` beside
/// its `index.json` (as `docker save` writes since Docker 25), so that skopeo reads it as
/// `oci:` or `oci-archive:` and every `docker load` reads it too. The layer is stored
/// uncompressed: what both read without asking.
public struct OCIArchiveWriter {
    /// What the image's config says about running it.
    public struct Settings: Sendable {
        public var tag: String
        public var env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        public var cmd: [String]?
        public var workingDir: String?
        public var createdBy: String

        public init(tag: String, createdBy: String) {
            self.tag = tag
            self.createdBy = createdBy
        }
    }

    /// Moves `layer` (an uncompressed tar) into a new layout at `directory` and writes the
    /// config, manifest and indexes; returns the manifest's digest.
    @discardableResult
    public static func layout(layer: String, into directory: String, settings: Settings) throws -> String {
        try Files.makeDirectory(directory + "/blobs/sha256")
        let layerDigest = try sha256(file: layer)
        let layerPath = "blobs/sha256/" + layerDigest.hex
        guard rename(layer, directory + "/" + layerPath) == 0 else {
            throw SystemCallError("rename \(layer)", errno: errno)
        }
        let created = ISO8601DateFormatter().string(from: Date())
        var runConfig: [String: Any] = ["Env": settings.env]
        if let cmd = settings.cmd { runConfig["Cmd"] = cmd }
        if let workingDir = settings.workingDir { runConfig["WorkingDir"] = workingDir }
        let config = try json([
            "architecture": "amd64", "os": "linux", "created": created, "config": runConfig,
            "rootfs": ["type": "layers", "diff_ids": ["sha256:" + layerDigest.hex]],
            "history": [["created": created, "created_by": settings.createdBy]],
        ])
        let configDigest = try store(config, in: directory)
        let manifest = try json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": [
                "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + configDigest,
                "size": config.count,
            ],
            "layers": [
                [
                    "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layerDigest.hex,
                    "size": layerDigest.size,
                ]
            ],
        ])
        let manifestDigest = try store(manifest, in: directory)
        let index = try json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                [
                    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + manifestDigest,
                    "size": manifest.count,
                    "annotations": [
                        "org.opencontainers.image.ref.name": "latest", "io.containerd.image.name": settings.tag,
                    ],
                ]
            ],
        ])
        try index.write(to: URL(fileURLWithPath: directory + "/index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
        let docker = try json([
            ["Config": "blobs/sha256/" + configDigest, "RepoTags": [settings.tag], "Layers": [layerPath]]
        ])
        try docker.write(to: URL(fileURLWithPath: directory + "/manifest.json"))
        return "sha256:" + manifestDigest
    }

    /// One tar file of a layout made by ``layout(layer:into:settings:)``, written to a file
    /// made new (never through a link or over something already there).
    public static func archive(layout directory: String, to file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCallError("create \(file)", errno: errno) }
        defer { close(fd) }
        let child = try ChildProcess.spawn(
            [
                "tar", "-c", "-f", "-", "--owner=0", "--group=0", "--numeric-owner", "-C", directory, "oci-layout",
                "index.json", "manifest.json", "blobs",
            ], stdin: .null, stdout: .fd(fd))
        guard child.wait() == 0 else { throw AirlockError(.failed, "cannot write \(file)") }
    }

    static func json(_ value: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    private static func store(_ data: Data, in directory: String) throws -> String {
        let digest = hex(SHA256.hash(data: data))
        try data.write(to: URL(fileURLWithPath: directory + "/blobs/sha256/" + digest))
        return digest
    }

    /// The SHA-256 (hex) and size of a file, read in chunks.
    static func sha256(file: String) throws -> (hex: String, size: Int64) {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(file)", errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var size: Int64 = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw SystemCallError("read \(file)", errno: errno) }
            if got == 0 { break }
            size += Int64(got)
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
        }
        return (hex(hasher.finalize()), size)
    }
}
