import Testing

@testable import AirlockRuntime

@Suite struct HostDoctorProxyTests {
    @Test func anUnusableProxySettingIsAWarningAndAUsableOneIsReported() throws {
        #expect(HostDoctor().upstreamProxy(environment: [:]) == nil)
        let usable = try #require(HostDoctor().upstreamProxy(environment: ["HTTPS_PROXY": "http://u:p@proxy:8080"]))
        #expect(usable.level == .ok)
        #expect(usable.detail == "through proxy:8080 with a login")
        let broken = try #require(HostDoctor().upstreamProxy(environment: ["HTTPS_PROXY": "socks5://u:secret@proxy"]))
        #expect(broken.level == .warning)
        #expect(broken.detail.contains("HTTPS_PROXY=socks5://u:***@proxy"))
        #expect(!broken.detail.contains("secret"))
    }
}
