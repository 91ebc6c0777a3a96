import Testing

@testable import AirlockRuntime

@Suite struct SandboxCopyTests {
    @Test func endpointsAsDockerCpReadsThem() {
        #expect(SandboxCopy.Endpoint("shell-app:/tmp/x") == .sandbox(name: "shell-app", path: "/tmp/x"))
        #expect(SandboxCopy.Endpoint("-") == .stream)
        #expect(SandboxCopy.Endpoint("./a:b") == .host("./a:b"))
        #expect(SandboxCopy.Endpoint("dir/a:b") == .host("dir/a:b"))
        #expect(SandboxCopy.Endpoint("notes.txt") == .host("notes.txt"))
        // Not a sandbox name (upper case): a host path.
        #expect(SandboxCopy.Endpoint("C:/x") == .host("C:/x"))
    }

    @Test func pathsSplitIntoParentAndLastName() {
        #expect(SandboxCopy.split("/a/b/c") == ("/a/b", "c"))
        #expect(SandboxCopy.split("/a/b/c/") == ("/a/b", "c"))
        #expect(SandboxCopy.split("/a/b/.") == ("/a/b", "."))
        #expect(SandboxCopy.split("/.") == ("/", "."))
        #expect(SandboxCopy.split("/") == ("/", "."))
        #expect(SandboxCopy.split("/x") == ("/", "x"))
        #expect(SandboxCopy.split("x") == (".", "x"))
    }
}
