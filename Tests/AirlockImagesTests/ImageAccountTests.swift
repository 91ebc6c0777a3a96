import AirlockSystem
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

@Suite struct ImageProcessTests {
    let passwd = """
        root:x:0:0:root:/root:/bin/sh
        node:x:1000:1000::/home/node:/bin/bash
        web:x:33:33::/:/bin/sh
        bin:x:2:2:bin:/bin:/usr/sbin/nologin
        www-data:x:34:34::/var/www:/bin/sh
        sys:x:3:3:sys:/dev:/bin/sh
        mcp:x:1500:1500::/srv/mcp:/bin/sh

        """
    let group = "root:x:0:\nnode:x:1000:\nstaff:x:50:\n"

    func resolve(_ spec: String) throws -> String {
        let (name, account) = try ImageProcess.resolve(spec, passwd: passwd, group: group)
        return "\(name) \(account.uid):\(account.gid) \(account.home)"
    }

    @Test func userIsReadAsRuncReadsIt() throws {
        #expect(try resolve("0") == "root 0:0 /root")
        #expect(try resolve("node") == "node 1000:1000 /home/node")
        #expect(try resolve("1000") == "node 1000:1000 /home/node")
        #expect(try resolve("node:staff") == "node 1000:50 /home/node")
        #expect(try resolve("1000:7") == "node 1000:7 /home/node")
        // A number the image does not know: group 0, and a home of its own to write in.
        #expect(try resolve("4242") == "4242 4242:0 /home/4242")
        // Homes Airlock would mount the user's own directory over: only where homes belong.
        #expect(try resolve("web") == "web 33:33 /home/web")
        #expect(try resolve("bin") == "bin 2:2 /home/bin")
        #expect(try resolve("www-data") == "www-data 34:34 /home/www-data")
        #expect(try resolve("sys") == "sys 3:3 /home/sys")
        #expect(try resolve("mcp") == "mcp 1500:1500 /srv/mcp")
    }

    @Test func aHomeReachedThroughALinkIsNoHome() throws {
        let root = NSTemporaryDirectory() + "airlock-home-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/home/real", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/home/link", withDestinationPath: "/proc/1")
        let fd = open(root, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        #expect(ImageAccount.isHome("/home/real", in: fd))
        #expect(ImageAccount.isHome("/home/missing/deeper", in: fd))
        #expect(!ImageAccount.isHome("/home/link", in: fd))
        #expect(!ImageAccount.isHome("/home/link/sub", in: fd))
        #expect(!ImageAccount.isHome("/home", in: fd) && !ImageAccount.isHome("/etc", in: fd))
    }

    @Test func imageTextInAnErrorStaysOnOneLine() {
        #expect(shown("a\nairlock: forged \u{1B}[32mOK") == "a?airlock: forged ?[32mOK")
        #expect(shown(String(repeating: "x", count: 500)).count == 203)
    }

    @Test func unknownNamesAndIdsOutsideTheSandboxAreRefused() {
        for spec in ["nobody-here", "node:nogroup", "70000", "node:70000"] {
            #expect(throws: AirlockError.self) { try resolve(spec) }
        }
    }

    @Test func theCommandTakesThePlaceOfCmdAfterTheEntrypoint() throws {
        let root = NSTemporaryDirectory() + "airlock-process-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try passwd.write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
        let config = OCIDocuments.RunConfig(
            env: ["A=1"], workingDir: "/srv", user: "node", entrypoint: ["python3", "/s.py"], cmd: ["default"])
        let process = try ImageProcess(config: config, rootfs: root)
        #expect(try process.argv() == ["python3", "/s.py", "default"])
        #expect(try process.argv(command: ["mine", "x"]) == ["python3", "/s.py", "mine", "x"])
        #expect(process.workingDir == "/srv" && process.userName == "node" && process.environment == ["A=1"])
        #expect(try ImageProcess(config: config, rootfs: root, user: "root").account.uid == 0)
        let bare = try ImageProcess(config: OCIDocuments.RunConfig(), rootfs: root)
        #expect(bare.workingDir == "/" && bare.userName == "root")
        #expect(throws: AirlockError.self) { try bare.argv() }
    }
}

@Suite struct PauseProgramTests {
    @Test(.enabled(if: PauseProgram.isAvailable)) func itWaitsUntilKilled() throws {
        let path = NSTemporaryDirectory() + "airlock-pause-\(UUID().uuidString)"
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(PauseProgram.bytes)))
        chmod(path, 0o755)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        try process.run()
        usleep(200_000)
        // Still there after 200 ms: it waits rather than exits (or crashes).
        #expect(process.isRunning)
        // SIGKILL: the test runner's children may inherit a mask that blocks SIGTERM (in a
        // sandbox, tini starts it with none blocked and passes SIGTERM on).
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
    }
}
