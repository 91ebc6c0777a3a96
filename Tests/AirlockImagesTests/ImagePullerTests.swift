import Testing

@testable import AirlockImages

@Suite struct ImagePullerTests {
    @Test func sourcesAreNamedAsSkopeoWantsThem() throws {
        let digest = "sha256:" + String(repeating: "c", count: 64)
        #expect(ImagePuller.skopeoName(try ImageSource(parsing: "node:22")) == "docker://docker.io/library/node:22")
        // A digest pins it; skopeo refuses a tag beside it.
        #expect(
            ImagePuller.skopeoName(try ImageSource(parsing: "ghcr.io/o/r:1@" + digest)) == "docker://ghcr.io/o/r@"
                + digest)
        #expect(ImagePuller.skopeoName(try ImageSource(parsing: "oci:/l:v1")) == "oci:/l:v1")
        #expect(
            ImagePuller.skopeoName(try ImageSource(parsing: "docker-daemon:node"))
                == "docker-daemon:docker.io/library/node:latest")
        #expect(
            ImagePuller.skopeoName(try ImageSource(parsing: "containers-storage:localhost/tiny"))
                == "containers-storage:localhost/tiny:latest")
        #expect(
            ImagePuller.skopeoName(
                try ImageSource(parsing: "containers-storage:node@sha256:" + String(repeating: "a", count: 64)))
                == "containers-storage:docker.io/library/node@sha256:" + String(repeating: "a", count: 64))
    }

    @Test func skopeosErrorsBecomeOneLineThatSaysWhatToDo() throws {
        let source = try ImageSource(parsing: "localhost:5000/x:1")
        let cases: [(String, String)] = [
            (
                #"time="2026" level=fatal msg="initializing source docker://localhost:5000/x:1: reading manifest 1 in localhost:5000/x: manifest unknown: manifest unknown""#,
                "not found"
            ),
            (
                "initializing source docker://localhost:5000/x:1: reading manifest 1 in localhost:5000/x: unauthorized: authentication required",
                "refused the credentials"
            ),
            (
                "pinging container registry localhost:5000: Get \"https://localhost:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
                "cannot reach"
            ),
            ("x509: certificate signed by unknown authority", "cannot reach"),
            ("something else entirely", "pulling localhost:5000/x:1 failed"),
        ]
        for (line, said) in cases {
            let explained = ImagePuller.explain(line, source)
            #expect(explained.contains(said), "\(explained)")
            #expect(!explained.contains("\n"))
            #expect(!explained.contains("level=fatal"))
        }
        let podman = ImagePuller.explain(
            #"time="2026" level=fatal msg="Error parsing image name \"containers-storage:docker.io/e2e/x:1\": reference \"[vfs@/s+/r]docker.io/e2e/x:1\" does not resolve to an image ID: identifier is not an image""#,
            try ImageSource(parsing: "containers-storage:e2e/x:1"))
        #expect(
            podman == "image containers-storage:e2e/x:1 is not in your Podman store (podman images lists what it holds)"
        )
    }
}
