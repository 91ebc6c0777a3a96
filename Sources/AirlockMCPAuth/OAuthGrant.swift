import Foundation

/// A token endpoint's successful answer (OAuth 2.1 §3.2.3).
public struct TokenResponse: Decodable, Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String
    public var expiresIn: Int?
    public var refreshToken: String?
    public var scope: String?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
        case scope
    }

    /// The answer, if it is a bearer token an MCP client may send.
    public func checked() throws(OAuthError) -> TokenResponse {
        guard tokenType.lowercased() == "bearer" else {
            throw OAuthError(.protocolViolation, "the token is of type '\(tokenType)', not Bearer")
        }
        guard !accessToken.isEmpty else { throw OAuthError(.protocolViolation, "the answer holds no access token") }
        return self
    }
}

/// What Airlock keeps of one server's authorization besides the access token (which is the
/// server's secret `SERVER.oauth_token`): where to renew it and with what, and how it stands.
public struct OAuthGrant: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case ok
        /// The authorization server refused a renewal (`statusDetail` holds its `error`).
        case refused
        case revoked
    }

    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var revocationEndpoint: String?
    public var resource: String?
    /// The MCP server's URL the grant was made for (remote servers), besides `resource`.
    public var serverURL: String?
    public var clientID: String
    public var clientSecret: String?
    /// `none`, `client_secret_post` or `client_secret_basic`, as registered.
    public var authMethod: String
    public var redirectURI: String
    public var refreshToken: String?
    public var scope: String?
    public var obtainedAt: Date
    public var expiresAt: Date?
    public var status: Status
    public var statusDetail: String?

    public init(
        issuer: String, authorizationEndpoint: String, tokenEndpoint: String, revocationEndpoint: String?,
        resource: String?, serverURL: String? = nil, clientID: String, clientSecret: String?, authMethod: String,
        redirectURI: String, refreshToken: String?, scope: String?, obtainedAt: Date, expiresAt: Date?, status: Status,
        statusDetail: String?
    ) {
        self.issuer = issuer
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.revocationEndpoint = revocationEndpoint
        self.resource = resource
        self.serverURL = serverURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.authMethod = authMethod
        self.redirectURI = redirectURI
        self.refreshToken = refreshToken
        self.scope = scope
        self.obtainedAt = obtainedAt
        self.expiresAt = expiresAt
        self.status = status
        self.statusDetail = statusDetail
    }

    /// The grant after a token answer received at `now`: a refresh token that comes replaces
    /// the old one; none keeps it (OAuth 2.1 §4.3.3).
    public func renewed(with answer: TokenResponse, at now: Date) -> OAuthGrant {
        var next = self
        next.obtainedAt = now
        next.expiresAt = answer.expiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
        next.refreshToken = answer.refreshToken ?? refreshToken
        next.scope = answer.scope ?? scope
        next.status = .ok
        next.statusDetail = nil
        return next
    }

    /// When to renew: before expiry by a quarter of the token's life, at most a minute (an
    /// hour's token at 59 min, an 8 s one at 6 s); nil when the token states no expiry.
    public var renewalTime: Date? {
        guard let expiresAt else { return nil }
        let lifetime = expiresAt.timeIntervalSince(obtainedAt)
        return expiresAt.addingTimeInterval(-min(60, max(0, lifetime) / 4))
    }

    /// Only a grant that can be renewed is renewed early; one without a refresh token keeps
    /// its token until it expires.
    public func needsRenewal(at now: Date) -> Bool {
        guard refreshToken != nil else { return false }
        return renewalTime.map { now >= $0 } ?? false
    }

    public func expired(at now: Date) -> Bool {
        expiresAt.map { now >= $0 } ?? false
    }
}

/// The tool error an agent gets when a server's OAuth token cannot be used, naming the command
/// that fixes it.
public enum OAuthRequired: Error, Sendable, Equatable {
    case neverAuthorized
    case revoked
    /// The authorization server refused to renew the expired token (its `error`).
    case renewalRefused(String)
    /// The server refused the token (its HTTP status).
    case rejected(Int)
    /// The server wants scopes the token does not carry.
    case moreScopes(String)
    /// Renewing failed for a reason that may pass (the authorization server unreachable).
    case renewalFailed(String)
    /// The token expired and the grant has no refresh token.
    case expired
    /// The grant was made for another URL than the one the catalog names now.
    case otherResource(String)

    public func message(server: String) -> String {
        let fix = "run `airlock mcp oauth authorize \(server)`, then call the tool again"
        switch self {
        case .neverAuthorized: return "server \(server) needs OAuth authorization (it was never authorized): \(fix)"
        case .revoked: return "server \(server) needs OAuth authorization (its OAuth token was revoked): \(fix)"
        case .renewalRefused(let error):
            return
                "server \(server) needs OAuth authorization (its OAuth token expired and could not be renewed: \(error)): \(fix)"
        case .rejected(let status):
            return
                "server \(server) needs OAuth authorization (the server refused its OAuth token (HTTP \(status))): \(fix)"
        case .expired:
            return
                "server \(server) needs OAuth authorization (its OAuth token expired and it has no refresh token): \(fix)"
        case .otherResource(let resource):
            return
                "server \(server) needs OAuth authorization (its OAuth token was issued for \(OAuthError.printable(resource)), not for the URL its catalog entry names now): \(fix)"
        case .moreScopes(let scopes):
            // Only scope names safe to show inside a command the agent may run.
            let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/- ")
            guard !scopes.isEmpty, scopes.allSatisfy(safe.contains) else {
                return
                    "server \(server) needs more OAuth scopes than it was given: run `airlock mcp oauth authorize \(server) --scopes \"...\"` with the scopes it asks for, then call the tool again"
            }
            return
                "server \(server) needs more OAuth scopes (\(scopes)): run `airlock mcp oauth authorize \(server) --scopes \"\(scopes)\"`, then call the tool again"
        case .renewalFailed(let detail):
            return
                "server \(server): renewing its expired OAuth token failed (\(detail)); it is tried again on the next call"
        }
    }
}
