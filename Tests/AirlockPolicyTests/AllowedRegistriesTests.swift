import Testing

@testable import AirlockPolicy

@Suite struct AllowedRegistriesTests {
    @Test func registriesAreMatchedAsHostRules() throws {
        let settings = PolicySettings(allowedRegistries: ["docker.io", "*.corp.example", "localhost:5000"])
        try settings.validate()
        #expect(settings.allowsRegistry("docker.io"))
        #expect(settings.allowsRegistry("registry.corp.example"))
        #expect(!settings.allowsRegistry("corp.example"))
        #expect(settings.allowsRegistry("localhost:5000"))
        #expect(!settings.allowsRegistry("localhost:5001"))
        #expect(!settings.allowsRegistry("ghcr.io"))
        #expect(!settings.allowsRegistry("DOCKER.IO.evil.example"))
        #expect(PolicySettings().allowsRegistry("anything.example"))
    }

    @Test func aBadEntryIsAPolicyError() {
        #expect(throws: PolicyError.self) { try PolicySettings(allowedRegistries: ["not a host"]).validate() }
    }
}
