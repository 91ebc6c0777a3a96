import Foundation
import Testing

@testable import AirlockImages

@Suite struct ImageAccountTests {
    func rootfs(passwd: String) throws -> String {
        let root = NSTemporaryDirectory() + "airlock-account-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/bin/bash", contents: Data())
        try passwd.write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
        return root
    }

    @Test func anImageWithoutUid1000GetsAnAgent() throws {
        let root = try rootfs(passwd: "root:x:0:0:root:/root:/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let user = try ImageAccount.setUp(in: root)
        #expect(user == Template.UserSetup(name: "agent", shell: "/bin/bash", sudo: false))
        #expect(
            try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8).contains(
                "agent:x:1000:1000::/home/agent:/bin/bash\n"))
        #expect(FileManager.default.fileExists(atPath: root + "/home/agent"))
    }

    @Test func theImagesOwnUid1000IsUsedWithItsHome() throws {
        let root = try rootfs(passwd: "root:x:0:0::/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/bash\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try ImageAccount.setUp(in: root).name == "node")
        #expect(FileManager.default.fileExists(atPath: root + "/home/node"))
    }

    @Test func aHomeThatClimbsOutIsNotFollowed() throws {
        let outside = NSTemporaryDirectory() + "airlock-account-outside-\(UUID().uuidString)"
        let root = try rootfs(passwd: "u:x:1000:1000::/../../../../../../..\(outside)/home:/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try ImageAccount.setUp(in: root)
        #expect(!FileManager.default.fileExists(atPath: outside))
        #expect(FileManager.default.fileExists(atPath: root + "/home/u"))
    }

    @Test func aHomeWithACombiningMarkAfterASlashIsNotFollowed() throws {
        let outside = NSTemporaryDirectory() + "airlock-account-outside-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let root = try rootfs(passwd: "u:x:1000:1000::/h/\u{301}x:/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/h", withDestinationPath: outside)
        _ = try ImageAccount.setUp(in: root)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(FileManager.default.fileExists(atPath: root + "/home/u"))
    }

    @Test func aNameThatIsAPathIsRefused() throws {
        let root = try rootfs(passwd: "../tmp/x:x:1000:1000::/home/x:/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: (any Error).self) { _ = try ImageAccount.setUp(in: root) }
    }
}
