import Foundation

/// Where an MCP server's OAuth metadata is looked for, in the order the MCP authorization spec
/// gives, and the checks a document must pass before its endpoints are used.
public enum MetadataDiscovery {
    /// Protected resource metadata (RFC 9728): the URL the server's challenge named, then the
    /// well-known URL with the server's path inserted, then the one at the root.
    public static func protectedResourceURLs(server: URL, fromChallenge: String?) -> [URL] {
        var urls: [URL] = []
        if let named = fromChallenge.flatMap(URL.init(string:)) { urls.append(named) }
        let path = trimmedPath(server)
        if !path.isEmpty, let inserted = origin(server).map({ $0 + "/.well-known/oauth-protected-resource" + path }) {
            urls.append(contentsOf: URL(string: inserted).map { [$0] } ?? [])
        }
        if let root = origin(server).flatMap({ URL(string: $0 + "/.well-known/oauth-protected-resource") }) {
            urls.append(root)
        }
        return urls.reduce(into: []) { unique, url in if !unique.contains(url) { unique.append(url) } }
    }

    /// Authorization server metadata (RFC 8414 §3.1, then OpenID Connect Discovery): with a path
    /// in the issuer, the path goes after the well-known name, and OIDC's older form last.
    public static func authorizationServerURLs(issuer: URL) -> [URL] {
        guard let origin = origin(issuer) else { return [] }
        let path = trimmedPath(issuer)
        let candidates =
            path.isEmpty
            ? [origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"]
            : [
                origin + "/.well-known/oauth-authorization-server" + path,
                origin + "/.well-known/openid-configuration" + path,
                origin + path + "/.well-known/openid-configuration",
            ]
        return candidates.compactMap(URL.init(string:))
    }

    /// The canonical URI of an MCP server for the `resource` parameter (RFC 8707): scheme and
    /// host in lower case, no query or fragment, no trailing slash unless it is the whole path.
    public static func canonicalResource(_ url: URL) -> String {
        (origin(url) ?? url.absoluteString) + trimmedPath(url)
    }

    /// Whether a metadata document's `resource` may stand for `server`: the same origin, and
    /// its path the server's or a prefix of it.
    public static func resourceMatches(advertised: String, server: URL) -> Bool {
        guard let claimed = URL(string: advertised), origin(claimed) == origin(server) else { return false }
        let claimedPath = trimmedPath(claimed)
        let serverPath = trimmedPath(server)
        return claimedPath.isEmpty || serverPath == claimedPath || serverPath.hasPrefix(claimedPath + "/")
    }

    /// `scheme://host[:port]`, lower-cased, the port only where it is not the scheme's own.
    static func origin(_ url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else { return nil }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : (scheme == "http" ? 80 : nil)
        let port = url.port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? ""
        return scheme + "://" + bracketed + port
    }

    /// The path without a trailing slash ("" for none or "/").
    static func trimmedPath(_ url: URL) -> String {
        var path = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? url.path
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// Whether an endpoint may be used: https, or http on the loopback (a local server, a test).
    public static func isAcceptableEndpoint(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host else {
            return false
        }
        if scheme == "https" { return true }
        return scheme == "http" && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
    }
}

/// An MCP server's protected resource metadata (RFC 9728 §2).
public struct ProtectedResourceMetadata: Codable, Sendable, Equatable {
    public var resource: String
    public var authorizationServers: [String]
    public var scopesSupported: [String]?

    enum CodingKeys: String, CodingKey {
        case resource
        case authorizationServers = "authorization_servers"
        case scopesSupported = "scopes_supported"
    }

    /// The document, if it is for `server` and names an authorization server.
    public func checked(for server: URL) throws(OAuthError) -> ProtectedResourceMetadata {
        guard MetadataDiscovery.resourceMatches(advertised: resource, server: server) else {
            throw OAuthError(
                .protocolViolation, "the resource metadata is for \(resource), not \(server.absoluteString)")
        }
        guard !authorizationServers.isEmpty else {
            throw OAuthError(.protocolViolation, "the resource metadata names no authorization server")
        }
        return self
    }
}

/// An authorization server's metadata (RFC 8414 §2), the fields an MCP client uses.
public struct AuthorizationServerMetadata: Codable, Sendable, Equatable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var registrationEndpoint: String?
    public var revocationEndpoint: String?
    public var scopesSupported: [String]?
    public var codeChallengeMethodsSupported: [String]?
    public var tokenEndpointAuthMethodsSupported: [String]?
    public var authorizationResponseIssParameterSupported: Bool?

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case registrationEndpoint = "registration_endpoint"
        case revocationEndpoint = "revocation_endpoint"
        case scopesSupported = "scopes_supported"
        case codeChallengeMethodsSupported = "code_challenge_methods_supported"
        case tokenEndpointAuthMethodsSupported = "token_endpoint_auth_methods_supported"
        case authorizationResponseIssParameterSupported = "authorization_response_iss_parameter_supported"
    }

    /// The document, if it is the one `issuer` publishes, offers S256 and uses only endpoints
    /// that may carry tokens.
    public func checked(issuer expected: String) throws(OAuthError) -> AuthorizationServerMetadata {
        guard issuer == expected else {
            throw OAuthError(.protocolViolation, "the metadata's issuer is \(issuer), not \(expected)")
        }
        guard codeChallengeMethodsSupported?.contains(PKCE.method) == true else {
            throw OAuthError(
                .protocolViolation,
                "\(issuer) does not offer PKCE with S256, which MCP requires (code_challenge_methods_supported)")
        }
        for endpoint in [authorizationEndpoint, tokenEndpoint]
            + [registrationEndpoint, revocationEndpoint].compactMap({
                $0
            }) where !MetadataDiscovery.isAcceptableEndpoint(endpoint)
        {
            throw OAuthError(.protocolViolation, "\(endpoint) is neither https nor on the loopback")
        }
        return self
    }
}
