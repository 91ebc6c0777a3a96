import Testing

@testable import AirlockPolicy

@Suite struct HostRuleTests {
    @Test func exactMatchesOnlyThatHost() throws {
        let rule = try #require(HostRule("example.com"))
        #expect(rule.matches(host: "example.com", port: 443))
        #expect(!rule.matches(host: "api.example.com", port: 443))
        #expect(!rule.matches(host: "badexample.com", port: 443))
    }

    @Test func wildcardMatchesSubdomainsNotTheDomain() throws {
        let rule = try #require(HostRule("*.example.com"))
        #expect(rule.matches(host: "api.example.com", port: 443))
        #expect(rule.matches(host: "a.b.example.com", port: 80))
        #expect(!rule.matches(host: "example.com", port: 443))
        #expect(!rule.matches(host: "evilexample.com", port: 443))
    }

    @Test func portIsOptionalButBinding() throws {
        let rule = try #require(HostRule("Example.com.:8443"))
        #expect(rule.description == "example.com:8443")
        #expect(rule.matches(host: "example.com", port: 8443))
        #expect(!rule.matches(host: "example.com", port: 443))
    }

    @Test(arguments: ["", "*.", "exa mple.com", "-bad.com", "example.com:0", "example.com:99999", "*.*.com", "a..b"])
    func rejectsBadRules(text: String) {
        #expect(HostRule(text) == nil)
    }
}

@Suite struct EgressPolicyTests {
    let balanced = EgressPolicy(preset: .balanced)

    @Test func denyByDefault() {
        #expect(!balanced.decide(host: "example.com", port: 443).isAllowed)
        #expect(!EgressPolicy(preset: .locked).decide(host: "pypi.org", port: 443).isAllowed)
    }

    @Test(arguments: [
        "pypi.org", "files.pythonhosted.org", "deb.debian.org", "github.com", "api.anthropic.com", "API.OpenAI.com.",
    ])
    func balancedAllowsRegistriesAndModelAPIs(host: String) {
        #expect(balanced.decide(host: host, port: 443) == .allow)
    }

    @Test func explicitAllowAndDenyBeatsAllow() throws {
        var policy = EgressPolicy(preset: .locked, allowHosts: [try #require(HostRule("*.corp.example"))])
        #expect(policy.decide(host: "git.corp.example", port: 443) == .allow)
        policy.blockHosts = [try #require(HostRule("secret.corp.example"))]
        #expect(!policy.decide(host: "secret.corp.example", port: 443).isAllowed)
        #expect(policy.decide(host: "git.corp.example", port: 443) == .allow)
        var open = EgressPolicy(preset: .open, blockHosts: [try #require(HostRule("pypi.org"))])
        #expect(!open.decide(host: "pypi.org", port: 443).isAllowed)
        open.blockHosts = []
        #expect(open.decide(host: "anything.example", port: 443) == .allow)
    }

    /// Each is an internal destination in some spelling; even the open policy refuses them.
    @Test(arguments: [
        "127.0.0.1", "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "[::1]", "::ffff:127.0.0.1", "10.0.0.1",
        "172.16.5.4", "192.168.1.1", "169.254.169.254", "0xa9fea9fe", "[::ffff:a9fe:a9fe]", "64:ff9b::169.254.169.254",
        "100.100.100.200", "[fd00:ec2::254]", "fe80::1", "0.0.0.0", "localhost", "db.localhost",
        "metadata.google.internal", "2002:a9fe:a9fe::",
    ])
    func internalDestinationsAreAlwaysBlocked(host: String) {
        #expect(!EgressPolicy(preset: .open).decide(host: host, port: 80).isAllowed)
    }

    @Test func resolvedAddressesAreCheckedAgain() throws {
        let loopback = try #require(IPAddress(parsing: "127.0.0.1"))
        let publicAddress = try #require(IPAddress(parsing: "93.184.216.34"))
        // An allowed name that resolves to loopback (DNS rebinding) is still refused.
        #expect(!balanced.decide(address: loopback, port: 443, host: "pypi.org").isAllowed)
        #expect(balanced.decide(address: publicAddress, port: 443, host: "pypi.org") == .allow)
        // A bare public address needs the open policy or --allow-cidr.
        #expect(!balanced.decide(address: publicAddress, port: 443, host: nil).isAllowed)
        #expect(EgressPolicy(preset: .open).decide(address: publicAddress, port: 443, host: nil) == .allow)
    }

    @Test func allowCIDRNamesAnInternalRangeAndBlockCIDRWins() throws {
        let inside = try #require(IPAddress(parsing: "10.1.2.3"))
        var policy = EgressPolicy(preset: .locked, allowRanges: [try #require(AddressRange("10.1.0.0/16"))])
        #expect(policy.decide(address: inside, port: 5432, host: nil) == .allow)
        #expect(policy.decide(host: "10.1.2.3", port: 5432) == .allow)
        #expect(!policy.decide(host: "10.2.0.1", port: 5432).isAllowed)
        policy.blockRanges = [try #require(AddressRange("10.1.2.0/24"))]
        #expect(!policy.decide(address: inside, port: 5432, host: nil).isAllowed)
    }

    @Test func reasonsNameTheRule() {
        #expect(
            balanced.decide(host: "example.com", port: 443)
                == .deny("example.com is not allowed by the balanced policy"))
        #expect(
            EgressPolicy(preset: .open).decide(host: "169.254.169.254", port: 80)
                == .deny("169.254.169.254 is a link-local address (cloud metadata)"))
    }
}

@Suite struct PolicyLayerTests {
    @Test func sandboxLayerSetsThePresetUnderTheOrganisationsCeiling() throws {
        let open = PolicySettings(preset: .open)
        #expect(try EffectivePolicy.combine(organisation: nil, user: nil, sandbox: open).egress.preset == .open)
        let capped = try EffectivePolicy.combine(
            organisation: PolicySettings(preset: .balanced), user: nil, sandbox: open)
        #expect(capped.egress.preset == .balanced)
    }

    @Test func organisationBlocksCannotBeAllowedAway() throws {
        let policy = try EffectivePolicy.combine(
            organisation: PolicySettings(blockHosts: ["*.corp.example"], blockCIDRs: ["10.0.0.0/8"]),
            user: PolicySettings(allowHosts: ["db.corp.example"]),
            sandbox: PolicySettings(allowCIDRs: ["10.1.0.0/16"]))
        #expect(!policy.egress.decide(host: "db.corp.example", port: 443).isAllowed)
        #expect(!policy.egress.decide(address: .v4(0x0A01_0001), port: 443, host: nil).isAllowed)
    }

    @Test func staticHostsParseAndBadEntriesAreNamed() throws {
        let policy = try EffectivePolicy.combine(
            organisation: nil, user: nil,
            sandbox: PolicySettings(addHosts: ["git.internal:10.2.3.4", "v6.internal:[::1]"]))
        #expect(policy.staticHosts["git.internal"] == [.v4(0x0A02_0304)])
        #expect(policy.staticHosts["v6.internal"] == [.v6(high: 0, low: 1)])
        #expect(throws: PolicyError.self) {
            try EffectivePolicy.combine(organisation: nil, user: nil, sandbox: PolicySettings(addHosts: ["nocolon"]))
        }
        #expect(throws: PolicyError.self) {
            try EffectivePolicy.combine(
                organisation: nil, user: nil, sandbox: PolicySettings(blockCIDRs: ["1.2.3.4/40"]))
        }
    }

    @Test func logNamesTheRuleThatAllowed() {
        let policy = EgressPolicy(preset: .balanced, allowHosts: HostRule("api.internal").map { [$0] } ?? [])
        #expect(policy.allowingRule(host: "pypi.org", address: nil, port: 443) == "balanced pypi.org")
        #expect(policy.allowingRule(host: "api.internal", address: nil, port: 443) == "allow-host api.internal")
    }
}
