import Testing

@testable import AirlockImages

@Suite struct ImageReferenceTests {
    func parsed(_ text: String) throws -> ImageReference { try ImageReference(parsing: text) }

    @Test func namesAreReadAsDockerReadsThem() throws {
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let cases: [(String, String, String, String?, String?)] = [
            ("node", "docker.io", "library/node", "latest", nil),
            ("node:22", "docker.io", "library/node", "22", nil),
            ("olegselajev241/node-sandbox@" + digest, "docker.io", "olegselajev241/node-sandbox", nil, digest),
            (
                "mcr.microsoft.com/devcontainers/javascript-node:20", "mcr.microsoft.com",
                "devcontainers/javascript-node", "20", nil
            ),
            ("localhost:5000/a/b:1.0@" + digest, "localhost:5000", "a/b", "1.0", digest),
            ("localhost/x", "localhost", "x", "latest", nil),
            ("ghcr.io/o/r", "ghcr.io", "o/r", "latest", nil),
            ("a__b/c-d.e--f", "docker.io", "a__b/c-d.e--f", "latest", nil),
        ]
        for (text, registry, repository, tag, wantedDigest) in cases {
            let reference = try parsed(text)
            #expect(reference.registry == registry, "\(text)")
            #expect(reference.repository == repository, "\(text)")
            #expect(reference.tag == tag, "\(text)")
            #expect(reference.digest == wantedDigest, "\(text)")
        }
        #expect(try parsed("node").description == "node:latest")
        #expect(try parsed("node").canonical == "docker.io/library/node:latest")
        #expect(try parsed("node").apiHost == "registry-1.docker.io")
        #expect(try parsed("127.0.0.1:5000/x:y").apiHost == "127.0.0.1:5000")
    }

    @Test func badNamesAreRefusedWithTheirPart() {
        let cases: [(String, String)] = [
            ("", "empty"), ("Node", "repository"), ("node:", "tag"), ("node:-x", "tag"), ("node@sha256:12", "digest"),
            ("a//b", "repository"), ("host:99999/x", "registry"),
            ("node@md5:" + String(repeating: "a", count: 64), "digest"),
            ("a_-b", "repository"),
        ]
        for (text, part) in cases {
            #expect(throws: ImageReferenceError.self, "\(text)") { try parsed(text) }
            do {
                _ = try parsed(text)
            } catch {
                #expect("\(error)".contains(part), "\(text): \(error)")
            }
        }
    }

    @Test func aDigestIsCheckedByteByByte() {
        #expect(ImageReference.isDigest("sha256:" + String(repeating: "a", count: 64)))
        // A combining mark joins a hex digit into one Character that still compares in range.
        #expect(!ImageReference.isDigest("sha256:" + String(repeating: "a", count: 63) + "a\u{301}"))
        #expect(!ImageReference.isDigest("sha256:" + String(repeating: "A", count: 64)))
    }

    @Test func sourcesAreReadAsSkopeoTransports() throws {
        #expect(
            try ImageSource(parsing: "docker-archive:/tmp/a.tar") == .dockerArchive(path: "/tmp/a.tar", reference: nil))
        #expect(
            try ImageSource(parsing: "docker-archive:/tmp/a.tar:x:1")
                == .dockerArchive(path: "/tmp/a.tar:x", reference: "1"))
        #expect(try ImageSource(parsing: "oci:/tmp/layout:v1") == .ociLayout(path: "/tmp/layout", reference: "v1"))
        #expect(try ImageSource(parsing: "oci-archive:/tmp/a.tar") == .ociArchive(path: "/tmp/a.tar", reference: nil))
        #expect(try ImageSource(parsing: "docker-daemon:node:22") == .dockerDaemon(try parsed("node:22")))
        #expect(
            try ImageSource(parsing: "containers-storage:localhost/app:1")
                == .podmanStore(try parsed("localhost/app:1")))
        #expect(
            try ImageSource(parsing: "containers-storage:localhost/app:1").description
                == "containers-storage:localhost/app:1")
        #expect(try ImageSource(parsing: "docker://node") == .registry(try parsed("node")))
        #expect(throws: ImageReferenceError.self) { try ImageSource(parsing: "oci:") }
    }
}
