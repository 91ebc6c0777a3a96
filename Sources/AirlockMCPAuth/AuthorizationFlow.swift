import Foundation

/// MCP's authorization flow, client side, step by step (docs/mcp-oauth.md §1): find the
/// server's authorization server, register with it where it allows, send the user's browser
/// with PKCE to a loopback redirect, and trade the code for tokens; then renew and revoke them.
///
/// ```swift
/// let (grant, tokens) = try await AuthorizationFlow.authorize(
///     server: URL(string: "https://mcp.example.com/mcp")!, scopes: nil, clientName: "Airlock (github)",
///     present: { url in print(url) }, timeout: .seconds(300))
/// ```
public enum AuthorizationFlow {
    /// What discovery found: the authorization server, and what to ask it for.
    public struct Discovery: Sendable, Equatable {
        public var metadata: AuthorizationServerMetadata
        /// The `resource` parameter (RFC 8707), when there is one to send.
        public var resource: String?
        /// The scopes to ask for when the user names none.
        public var scopes: [String]
    }

    public static func authorize(
        server: URL, scopes requested: [String]?, clientName: String, port: Int = 0,
        present: @Sendable (String) -> Void, timeout: Duration
    ) async throws(OAuthError) -> (grant: OAuthGrant, tokens: TokenResponse) {
        try await authorize(
            try await discover(server: server), scopes: requested, clientName: clientName, port: port,
            present: present, timeout: timeout)
    }

    /// Steps 5–9 with what discovery found (or what a catalog entry names).
    public static func authorize(
        _ discovery: Discovery, scopes requested: [String]?, clientName: String, port: Int = 0,
        present: @Sendable (String) -> Void, timeout: Duration
    ) async throws(OAuthError) -> (grant: OAuthGrant, tokens: TokenResponse) {
        let scopes = requested ?? discovery.scopes
        let scope = scopes.isEmpty ? nil : scopes.joined(separator: " ")
        // The listener first: its port is part of the registered redirect URI.
        let receiver = try LoopbackReceiver(port: port)
        let client = try await register(
            discovery.metadata, redirectURI: receiver.redirectURI, scope: scope, clientName: clientName)
        let pkce = PKCE.random()
        let state = PKCE.randomToken()
        let request = AuthorizationRequest(
            endpoint: discovery.metadata.authorizationEndpoint, clientID: client.id, redirectURI: receiver.redirectURI,
            scope: scope, state: state, pkce: pkce, resource: discovery.resource)
        present(request.url)
        let callback = try await receiver.wait(state: state, timeout: timeout)
        if let issuer = callback.issuer, issuer != discovery.metadata.issuer {
            throw OAuthError(
                .protocolViolation, "the redirect names issuer \(issuer), not \(discovery.metadata.issuer)")
        }
        if callback.issuer == nil && discovery.metadata.authorizationResponseIssParameterSupported == true {
            throw OAuthError(
                .protocolViolation, "the redirect names no issuer, which \(discovery.metadata.issuer) promised")
        }
        var grant = OAuthGrant(
            issuer: discovery.metadata.issuer, authorizationEndpoint: discovery.metadata.authorizationEndpoint,
            tokenEndpoint: discovery.metadata.tokenEndpoint, revocationEndpoint: discovery.metadata.revocationEndpoint,
            resource: discovery.resource, clientID: client.id, clientSecret: client.secret, authMethod: client.method,
            redirectURI: receiver.redirectURI, refreshToken: nil, scope: scope, obtainedAt: Date(), expiresAt: nil,
            status: .ok, statusDetail: nil)
        let tokens = try await token(
            grant,
            [
                ("grant_type", "authorization_code"), ("code", callback.code), ("redirect_uri", receiver.redirectURI),
                ("code_verifier", pkce.verifier),
            ])
        grant = grant.renewed(with: tokens, at: Date())
        return (grant, tokens)
    }

    /// Step 4 alone, for a server whose catalog entry names its authorization server (a
    /// sandboxed server calling an API, which is no MCP server and publishes no metadata).
    public static func discover(issuer text: String, resource: String?, scopes: [String]) async throws(OAuthError)
        -> Discovery
    {
        guard let issuer = URL(string: text), MetadataDiscovery.isAcceptableEndpoint(text) else {
            throw OAuthError(.protocolViolation, "the issuer \(text) is neither https nor on the loopback")
        }
        return Discovery(
            metadata: try await serverMetadata(issuer: issuer, named: text), resource: resource, scopes: scopes)
    }

    /// Steps 1–4: the server's challenge, its protected resource metadata, and its
    /// authorization server's metadata.
    public static func discover(server: URL) async throws(OAuthError) -> Discovery {
        let probe = Data(
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"airlock-oauth","version":"1"}}}"#
                .utf8)
        let answer = try await OAuthHTTP.postJSON(
            server.absoluteString, probe, headers: [("MCP-Protocol-Version", "2025-06-18")])
        guard answer.status == 401 || answer.status == 403 else {
            throw OAuthError(
                .protocolViolation,
                "\(server.absoluteString) answered HTTP \(answer.status) without a token: it asks for no OAuth authorization"
            )
        }
        let challenge = answer.headers["www-authenticate"].flatMap(BearerChallenge.parse)
        var resourceMetadata: ProtectedResourceMetadata?
        var tried: [String] = []
        for url in MetadataDiscovery.protectedResourceURLs(server: server, fromChallenge: challenge?.resourceMetadata) {
            tried.append(url.absoluteString)
            guard let found = try? await OAuthHTTP.get(url.absoluteString), found.status == 200,
                let document = try? found.decoded(ProtectedResourceMetadata.self, what: url.absoluteString)
            else { continue }
            resourceMetadata = try document.checked(for: server)
            break
        }
        guard let resourceMetadata, let issuerText = resourceMetadata.authorizationServers.first,
            let issuer = URL(string: issuerText)
        else {
            throw OAuthError(
                .protocolViolation,
                "no protected resource metadata for \(server.absoluteString) (tried \(tried.joined(separator: ", ")))")
        }
        let metadata = try await serverMetadata(issuer: issuer, named: issuerText)
        let scopes =
            challenge?.scope.map { $0.split(separator: " ").map(String.init) }
            ?? resourceMetadata.scopesSupported ?? []
        return Discovery(metadata: metadata, resource: resourceMetadata.resource, scopes: scopes)
    }

    /// The first authorization server metadata document found for `issuer` (named `text` as
    /// its documents must name it), checked; or why each place had none.
    static func serverMetadata(issuer: URL, named text: String) async throws(OAuthError) -> AuthorizationServerMetadata
    {
        var reasons: [String] = []
        for url in MetadataDiscovery.authorizationServerURLs(issuer: issuer) {
            if let metadata = await metadata(at: url, reasons: &reasons) { return try metadata.checked(issuer: text) }
        }
        throw OAuthError(
            .protocolViolation, "no authorization server metadata for \(text) (\(reasons.joined(separator: "; ")))")
    }

    /// An authorization server's metadata document at `url`, or nil with the reason noted.
    static func metadata(at url: URL, reasons: inout [String]) async -> AuthorizationServerMetadata? {
        do {
            let found = try await OAuthHTTP.get(url.absoluteString)
            guard found.status == 200 else {
                reasons.append("\(url.absoluteString): HTTP \(found.status)")
                return nil
            }
            return try found.decoded(AuthorizationServerMetadata.self, what: url.absoluteString)
        } catch {
            reasons.append(error.message)
            return nil
        }
    }

    /// Step 5: dynamic client registration (RFC 7591) as a public client.
    public static func register(
        _ metadata: AuthorizationServerMetadata, redirectURI: String, scope: String?, clientName: String
    ) async throws(OAuthError) -> (id: String, secret: String?, method: String) {
        guard let endpoint = metadata.registrationEndpoint else {
            throw OAuthError(
                .refused, "\(metadata.issuer) offers no client registration; a client id registered there is needed")
        }
        var request: [String: Any] = [
            "client_name": clientName, "redirect_uris": [redirectURI],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        ]
        if let scope { request["scope"] = scope }
        let body = (try? JSONSerialization.data(withJSONObject: request)) ?? Data()
        let answer = try await OAuthHTTP.postJSON(endpoint, body)
        guard answer.status == 201 || answer.status == 200 else {
            throw OAuthError(
                .refused, "\(endpoint) refused the registration: HTTP \(answer.status) \(answer.oauthError ?? "")")
        }
        struct Registered: Decodable {
            var clientID: String
            var clientSecret: String?
            var authMethod: String?

            enum CodingKeys: String, CodingKey {
                case clientID = "client_id"
                case clientSecret = "client_secret"
                case authMethod = "token_endpoint_auth_method"
            }
        }
        let registered = try answer.decoded(Registered.self, what: endpoint)
        let method = registered.authMethod ?? (registered.clientSecret == nil ? "none" : "client_secret_basic")
        return (registered.clientID, registered.clientSecret, method)
    }

    /// Renews the access token with the grant's refresh token (OAuth 2.1 §4.3).
    public static func refresh(_ grant: OAuthGrant) async throws(OAuthError) -> TokenResponse {
        guard let refreshToken = grant.refreshToken else {
            throw OAuthError(.refused, "no refresh token")
        }
        return try await token(grant, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
    }

    /// Revokes a token (RFC 7009); false when the server offers no revocation endpoint.
    @discardableResult
    public static func revoke(_ grant: OAuthGrant, token: String, hint: String) async throws(OAuthError) -> Bool {
        guard let endpoint = grant.revocationEndpoint else { return false }
        let (parameters, headers) = clientAuthentication(grant)
        let answer = try await OAuthHTTP.postForm(
            endpoint, [("token", token), ("token_type_hint", hint)] + parameters, headers: headers)
        guard answer.status == 200 else {
            throw OAuthError(
                .refused, "\(endpoint) refused the revocation: HTTP \(answer.status) \(answer.oauthError ?? "")")
        }
        return true
    }

    static func token(_ grant: OAuthGrant, _ parameters: [(String, String)]) async throws(OAuthError) -> TokenResponse {
        let (client, headers) = clientAuthentication(grant)
        var all = parameters + client
        if let resource = grant.resource { all.append(("resource", resource)) }
        let answer = try await OAuthHTTP.postForm(grant.tokenEndpoint, all, headers: headers)
        guard answer.status == 200 else {
            // Only the authorization server's own no (RFC 6749 §5.2) ends a grant; anything else
            // (a 503, a proxy's page) may pass, and the old token is kept while it lasts.
            if (400...401).contains(answer.status), let code = answer.oauthErrorCode {
                throw OAuthError(.refused, code)
            }
            throw OAuthError(.unreachable, "\(grant.tokenEndpoint) answered HTTP \(answer.status)")
        }
        return try answer.decoded(TokenResponse.self, what: grant.tokenEndpoint).checked()
    }

    /// The client's credentials as it registered them: the id alone for a public client, the
    /// secret in the form or as HTTP Basic (with the id in the form too, which some servers need).
    static func clientAuthentication(_ grant: OAuthGrant) -> (
        parameters: [(String, String)], headers: [(String, String)]
    ) {
        var parameters = [("client_id", grant.clientID)]
        var headers: [(String, String)] = []
        if let secret = grant.clientSecret {
            if grant.authMethod == "client_secret_post" {
                parameters.append(("client_secret", secret))
            } else {
                let pair = AuthorizationRequest.encode(grant.clientID) + ":" + AuthorizationRequest.encode(secret)
                headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
            }
        }
        return (parameters, headers)
    }
}
