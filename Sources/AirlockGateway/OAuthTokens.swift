import AirlockMCPAuth
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Each server's OAuth authorization: the access token as its secret `SERVER.oauth_token` (so
/// `--block-secrets` knows it), and the rest (endpoints, client, refresh token, expiry, status)
/// in `secrets/mcp-oauth/SERVER.json`, both 0600. Gives the token to send, renewed first when it
/// is due; processes that share a grant renew it under a lock, once.
public struct OAuthTokens: Sendable {
    public let secrets: MCPSecrets
    public let directory: String

    public init(secrets: MCPSecrets) {
        self.secrets = secrets
        directory = secrets.directory + "-oauth"
    }

    public static func secretName(_ server: String) -> String { server + ".oauth_token" }

    func grantPath(_ server: String) -> String { directory + "/" + server + ".json" }

    /// The servers with a grant (any status), sorted.
    public func servers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }

    public func grant(_ server: String) -> OAuthGrant? {
        guard let text = Files.readRegularFile(grantPath(server), limit: 1 << 20) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(OAuthGrant.self, from: Data(text.utf8))
    }

    /// Stores a grant and, when given, its access token (the token first: a grant on disk
    /// always has its token).
    public func save(_ server: String, grant: OAuthGrant, accessToken: String?) throws {
        try MCPSecrets.validate(name: Self.secretName(server))
        if let accessToken { try secrets.set(Self.secretName(server), value: accessToken) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try Files.makeDirectory(directory, mode: 0o700)
        try Files.writeAtomically(
            grantPath(server), String(decoding: try encoder.encode(grant), as: UTF8.self), mode: 0o600)
    }

    /// The token to send to `server`, renewed first when due (or when `force`: the server
    /// refused it), or why there is none, as the tool error's reason.
    public func current(_ server: String, force: Bool = false, now: @Sendable () -> Date = { Date() }) async -> Result<
        String, OAuthRequired
    > {
        guard let seen = grant(server) else { return .failure(.neverAuthorized) }
        if let refused = Self.refusal(seen) { return .failure(refused) }
        guard let token = try? secrets.value(Self.secretName(server)) else { return .failure(.neverAuthorized) }
        if !force && !seen.needsRenewal(at: now()) { return .success(token) }
        return await renew(server, seen: seen, token: token, now: now)
    }

    static func refusal(_ grant: OAuthGrant) -> OAuthRequired? {
        switch grant.status {
        case .ok: nil
        case .revoked: .revoked
        case .refused: .renewalRefused(grant.statusDetail ?? "refused")
        }
    }

    private func renew(_ server: String, seen: OAuthGrant, token: String, now: @Sendable () -> Date) async -> Result<
        String, OAuthRequired
    > {
        let lock = open(directory + "/." + server + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { if lock >= 0 { close(lock) } }
        if lock >= 0 { flock(lock, LOCK_EX) }
        // Another process may have renewed it meanwhile: a rotated refresh token is used once.
        guard var current = grant(server) else { return .failure(.neverAuthorized) }
        if let refused = Self.refusal(current) { return .failure(refused) }
        if current.obtainedAt != seen.obtainedAt, let renewed = try? secrets.value(Self.secretName(server)) {
            return .success(renewed)
        }
        do {
            let tokens = try await AuthorizationFlow.refresh(current)
            current = current.renewed(with: tokens, at: now())
            try save(server, grant: current, accessToken: tokens.accessToken)
            return .success(tokens.accessToken)
        } catch let error as OAuthError where error.code == .refused {
            current.status = .refused
            current.statusDetail = error.message
            try? save(server, grant: current, accessToken: nil)
            return .failure(.renewalRefused(error.message))
        } catch {
            // The authorization server away: the old token while it lasts, then a passing error.
            if let expiry = current.expiresAt, expiry > now() { return .success(token) }
            return .failure(.renewalFailed("\(error)"))
        }
    }

    /// Forgets the tokens and marks the grant revoked (so the gateway stops sending them at
    /// once), then revokes them at the authorization server when it offers that. Returns
    /// whether the server was told; throws when it refused or could not be reached.
    public func revoke(_ server: String) async throws -> Bool {
        guard var current = grant(server) else {
            throw AirlockError(.notFound, "server \(server) has no OAuth authorization to revoke")
        }
        let refresh = current.refreshToken
        let access = try? secrets.value(Self.secretName(server))
        current.refreshToken = nil
        current.status = .revoked
        current.statusDetail = nil
        try save(server, grant: current, accessToken: nil)
        if access != nil { try secrets.remove(Self.secretName(server)) }
        var told = false
        if let refresh { told = try await AuthorizationFlow.revoke(current, token: refresh, hint: "refresh_token") }
        if let access {
            told = try await AuthorizationFlow.revoke(current, token: access, hint: "access_token") || told
        }
        return told
    }
}
