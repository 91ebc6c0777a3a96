import AirlockPolicy
import AirlockState
import AirlockSystem
import AirlockWire
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AirlockEgress

@Suite struct PolicyStoreTests {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "airlock-policy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func picksUpAChangedLayerAtOnce() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = PolicyStore.Files(
            organisation: dir + "/org.yaml", user: dir + "/user.yaml", sandbox: dir + "/sandbox.json")
        let store = PolicyStore(files: files)
        #expect(try store.current().get().egress.preset == .balanced)
        try #"{"preset": "open"}"#.write(toFile: files.sandbox, atomically: true, encoding: .utf8)
        #expect(try store.current().get().egress.preset == .open)
        try "preset: locked\nblockHosts: [evil.example]\n".write(
            toFile: files.organisation, atomically: true, encoding: .utf8)
        let combined = try store.current().get()
        #expect(combined.egress.preset == .locked)  // the organisation's ceiling
        #expect(!combined.egress.decide(host: "evil.example", port: 443).isAllowed)
    }

    @Test func aSandboxOfItsOwnPolicyTakesOnlyTheUsersBlocks() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files = PolicyStore.Files(organisation: dir + "/org.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
        try "preset: open\nallowHosts: [wide.example]\nallowCIDRs: [10.0.0.0/8]\nblockHosts: [api.github.com:443]\n"
            .write(toFile: files.user, atomically: true, encoding: .utf8)
        try #"{"preset": "locked", "allowHosts": ["api.github.com", "own.example"]}"#.write(
            toFile: files.sandbox, atomically: true, encoding: .utf8)
        try "blockHosts: [own.example]\n".write(toFile: files.organisation, atomically: true, encoding: .utf8)
        // Companion: with the whole user layer the sandbox reaches what the user allows.
        let whole = try PolicyStore(files: files).current().get().egress
        #expect(whole.decide(host: "wide.example", port: 443).isAllowed)
        files.userNarrowsOnly = true
        let own = try PolicyStore(files: files).current().get().egress
        #expect(own.preset == .locked)
        #expect(!own.decide(host: "wide.example", port: 443).isAllowed)
        #expect(!own.decide(address: IPAddress(parsing: "10.1.2.3")!, port: 443, host: nil).isAllowed)
        #expect(!own.decide(host: "api.github.com", port: 443).isAllowed)  // the user's block holds
        #expect(own.decide(host: "api.github.com", port: 80).isAllowed)
        #expect(!own.decide(host: "own.example", port: 443).isAllowed)  // and the organisation's
    }

    @Test func aBrokenLayerDeniesEverything() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = PolicyStore.Files(organisation: dir + "/org.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
        try "allowHosts: [\"not a host!\"]\n".write(toFile: files.user, atomically: true, encoding: .utf8)
        guard case .failure(let error) = PolicyStore(files: files).current() else {
            Issue.record("a bad rule was accepted")
            return
        }
        #expect(error.description.contains("not a host!"))
    }

    @Test(arguments: [
        ("preset: [bad\n", "line 2, column 1: did not find expected ',' or ']'"),
        ("preset: wrong\n", "preset: not one of balanced, open, locked"),
        ("allowHosts: github.com\n", "allowHosts: expected a list"),
        ("allowHosts: [[a]]\n", "allowHosts[0]: expected a single value"),
        ("- github.com\n", "expected settings (KEY: VALUE lines)"),
        ("preset: open\npreset: locked\n", "'preset' given more than once"),
        ("blockCIDRs: [10.0.0.0/33]\n", "'10.0.0.0/33' is not an address range"),
        // A misspelt key would silently drop its rules: the blocks, here.
        ("blockhosts: [evil.example]\n", "unknown key 'blockhosts' (known: addHosts, allowCIDRs,"),
    ])
    func aMalformedFileIsOneLineThatNamesIt(text: String, says: String) throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The organisation's layer (whose real path, /etc, a test cannot write) and the user's.
        for layer in [\PolicyStore.Files.organisation, \PolicyStore.Files.user] {
            let files = PolicyStore.Files(
                organisation: dir + "/org.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
            let path = files[keyPath: layer]
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try PolicyStore(files: files).check()
                Issue.record("\(text) was accepted")
            } catch let error as AirlockError {
                #expect(error.code == .invalidConfiguration)
                #expect(error.description.hasPrefix("policy error: \(path): "))
                #expect(error.description.contains(says), "\(error.description)")
                #expect(!error.description.contains("\n"))
            }
        }
        // Companion: the same place with a valid file is used.
        let files = PolicyStore.Files(organisation: dir + "/org.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
        try "preset: locked\n".write(toFile: files.organisation, atomically: true, encoding: .utf8)
        try "blockHosts: [evil.example]\n".write(toFile: files.user, atomically: true, encoding: .utf8)
        let policy = try PolicyStore(files: files).check()
        #expect(policy.egress.preset == .locked)
        #expect(!policy.egress.decide(host: "evil.example", port: 443).isAllowed)
    }

    @Test func aLayerThatCannotBeReadIsAnErrorNotAbsent() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/org.yaml", withIntermediateDirectories: false)
        let files = PolicyStore.Files(organisation: dir + "/org.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
        #expect(throws: AirlockError.self) { try PolicyStore(files: files).check() }
        // Companion: a layer that does not exist is no layer.
        let absent = PolicyStore.Files(
            organisation: dir + "/none.yaml", user: dir + "/u.yaml", sandbox: dir + "/s.json")
        #expect(try PolicyStore(files: absent).check().egress.preset == .balanced)
    }
}

/// A running sandbox whose policy file breaks keeps refusing, and its network log says why.
@Suite struct BrokenPolicyLogTests {
    @Test func everyRefusalCarriesThePolicyError() throws {
        let root = NSTemporaryDirectory() + "airlock-broken-policy-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = StateStore(root: root)
        let paths = store.sandbox("box")
        try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
        var configuration = try EgressConfiguration(store: store, name: "box", environment: [:])
        configuration.policyFiles = PolicyStore.Files(
            organisation: root + "/org.yaml", user: root + "/user.yaml", sandbox: root + "/sandbox.json")
        try #"{"allowHosts": ["allowed.example"]}"#.write(
            toFile: configuration.policyFiles.sandbox, atomically: true, encoding: .utf8)
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        defer { try? threadPool.syncShutdownGracefully() }
        let engine = try EgressEngine(configuration: configuration, threadPool: threadPool)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let query = try DNSMessage.query(id: 7, name: "allowed.example", type: DNSType.a)

        // Companion: with a valid policy the name is answered, and nothing is logged.
        #expect(engine.dnsRefusal(of: "allowed.example") == nil)
        _ = DNSStub.answer(ByteBuffer(bytes: query), engine: engine)
        #expect(((try? String(contentsOfFile: paths.networkLog, encoding: .utf8)) ?? "").isEmpty)

        try "preset: [bad\n".write(toFile: configuration.policyFiles.user, atomically: true, encoding: .utf8)
        let reason = "policy error: \(configuration.policyFiles.user): line 2, column 1"
        #expect(engine.dnsRefusal(of: "allowed.example")?.hasPrefix(reason) == true)
        _ = DNSStub.answer(ByteBuffer(bytes: query), engine: engine)
        do {
            _ = try engine.authorize(host: "allowed.example", port: 443, on: group.next()).wait()
            Issue.record("a request was allowed under a broken policy")
        } catch let refusal as EgressEngine.Refusal {
            #expect(refusal.reason.hasPrefix(reason))
        }

        let lines = try String(contentsOfFile: paths.networkLog, encoding: .utf8).split(separator: "\n")
        let entries = try lines.map { try NetworkLog.decoder.decode(NetworkLogEntry.self, from: Data($0.utf8)) }
        #expect(entries.map(\.decision) == ["deny"])
        #expect(entries.first?.reason?.hasPrefix(reason) == true)
    }
}

@Suite struct SyntheticAddressTests {
    @Test func oneStableAddressPerNameAndBack() throws {
        let pool = SyntheticAddresses()
        let first = try #require(pool.address(for: "pypi.org"))
        #expect(pool.address(for: "pypi.org") == first)
        let second = try #require(pool.address(for: "github.com"))
        #expect(first != second)
        #expect(pool.name(for: first) == "pypi.org")
        #expect(SyntheticAddresses.contains(first))
        #expect(!SyntheticAddresses.contains(.v4(0x0808_0808)))
        #expect(pool.name(for: .v4(0xC612_FFFF)) == nil)
    }

    @Test func aFullRangeReusesTheOldestAddress() throws {
        let pool = SyntheticAddresses()
        let first = try #require(pool.address(for: "name-0.example"))
        for index in 1..<SyntheticAddresses.capacity { _ = pool.address(for: "name-\(index).example") }
        let reused = try #require(pool.address(for: "one-more.example"))
        #expect(reused == first)
        #expect(pool.name(for: first) == "one-more.example")
        #expect(pool.address(for: "name-1.example") != first)
    }
}

@Suite struct CredentialTests {
    let anthropic = Credential(service: CredentialService.builtIn[0], value: "sk-real")
    let github = Credential(service: CredentialService.builtIn[3], value: "ghp_real")

    @Test func theTableNamesTheServicesItPromises() {
        #expect(anthropic.service.name == "anthropic" && github.service.name == "github")
        #expect(
            Set(CredentialService.builtIn.map(\.name)) == [
                "anthropic", "openai", "google", "github", "groq", "mistral", "xai",
            ])
    }

    @Test func replacesTheSentinelInTheConfiguredHeaderOnly() {
        var fields = [
            HTTPField(name: "X-Api-Key", value: credentialSentinel),
            HTTPField(name: "x-other", value: credentialSentinel),
        ]
        #expect(anthropic.inject(into: &fields))
        #expect(fields[0].value == "sk-real")
        #expect(fields[1].value == credentialSentinel)
    }

    @Test func aSandboxThatNamesItsServicesGetsOnlyThoseKeys() throws {
        let root = FileManager.default.temporaryDirectory.path + "/creds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = StateStore(root: root)
        let secrets = SecretStore(store: store)
        try secrets.save(anthropic)
        try secrets.save(github)
        let paths = store.sandbox("s")
        try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
        var record = SandboxRecord(
            name: "s", agent: "a", workspace: "/w", template: "t", image: "i", user: "agent", sudo: false,
            runtime: "runc", command: [], environment: [], mounts: [], limits: .init(), created: Date())
        try paths.save(record)
        #expect(secrets.credentials(for: paths).map(\.service.name) == ["anthropic", "github"])
        record.credentialServices = ["github"]
        try paths.save(record)
        #expect(secrets.credentials(for: paths).map(\.service.name) == ["github"])
        record.credentialServices = []
        try paths.save(record)
        #expect(secrets.credentials(for: paths).isEmpty)
    }

    @Test func leavesAHeaderWithoutTheSentinelAlone() {
        var fields = [HTTPField(name: "x-api-key", value: "sk-user-chose-this")]
        #expect(!anthropic.inject(into: &fields))
        #expect(fields[0].value == "sk-user-chose-this")
    }

    @Test func replacesInsideBasicCredentialsAsGitSendsThem() throws {
        let basic = "Basic " + Data("x-access-token:\(credentialSentinel)".utf8).base64EncodedString()
        var fields = [HTTPField(name: "Authorization", value: basic)]
        #expect(github.inject(into: &fields))
        let decoded = try #require(Data(base64Encoded: String(fields[0].value.dropFirst(6))))
        #expect(String(decoding: decoded, as: UTF8.self) == "x-access-token:ghp_real")
    }

    @Test func appliesOnlyToTheServicesHosts() {
        #expect(anthropic.applies(to: "api.anthropic.com"))
        #expect(!anthropic.applies(to: "anthropic.com"))
        #expect(!anthropic.applies(to: "api.anthropic.com.evil.example"))
        #expect(github.applies(to: "github.com"))
    }
}
