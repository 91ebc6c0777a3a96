import AirlockPolicy
import PropertyBased
import Testing

@testable import AirlockWire

@Suite struct AuthorityTests {
    @Test(arguments: [
        ("example.com:443", UInt16?.none, "example.com", UInt16(443)),
        ("Example.COM.:8080", nil, "example.com", 8080),
        ("example.com", 80, "example.com", 80),
        ("[::1]:443", nil, "::1", 443),
        ("[::1]", 80, "::1", 80),
        ("[2001:DB8::1]:65535", nil, "2001:db8::1", 65535),
        ("[::ffff:127.0.0.1]:1", nil, "::ffff:127.0.0.1", 1),
        ("127.1:22", nil, "127.1", 22),
        ("0x7f000001:80", nil, "0x7f000001", 80),
        ("under_score.example:443", nil, "under_score.example", 443),
    ])
    func parses(text: String, defaultPort: UInt16?, host: String, port: UInt16) {
        #expect(Authority.parse(text, defaultPort: defaultPort) == Authority(host: host, port: port))
    }

    @Test(arguments: [
        "example.com",  // CONNECT needs a port
        "user@example.com:443", "good.com@evil.com:443", "good.com:443@evil.com:443",
        ":443", "[]:443", ".:443", "example.com:", "example.com:0", "example.com:65536", "example.com:+80",
        "example.com:-1", "example.com:0x50", "example.com:080808", "example.com:80:80",
        "::1:443", "[::1", "[::1]443", "[::1]:", "[fe80::1%25eth0]:443", "[v1.fe]:443", "[1.2.3.4]:443",
        "[example.com]:443",
        "exa mple.com:443", "%65xample.com:443", "example.com\\@evil.com:443", "-bad.example:443",
        "+127.0.0.1:80", "example..com:443", "é.example:443",
    ])
    func rejects(text: String) {
        #expect(Authority.parse(text, defaultPort: nil) == nil)
    }

    @Test func describesWithBracketsForIPv6() {
        #expect(Authority(host: "example.com", port: 443).description == "example.com:443")
        #expect(Authority(host: "::1", port: 8080).description == "[::1]:8080")
    }

    @Test func descriptionParsesBackToTheSameAuthority() async {
        let authorities = Generator<Authority, Shrink.None<Authority>>(run: { rng in
            let port = UInt16.random(in: 1...65535, using: &rng)
            switch Int.random(in: 0...2, using: &rng) {
            case 0:
                return Authority(host: HostName.normalize(WireGen.randomHostName(&rng)), port: port)
            case 1:
                let v4 = IPAddress.v4(UInt32.random(in: 0...UInt32.max, using: &rng))
                return Authority(host: v4.description, port: port)
            default:
                let v6 = IPAddress.v6(
                    high: UInt64.random(in: 0...UInt64.max, using: &rng),
                    low: UInt64.random(in: 0...UInt64.max, using: &rng))
                return Authority(host: v6.description, port: port)
            }
        })
        await propertyCheck(count: 300, input: authorities) { authority in
            #expect(Authority.parse(authority.description, defaultPort: nil) == authority)
        }
    }
}

@Suite struct RequestTargetTests {
    @Test func connectTakesOnlyAuthorityForm() {
        #expect(
            RequestTarget.parse(method: "CONNECT", target: "api.example.com:443")
                == .authority(Authority(host: "api.example.com", port: 443)))
        #expect(RequestTarget.parse(method: "CONNECT", target: "api.example.com") == nil)
        #expect(RequestTarget.parse(method: "CONNECT", target: "/") == nil)
        #expect(RequestTarget.parse(method: "CONNECT", target: "https://api.example.com:443/") == nil)
        #expect(RequestTarget.parse(method: "CONNECT", target: "*") == nil)
    }

    @Test(arguments: [
        ("http://example.com/a?b=c", "http", "example.com", UInt16(80), "/a?b=c"),
        ("HTTP://Example.com", "http", "example.com", 80, "/"),
        ("https://example.com?q", "https", "example.com", 443, "/?q"),
        ("http://example.com:8080/", "http", "example.com", 8080, "/"),
        ("ws://example.com/socket", "ws", "example.com", 80, "/socket"),
        ("wss://[::1]/socket", "wss", "::1", 443, "/socket"),
        ("http://127.1/", "http", "127.1", 80, "/"),
    ])
    func absoluteForm(target: String, scheme: String, host: String, port: UInt16, path: String) {
        #expect(
            RequestTarget.parse(method: "GET", target: target)
                == .absolute(scheme: scheme, authority: Authority(host: host, port: port), path: path))
    }

    @Test(arguments: [
        "ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "http://good.com@evil.com/",
        "http://example.com/#frag", "/a#frag", "http:///path", "http://example.com:0/", "example.com:443",
        "example.com", "http:/example.com/", "*", "http://example.com/\u{301}#", "http://a.com /", "",
    ])
    func rejectsOtherTargets(target: String) {
        #expect(RequestTarget.parse(method: "GET", target: target) == nil)
    }

    @Test func originAndAsterisk() {
        #expect(RequestTarget.parse(method: "GET", target: "/index.html?x") == .origin("/index.html?x"))
        #expect(RequestTarget.parse(method: "OPTIONS", target: "*") == .asterisk)
        #expect(RequestTarget.parse(method: "OPTIONS", target: "/") == .origin("/"))
    }

    @Test(arguments: [
        ("example.com", "example.com", UInt16(80), UInt16(80), true),
        ("Example.COM.", "example.com", 80, 80, true),
        ("example.com:80", "example.com", 80, 80, true),
        ("example.com", "example.com", 443, 443, true),
        ("example.com:8080", "example.com", 80, 80, false),
        ("example.com", "example.com", 8080, 80, false),
        ("evil.com", "example.com", 80, 80, false),
        ("example.com.evil.com", "example.com", 80, 80, false),
        ("127.1", "127.0.0.1", 80, 80, true),
        ("0x7f000001:80", "127.0.0.1", 80, 80, true),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1", 80, 80, true),
        ("[::1]:443", "::1", 443, 443, true),
        ("127.0.0.1", "localhost", 80, 80, false),
        ("localhost", "127.0.0.1", 80, 80, false),
        ("", "example.com", 80, 80, false),
        ("user@example.com", "example.com", 80, 80, false),
    ])
    func hostMatches(header: String, host: String, port: UInt16, defaultPort: UInt16, matches: Bool) {
        #expect(
            RequestTarget.hostMatches(header, Authority(host: host, port: port), defaultPort: defaultPort) == matches)
    }

    /// The check a proxy makes on an absolute-form request: the Host field must name the
    /// URL's authority, or the server might route by one while the policy checked the other.
    @Test func detectsHostMismatchOnAParsedRequest() throws {
        let bytes = Array("GET http://allowed.example/ HTTP/1.1\r\nHost: internal.corp\r\n\r\n".utf8)
        guard case .complete(let head, _) = HTTPRequestHead.parse(bytes),
            case .absolute(let scheme, let authority, _) = RequestTarget.parse(method: head.method, target: head.target)
        else {
            Issue.record("request did not parse")
            return
        }
        #expect(scheme == "http")
        let host = try #require(head.first("Host"))
        #expect(!RequestTarget.hostMatches(host, authority, defaultPort: 80))
        #expect(RequestTarget.hostMatches("ALLOWED.example.", authority, defaultPort: 80))
    }
}
