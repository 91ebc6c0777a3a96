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

    /// Whether `server` is a name a grant may have (a catalog name: no path in it).
    public static func isServerName(_ server: String) -> Bool {
        server.wholeMatch(of: /[a-z0-9][a-z0-9._-]*/) != nil && !server.contains("..")
    }

    /// The servers with a grant (any status), sorted.
    public func servers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }

    public func grant(_ server: String) -> OAuthGrant? {
        guard Self.isServerName(server), let text = Files.readRegularFile(grantPath(server), limit: 1 << 20) else {
            return nil
        }
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
        guard seen.refreshToken != nil else {
            // Nothing to renew it with: it serves until it expires.
            return seen.expired(at: now()) ? .failure(.expired) : .success(token)
        }
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

    /// Runs `body` holding the server's lock file, shared by every process that renews,
    /// authorizes or revokes that server's grant. The lock is taken without blocking a thread
    /// (the gateway's tasks share few), polling until it is free.
    func locked<T: Sendable>(_ server: String, _ body: () async throws -> T) async throws -> T {
        try Files.makeDirectory(directory, mode: 0o700)
        let descriptor = open(directory + "/." + server + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AirlockError(.failed, "cannot lock \(server)'s OAuth grant: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let deadline = Date().addingTimeInterval(60)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard Date() < deadline else {
                throw AirlockError(.busy, "\(server)'s OAuth grant stayed locked by another process for 60 s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await body()
    }

    private func renew(_ server: String, seen: OAuthGrant, token: String, now: @Sendable () -> Date) async -> Result<
        String, OAuthRequired
    > {
        do {
            return try await locked(server) { () async -> Result<String, OAuthRequired> in
                // Another process (or task) may have renewed, revoked or lost it meanwhile: a
                // rotated refresh token is used once.
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
                    // The authorization server away: the old token while it lasts, then an
                    // error that passes (the next call tries again).
                    if !current.expired(at: now()) { return .success(token) }
                    return .failure(.renewalFailed(OAuthError.printable("\(error)")))
                }
            }
        } catch {
            return seen.expired(at: now()) ? .failure(.renewalFailed("\(error)")) : .success(token)
        }
    }

    /// Stores a new authorization under the grant's lock (a renewal in flight does not
    /// overwrite it).
    public func saveAuthorized(_ server: String, grant: OAuthGrant, accessToken: String) async throws {
        try await locked(server) { try save(server, grant: grant, accessToken: accessToken) }
    }

    /// What `revoke` did.
    public enum Revocation: Sendable, Equatable {
        /// Forgotten here, and revoked at the authorization server.
        case revoked
        /// Forgotten here; the authorization server offers no revocation.
        case forgotten
        /// It was revoked before.
        case alreadyRevoked
        /// Its grant file could not be read: both files were removed.
        case removedUnreadable
    }

    /// Forgets the tokens and marks the grant revoked (so the gateway stops sending them at
    /// once), then revokes them at the authorization server when it offers that; all under the
    /// grant's lock, so a renewal in flight cannot bring them back. Throws when the server
    /// refused or could not be reached (the tokens are forgotten all the same).
    public func revoke(_ server: String) async throws -> Revocation {
        try await locked(server) {
            guard Files.exists(grantPath(server)) else {
                throw AirlockError(
                    .notFound, "\(server) has no OAuth authorization to revoke (`airlock mcp oauth ls` lists them)")
            }
            guard var current = grant(server) else {
                Files.remove(grantPath(server))
                try? secrets.remove(Self.secretName(server))
                return .removedUnreadable
            }
            if current.status == .revoked { return .alreadyRevoked }
            let refresh = current.refreshToken
            let access = try? secrets.value(Self.secretName(server))
            current.refreshToken = nil
            current.status = .revoked
            current.statusDetail = nil
            try save(server, grant: current, accessToken: nil)
            if access != nil { try secrets.remove(Self.secretName(server)) }
            guard current.revocationEndpoint != nil else { return .forgotten }
            var failure: (any Error)?
            for (token, hint) in [(refresh, "refresh_token"), (access, "access_token")] {
                guard let token else { continue }
                do {
                    try await AuthorizationFlow.revoke(current, token: token, hint: hint)
                } catch {
                    failure = failure ?? error
                }
            }
            if let failure { throw failure }
            return .revoked
        }
    }
}
