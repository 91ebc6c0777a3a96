import Crypto
import Foundation

/// Proof Key for Code Exchange (RFC 7636) with S256, which the MCP authorization spec requires,
/// and the `state` that ties a callback to the request that asked for it.
public struct PKCE: Sendable, Equatable {
    /// 43 characters of unpadded base64url: 32 random bytes.
    public let verifier: String

    public static let method = "S256"

    public init(verifier: String) {
        self.verifier = verifier
    }

    /// A fresh verifier from the system's random source.
    public static func random() -> PKCE {
        PKCE(verifier: randomToken())
    }

    /// `BASE64URL(SHA256(verifier))`, unpadded: what the authorization request carries.
    public var challenge: String {
        Self.base64url(Array(SHA256.hash(data: Data(verifier.utf8))))
    }

    /// 32 random bytes as unpadded base64url (a verifier, or a `state`).
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64url((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
