import AirlockState
import AirlockSystem
import Foundation

/// A container image pulled from a registry, an archive or a layout: its layers (unpacked
/// once, shared with every image that has them) and what its config says to run.
public struct PulledImage: Codable, Sendable, Equatable {
    /// The config's digest, hex: the image's identity, as Docker's image ID.
    public var id: String
    /// The sources it was pulled as (`node:22`, `oci:/path:tag`), newest first.
    public var references: [String]
    public var manifestDigest: String
    /// Uncompressed layer digests (`sha256:…`), bottom first.
    public var layers: [String]
    public var run: OCIDocuments.RunConfig
    public var architecture: String
    /// Bytes of its layers as fetched (compressed).
    public var size: Int64
    public var pulled: Date

    public var shortID: String { String(id.prefix(12)) }
}

/// Where pulled images live in the state directory:
///
/// ```
/// blobs/sha256/<hex>          fetched blobs (skopeo's shared blob directory)
/// layers/<hex>/root           an unpacked layer, an overlayfs lower directory
/// layers/<hex>/layer.json     which blob it came from, and its size
/// pulled/<id>.json            a pulled image (PulledImage)
/// pulls/<pid>-<n>/            a pull in progress (removed when its process is gone)
/// ```
public struct ImageStore: Sendable {
    public let store: StateStore

    public init(store: StateStore) {
        self.store = store
    }

    public var blobs: String { store.root + "/blobs" }
    public var layersDirectory: String { store.root + "/layers" }
    public var imagesDirectory: String { store.root + "/pulled" }
    public var pullsDirectory: String { store.root + "/pulls" }

    /// The unpacked root of the layer with uncompressed digest `diffID`.
    public func layerRoot(_ diffID: String) -> String { layerDirectory(diffID) + "/root" }

    func layerDirectory(_ diffID: String) -> String {
        layersDirectory + "/" + Self.hex(diffID)
    }

    /// Whether the layer is unpacked whole (its record is written last).
    func hasLayer(_ diffID: String) -> Bool { Files.exists(layerDirectory(diffID) + "/layer.json") }

    static func hex(_ digest: String) -> String {
        digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
    }

    /// Refuses what is not `sha256:` and 64 lowercase hex digits: a digest names a path here.
    static func check(_ digest: String, in source: ImageSource) throws {
        guard ImageReference.isDigest(digest) else {
            throw AirlockError(
                .failed, "\(source) names a digest that is not sha256:<64 hex digits>: a broken or forged image")
        }
    }

    public func all() -> [PulledImage] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: imagesDirectory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { load(String($0.dropLast(5))) }
            .sorted { $0.pulled > $1.pulled }
    }

    func load(_ id: String) -> PulledImage? {
        guard let text = Files.readRegularFile(imagesDirectory + "/" + id + ".json", limit: 1 << 20) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(PulledImage.self, from: Data(text.utf8))
    }

    func save(_ image: PulledImage) throws {
        try Files.makeDirectory(imagesDirectory)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Files.writeAtomically(
            imagesDirectory + "/" + image.id + ".json", String(decoding: try encoder.encode(image), as: UTF8.self))
    }

    /// The image a user names: by a source it was pulled as (`node` finds `node:latest`), or by
    /// its ID or a prefix of it (at least 4 digits, and only one image's).
    public func find(_ name: String) -> PulledImage? {
        let images = all()
        let wanted = Set([name] + [(try? ImageSource(parsing: name))?.description].compactMap { $0 })
        if let image = images.first(where: { !wanted.isDisjoint(with: $0.references) }) { return image }
        let id = Self.hex(name)
        guard id.count >= 4, id.allSatisfy(\.isHexDigit) else { return nil }
        let matches = images.filter { $0.id.hasPrefix(id) }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Removes an image's record; then every layer and blob no image uses any more. Returns the
    /// layers removed. `namespace` removes what subordinate ids own.
    @discardableResult
    public func remove(_ image: PulledImage, namespace: UserNamespace) throws -> [String] {
        Files.remove(imagesDirectory + "/" + image.id + ".json")
        return try collectGarbage(namespace: namespace)
    }

    /// Layers and blobs that no pulled image names, removed.
    @discardableResult
    public func collectGarbage(namespace: UserNamespace) throws -> [String] {
        let images = all()
        let usedLayers = Set(images.flatMap { $0.layers.map(Self.hex) })
        let layers = ((try? FileManager.default.contentsOfDirectory(atPath: layersDirectory)) ?? [])
            .filter { !$0.hasPrefix(".") && !usedLayers.contains($0) }
        // Out of the way at once, then removed: a removal cut short leaves a `.removing-`
        // tree for the next pull's sweep, never a half-empty layer under its digest.
        var doomed: [String] = []
        for layer in layers {
            let aside = layersDirectory + "/.removing-\(getpid())-" + layer
            if rename(layersDirectory + "/" + layer, aside) == 0 { doomed.append(aside) }
        }
        try namespace.removeTree(doomed)
        // Blobs: the manifests and configs of the images left, and their layers' blobs.
        var usedBlobs = Set(images.map { $0.id } + images.map { Self.hex($0.manifestDigest) })
        for layer in usedLayers {
            if let record = LayerRecord.load(layersDirectory + "/" + layer) { usedBlobs.insert(Self.hex(record.blob)) }
        }
        for blob in (try? FileManager.default.contentsOfDirectory(atPath: blobs + "/sha256")) ?? []
        where !usedBlobs.contains(blob) {
            Files.remove(blobs + "/sha256/" + blob)
        }
        return layers
    }
}

/// What is known of an unpacked layer.
struct LayerRecord: Codable, Equatable {
    var diffID: String
    /// The blob it was unpacked from (compressed digest).
    var blob: String
    var entries: Int
    var bytes: Int64
    var devicesSkipped: Int

    static func load(_ directory: String) -> LayerRecord? {
        guard let text = Files.readRegularFile(directory + "/layer.json", limit: 1 << 16) else { return nil }
        return try? JSONDecoder().decode(LayerRecord.self, from: Data(text.utf8))
    }
}
