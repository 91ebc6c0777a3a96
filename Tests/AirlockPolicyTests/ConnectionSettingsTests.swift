import Testing

@testable import AirlockPolicy

@Suite struct ConnectionSettingsTests {
    @Test(arguments: [
        ("30", 30.0), ("30s", 30), ("250ms", 0.25), ("5m", 300), ("1h", 3600), ("1.5m", 90),
    ])
    func durationsParse(text: String, seconds: Double) throws {
        #expect(try #require(Seconds(parsing: text)).value == seconds)
    }

    @Test(arguments: ["", "s", "5 minutes", "-1s", "nan", "inf", "1d"])
    func badDurationsAreRefused(text: String) {
        #expect(Seconds(parsing: text) == nil)
    }

    @Test func durationsPrintInTheirLargestWholeUnit() {
        #expect(Seconds(3600).description == "1h")
        #expect(Seconds(90).description == "90s")
        #expect(Seconds(120).description == "2m")
        #expect(Seconds(0.25).description == "250ms")
    }

    @Test func assignmentsSetOneFieldEach() throws {
        var settings = ConnectionSettings()
        try settings.set("max=100")
        try settings.set("idleTimeout=2m")
        #expect(settings == ConnectionSettings(max: 100, idleTimeout: Seconds(120)))
        #expect(throws: PolicyError.self) { try settings.set("idle=2m") }
        #expect(throws: PolicyError.self) { try settings.set("max=lots") }
        #expect(throws: PolicyError.self) { try settings.set("headerTimeout=soon") }
        #expect(throws: PolicyError.self) { try ConnectionSettings(max: 0).validate() }
        #expect(throws: PolicyError.self) { try ConnectionSettings(bodyTimeout: Seconds(0)).validate() }
    }

    @Test func theMostSpecificLayerWinsAndTheOrganisationCapsMax() throws {
        let effective = try EffectivePolicy.combine(
            organisation: PolicySettings(connections: ConnectionSettings(max: 1000, idleTimeout: Seconds(60))),
            user: PolicySettings(connections: ConnectionSettings(max: 5000, headerTimeout: Seconds(10))),
            sandbox: PolicySettings(connections: ConnectionSettings(idleTimeout: Seconds(30))))
        #expect(effective.connections.max == 1000)
        #expect(effective.connections.headerTimeout == Seconds(10))
        #expect(effective.connections.idleTimeout == Seconds(30))
        #expect(effective.connections.tunnelIdleTimeout == ConnectionLimits.defaults.tunnelIdleTimeout)
        let plain = try EffectivePolicy.combine(organisation: nil, user: nil, sandbox: nil)
        #expect(plain.connections == .defaults)
    }

    @Test(arguments: [Double.nan, .infinity, 1e30, 0.0004, 31 * 86400.0])
    func timeoutsOutsideAMillisecondToThirtyDaysAreRefused(value: Double) {
        #expect(throws: PolicyError.self) { try ConnectionSettings(idleTimeout: Seconds(value)).validate() }
        // Printing one never fails either.
        #expect(!Seconds(value).description.isEmpty)
    }

    @Test func aBadValueInAFileFailsThePolicy() {
        let layer = PolicySettings(connections: ConnectionSettings(max: -3))
        #expect(throws: PolicyError.self) { try layer.validate() }
    }
}
