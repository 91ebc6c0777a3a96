import Foundation

/// The authorization request the browser opens (OAuth 2.1 §4.1.1 with PKCE and RFC 8707's
/// `resource`), and the form encoding the token endpoint takes.
public struct AuthorizationRequest: Sendable, Equatable {
    public var endpoint: String
    public var clientID: String
    public var redirectURI: String
    public var scope: String?
    public var state: String
    public var pkce: PKCE
    public var resource: String?

    public init(
        endpoint: String, clientID: String, redirectURI: String, scope: String?, state: String, pkce: PKCE,
        resource: String?
    ) {
        self.endpoint = endpoint
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.scope = scope
        self.state = state
        self.pkce = pkce
        self.resource = resource
    }

    /// The URL to open: the endpoint with the request's parameters added to any it has.
    public var url: String {
        var parameters: [(String, String)] = [
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI),
        ]
        if let scope, !scope.isEmpty { parameters.append(("scope", scope)) }
        parameters += [("state", state), ("code_challenge", pkce.challenge), ("code_challenge_method", PKCE.method)]
        if let resource { parameters.append(("resource", resource)) }
        return endpoint + (endpoint.contains("?") ? "&" : "?") + Self.formEncoded(parameters)
    }

    /// `application/x-www-form-urlencoded`: unreserved characters as they are, space as `+`.
    public static func formEncoded(_ parameters: [(String, String)]) -> String {
        parameters.map { encode($0.0) + "=" + encode($0.1) }.joined(separator: "&")
    }

    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): out += "+"
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
