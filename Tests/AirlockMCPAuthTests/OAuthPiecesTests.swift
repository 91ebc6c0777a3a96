import Foundation
import Testing

@testable import AirlockMCPAuth

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct PKCETests {
    @Test func theRFC7636VectorHolds() {
        #expect(
            PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").challenge
                == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func freshVerifiersAre43UnreservedCharactersAndDiffer() {
        let one = PKCE.random()
        let two = PKCE.random()
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        #expect(one.verifier.count == 43 && one.verifier.allSatisfy(unreserved.contains))
        #expect(one != two && one.challenge.count == 43)
    }
}

@Suite struct BearerChallengeTests {
    @Test func theParametersOfTheBearerChallengeAreRead() {
        let challenge = BearerChallenge.parse(
            #"Basic realm="x", Bearer error="invalid_token", error_description="expired \"now\"", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="mcp read""#
        )
        #expect(challenge?.error == "invalid_token")
        #expect(challenge?.errorDescription == "expired \"now\"")
        #expect(challenge?.resourceMetadata == "https://h/.well-known/oauth-protected-resource/mcp")
        #expect(challenge?.scope == "mcp read")
        #expect(BearerChallenge.parse(#"Basic realm="x""#) == nil)
        #expect(BearerChallenge.parse("bearer") == BearerChallenge())
    }
}

@Suite struct MetadataDiscoveryTests {
    func url(_ text: String) -> URL {
        URL(string: text) ?? URL(fileURLWithPath: "/")
    }

    @Test func protectedResourceMetadataIsLookedForWhereTheSpecSays() {
        #expect(
            MetadataDiscovery.protectedResourceURLs(server: url("https://H:443/public/mcp/"), fromChallenge: nil).map(
                \.absoluteString)
                == [
                    "https://h/.well-known/oauth-protected-resource/public/mcp",
                    "https://h/.well-known/oauth-protected-resource",
                ])
        #expect(
            MetadataDiscovery.protectedResourceURLs(
                server: url("http://127.0.0.1:8000/"), fromChallenge: "http://127.0.0.1:8000/prm"
            ).map(\.absoluteString)
                == ["http://127.0.0.1:8000/prm", "http://127.0.0.1:8000/.well-known/oauth-protected-resource"])
    }

    @Test func authorizationServerMetadataIsLookedForWithAndWithoutAPath() {
        #expect(
            MetadataDiscovery.authorizationServerURLs(issuer: url("https://a.example/t1")).map(\.absoluteString) == [
                "https://a.example/.well-known/oauth-authorization-server/t1",
                "https://a.example/.well-known/openid-configuration/t1",
                "https://a.example/t1/.well-known/openid-configuration",
            ])
        #expect(
            MetadataDiscovery.authorizationServerURLs(issuer: url("http://127.0.0.1:18841/")).map(\.absoluteString) == [
                "http://127.0.0.1:18841/.well-known/oauth-authorization-server",
                "http://127.0.0.1:18841/.well-known/openid-configuration",
            ])
    }

    @Test func theResourceIsCanonicalAndMustBeTheServersOwn() {
        #expect(
            MetadataDiscovery.canonicalResource(url("HTTPS://Mcp.Example.com:443/mcp/?x#y"))
                == "https://mcp.example.com/mcp")
        let server = url("https://mcp.example.com/v1/mcp")
        #expect(MetadataDiscovery.resourceMatches(advertised: "https://mcp.example.com/v1", server: server))
        #expect(MetadataDiscovery.resourceMatches(advertised: "https://mcp.example.com", server: server))
        #expect(!MetadataDiscovery.resourceMatches(advertised: "https://mcp.example.com/v", server: server))
        #expect(!MetadataDiscovery.resourceMatches(advertised: "https://evil.example/v1/mcp", server: server))
        #expect(!MetadataDiscovery.resourceMatches(advertised: "http://mcp.example.com/v1/mcp", server: server))
    }

    @Test func authorizationServerMetadataIsCheckedBeforeUse() throws {
        let good = AuthorizationServerMetadata(
            issuer: "http://127.0.0.1:18841/", authorizationEndpoint: "http://127.0.0.1:18841/authorize",
            tokenEndpoint: "http://127.0.0.1:18841/token", registrationEndpoint: "http://127.0.0.1:18841/register",
            revocationEndpoint: nil, scopesSupported: ["mcp"], codeChallengeMethodsSupported: ["S256"],
            tokenEndpointAuthMethodsSupported: nil, authorizationResponseIssParameterSupported: nil)
        #expect(try good.checked(issuer: "http://127.0.0.1:18841/") == good)
        #expect(throws: OAuthError.self) { try good.checked(issuer: "http://127.0.0.1:18841") }
        var plain = good
        plain.codeChallengeMethodsSupported = ["plain"]
        #expect(throws: OAuthError.self) { try plain.checked(issuer: good.issuer) }
        var remoteHTTP = good
        remoteHTTP.tokenEndpoint = "http://as.example/token"
        #expect(throws: OAuthError.self) { try remoteHTTP.checked(issuer: good.issuer) }
        let decoded = try JSONDecoder().decode(
            AuthorizationServerMetadata.self,
            from: Data(
                #"{"issuer":"https://a","authorization_endpoint":"https://a/au","token_endpoint":"https://a/t","code_challenge_methods_supported":["S256"],"extra":1}"#
                    .utf8))
        #expect(decoded.tokenEndpoint == "https://a/t" && decoded.registrationEndpoint == nil)
    }
}

@Suite struct GrantTests {
    @Test func theAuthorizationURLCarriesPKCEStateAndResourceFormEncoded() {
        let request = AuthorizationRequest(
            endpoint: "https://as.example/authorize?tenant=1", clientID: "c 1",
            redirectURI: "http://127.0.0.1:5555/callback", scope: "mcp read", state: "s",
            pkce: PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), resource: "https://mcp.example/mcp")
        #expect(
            request.url
                == "https://as.example/authorize?tenant=1&response_type=code&client_id=c+1&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&scope=mcp+read&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&resource=https%3A%2F%2Fmcp.example%2Fmcp"
        )
    }

    @Test func renewalComesBeforeExpiryAndARotatedRefreshTokenReplacesTheOld() throws {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let answer = try JSONDecoder().decode(
            TokenResponse.self,
            from: Data(#"{"access_token":"a1","token_type":"bearer","expires_in":8,"refresh_token":"r1"}"#.utf8)
        ).checked()
        var grant = OAuthGrant(
            issuer: "i", authorizationEndpoint: "a", tokenEndpoint: "t", revocationEndpoint: nil, resource: nil,
            clientID: "c", clientSecret: nil, authMethod: "none", redirectURI: "r", refreshToken: nil, scope: nil,
            obtainedAt: start, expiresAt: nil, status: .ok, statusDetail: nil
        ).renewed(with: answer, at: start)
        #expect(grant.refreshToken == "r1" && grant.renewalTime == start.addingTimeInterval(6))
        #expect(
            !grant.needsRenewal(at: start.addingTimeInterval(5.9))
                && grant.needsRenewal(at: start.addingTimeInterval(6)))
        let hour = TokenResponse(accessToken: "a2", tokenType: "Bearer", expiresIn: 3600, refreshToken: nil, scope: nil)
        grant = grant.renewed(with: hour, at: start)
        #expect(grant.refreshToken == "r1" && grant.renewalTime == start.addingTimeInterval(3540))
        #expect(throws: OAuthError.self) {
            try TokenResponse(accessToken: "x", tokenType: "mac", expiresIn: nil, refreshToken: nil, scope: nil)
                .checked()
        }
    }

    @Test func theToolErrorNamesTheCommandThatFixesIt() {
        #expect(
            OAuthRequired.revoked.message(server: "github")
                == "server github needs OAuth authorization (its OAuth token was revoked): run `airlock mcp oauth authorize github`, then call the tool again"
        )
        #expect(
            OAuthRequired.renewalRefused("invalid_grant").message(server: "s").contains(
                "could not be renewed: invalid_grant"))
    }
}

@Suite struct LoopbackReceiverTests {
    /// One GET to the receiver over a real socket; the status line it answers.
    func get(_ port: Int, _ target: String) -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return "no connection" }
        let request = Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(descriptor, &buffer, buffer.count)
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).components(separatedBy: "\r\n")[0]
    }

    @Test func onlyTheCallbackWithTheStateEndsTheWait() async throws {
        let receiver = try LoopbackReceiver()
        #expect(receiver.redirectURI == "http://127.0.0.1:\(receiver.port)/callback")
        let port = receiver.port
        let statuses = Task.detached {
            try await Task.sleep(for: .milliseconds(100))
            return [
                get(port, "/callback?code=x&state=wrong"), get(port, "/other?state=s1"),
                get(port, "/callback?code=the-code&state=s1&iss=https%3A%2F%2Fas"),
            ]
        }
        let callback = try await receiver.wait(state: "s1", timeout: .seconds(10))
        #expect(callback == LoopbackReceiver.Callback(code: "the-code", issuer: "https://as"))
        #expect(
            try await statuses.value == ["HTTP/1.1 400 Bad Request", "HTTP/1.1 400 Bad Request", "HTTP/1.1 200 OK"])
    }

    @Test func aRefusalEndsTheWaitWithTheServersWords() async throws {
        let receiver = try LoopbackReceiver()
        let port = receiver.port
        Task.detached {
            try await Task.sleep(for: .milliseconds(100))
            _ = get(port, "/callback?error=access_denied&error_description=no&state=s2")
        }
        await #expect(throws: OAuthError(.refused, "the authorization server refused: access_denied: no")) {
            try await receiver.wait(state: "s2", timeout: .seconds(10))
        }
    }
}
