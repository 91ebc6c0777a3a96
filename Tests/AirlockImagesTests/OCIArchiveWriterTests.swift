import AirlockSystem
import Crypto
import Foundation
import Testing

@testable import AirlockImages

@Suite struct OCIArchiveWriterTests {
    /// Every digest the layout names is the digest of the blob it names, and Docker's
    /// manifest names the same config and layer as the OCI one.
    @Test func aLayoutWhoseDigestsHold() throws {
        let directory = NSTemporaryDirectory() + "/oci-writer-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Files.makeDirectory(directory)
        let layer = directory + "/layer.tar"
        try Data(repeating: 7, count: 10240).write(to: URL(fileURLWithPath: layer))
        var settings = OCIArchiveWriter.Settings(tag: "airlock/test:latest", createdBy: "a test")
        settings.cmd = ["/bin/bash"]
        let manifestDigest = try OCIArchiveWriter.layout(layer: layer, into: directory + "/layout", settings: settings)

        func blob(_ digest: String) throws -> Data {
            let data = try Data(
                contentsOf: URL(fileURLWithPath: directory + "/layout/blobs/sha256/" + digest.dropFirst(7)))
            #expect("sha256:" + hex(SHA256.hash(data: data)) == digest)
            return data
        }
        let index =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: directory + "/layout/index.json"))) as? [String: Any]
        let entry = try #require((index?["manifests"] as? [[String: Any]])?.first)
        #expect(entry["digest"] as? String == manifestDigest)
        let manifest = try #require(try JSONSerialization.jsonObject(with: blob(manifestDigest)) as? [String: Any])
        let config = try #require(manifest["config"] as? [String: Any])
        let configData = try blob(try #require(config["digest"] as? String))
        #expect(config["size"] as? Int == configData.count)
        let layers = try #require(manifest["layers"] as? [[String: Any]])
        let layerDigest = try #require(layers.first?["digest"] as? String)
        #expect(try blob(layerDigest).count == 10240)
        let image = try #require(try JSONSerialization.jsonObject(with: configData) as? [String: Any])
        #expect(((image["rootfs"] as? [String: Any])?["diff_ids"] as? [String]) == [layerDigest])
        #expect(((image["config"] as? [String: Any])?["Cmd"] as? [String]) == ["/bin/bash"])
        let docker = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: directory + "/layout/manifest.json"))) as? [[String: Any]])
        #expect(
            docker.first?["Config"] as? String == "blobs/sha256/" + (config["digest"] as? String ?? "").dropFirst(7))
        #expect(docker.first?["Layers"] as? [String] == ["blobs/sha256/" + layerDigest.dropFirst(7)])
        #expect(docker.first?["RepoTags"] as? [String] == ["airlock/test:latest"])
        #expect(!Files.exists(layer))
    }
}
