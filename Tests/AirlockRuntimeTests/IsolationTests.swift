import AirlockState
import AirlockSystem
import Foundation
import Testing

@testable import AirlockRuntime

@Suite struct IsolationTests {
    let file = "/home/u/.config/airlock/config.yaml"

    @Test func settingsNameTheDefaultTier() throws {
        #expect(try UserSettings.parse("isolation: gvisor\n", path: file).isolation == .gvisor)
        #expect(try UserSettings.parse("isolation: container\n", path: file).isolation == .container)
        #expect(try UserSettings.parse("", path: file) == UserSettings())
        #expect(try UserSettings.parse("# nothing set\n", path: file) == UserSettings())
    }

    @Test(arguments: [
        ("isolation: kvm\n", "unknown isolation 'kvm' (choose container or gvisor)"),
        ("isolaton: gvisor\n", "unknown setting 'isolaton' (known: isolation)"),
        ("isolation: [gvisor\n", "line 1"),
        ("- gvisor\n", "settings (KEY: VALUE lines) expected"),
        ("isolation: {a: b}\n", "isolation: expected a single value"),
    ])
    func aBadSettingsFileIsOneLineNamingIt(text: String, expected: String) {
        do {
            _ = try UserSettings.parse(text, path: file)
            Issue.record("accepted \(text)")
        } catch let error as AirlockError {
            #expect(error.message.hasPrefix("settings error: \(file): "))
            #expect(error.message.contains(expected))
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func eitherAskForGVisorWins() {
        #expect(Isolation.stronger(nil, nil) == nil)
        #expect(Isolation.stronger(.container, nil) == .container)
        #expect(Isolation.stronger(.container, .gvisor) == .gvisor)
        #expect(Isolation.stronger(.gvisor, .container) == .gvisor)
        #expect(Isolation(runtime: .runsc) == .gvisor && Isolation(runtime: .crun) == .container)
        #expect(Isolation(runtimeName: "runc") == .container)
    }

    @Test func aTierAndARuntimeThatDisagreeAreRefusedBeforeAnyProbe() throws {
        let store = StateStore(root: NSTemporaryDirectory() + "airlock-isolation-\(getpid())")
        let choice = RuntimeChoice(store: store, environment: [:])
        #expect(throws: AirlockError.self) { try choice.choose(runtime: "runc", isolation: .gvisor) }
        #expect(throws: AirlockError.self) { try choice.choose(runtime: "runsc", isolation: .container) }
        #expect(throws: AirlockError.self) { try choice.choose(runtime: "kata", isolation: nil) }
        // Companion: agreeing ones pass (runc needs no probe).
        #expect(try choice.choose(runtime: "runc", isolation: .container).runtime == .runc)
        // The environment's runsc does not override an explicit --isolation container.
        let fromEnvironment = RuntimeChoice(store: store, environment: ["AIRLOCK_RUNTIME": "runsc"])
        #expect(try fromEnvironment.choose(runtime: "runc", isolation: .container).runtime == .runc)
    }

    @Test func gVisorsHostCgroupLeavesRoomForItsKernel() {
        var record = SandboxRecord(
            name: "n", agent: "shell", workspace: "/w", template: "shell", image: "d", user: "agent", sudo: true,
            runtime: "runsc", command: [], environment: [], mounts: [],
            limits: SandboxRecord.Limits(memoryBytes: 256 << 20, cpus: 1, pids: 64), created: Date())
        let host = SandboxSpec.hostLimits(record)
        #expect(host.pids == Int64(64 * 2 + 256))
        #expect(host.memoryBytes == (256 << 20) + (128 << 20))
        #expect(host.cpus == 1)
        record.runtime = "crun"
        #expect(SandboxSpec.hostLimits(record) == record.limits)
    }
}
