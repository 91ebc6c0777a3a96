import AirlockSystem
import Testing

@testable import AirlockState

@Suite struct StateStoreTests {
    @Test func airlockHomeWins() {
        let store = StateStore.default(environment: ["AIRLOCK_HOME": "/srv/al", "XDG_DATA_HOME": "/x", "HOME": "/h"])
        #expect(store.root == "/srv/al")
    }

    @Test func xdgDataHomeThenHome() {
        #expect(StateStore.default(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"]).root == "/x/airlock")
        #expect(StateStore.default(environment: ["HOME": "/h"]).root == "/h/.local/share/airlock")
    }

    @Test func sandboxPathsLiveUnderTheSandbox() {
        let paths = StateStore(root: "/s").sandbox("shell-demo")
        #expect(paths.record == "/s/sandboxes/shell-demo/sandbox.json")
        #expect(paths.upper == "/s/sandboxes/shell-demo/upper")
        #expect(paths.runningLock == "/s/sandboxes/shell-demo/running.lock")
    }
}

@Suite struct IdentityTests {
    @Test func findsTheUsersRangeByNameOrId() {
        let text = "alice:100000:65536\n1001:300000:65536\nbob:165536:65536\n"
        #expect(SubordinateRange.parse(text, user: "bob", id: 1002) == SubordinateRange(start: 165536, count: 65536))
        #expect(SubordinateRange.parse(text, user: "carol", id: 1001) == SubordinateRange(start: 300000, count: 65536))
        #expect(SubordinateRange.parse(text, user: "dave", id: 1003) == nil)
    }

    @Test func agentIsTheHostUserAndEverythingElseSubordinate() {
        let identity = SandboxIdentity(
            hostUID: 1001, hostGID: 1001, uidRange: SubordinateRange(start: 100000, count: 65536),
            gidRange: SubordinateRange(start: 100000, count: 65536))
        #expect(
            identity.uidMappings == [
                IDMapping(containerID: 0, hostID: 100000, size: 1000),
                IDMapping(containerID: 1000, hostID: 1001, size: 1),
                IDMapping(containerID: 1001, hostID: 101000, size: 64536),
            ])
        // nobody (65534) is mapped, and no subordinate id is used twice.
        let last = identity.uidMappings[2]
        #expect(last.containerID + last.size > 65534)
        #expect(last.hostID + last.size <= 100000 + 65536)
        #expect(identity.hostRootUID == 100000)
    }

    @Test func newuidmapArguments() {
        let maps = [
            IDMapping(containerID: 0, hostID: 100000, size: 1000), IDMapping(containerID: 1000, hostID: 1001, size: 1),
        ]
        #expect(UserNamespace.mapArguments(pid: 42, maps) == ["42", "0", "100000", "1000", "1000", "1001", "1"])
    }
}

@Suite struct FileLockTests {
    @Test func secondHolderIsRefusedUntilRelease() throws {
        let path = "/tmp/airlock-lock-test-\(Int.random(in: 0..<1_000_000))"
        defer { Files.remove(path) }
        let first = try FileLock(path: path)
        let second = try FileLock(path: path)
        #expect(first.tryAcquire())
        #expect(!second.tryAcquire())
        #expect(FileLock.isHeld(path: path))
        first.release()
        #expect(second.tryAcquire())
        second.release()
        #expect(!FileLock.isHeld(path: path))
    }
}

@Suite struct PathContainmentTests {
    @Test(arguments: [
        ("/home/u", "/home/u", true), ("/home/u/p", "/home/u", true), ("/home/u", "/", true),
        ("/home/user2", "/home/u", false), ("/home", "/home/u", false),
    ])
    func isWithin(path: String, directory: String, expected: Bool) {
        #expect(Files.isWithin(path, directory) == expected)
    }
}
