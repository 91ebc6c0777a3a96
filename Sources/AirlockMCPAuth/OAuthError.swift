/// Why an OAuth step failed, in words a user can act on.
public struct OAuthError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// A metadata document, a token answer or a challenge that breaks the protocol.
        case protocolViolation
        /// The authorization server said no (its `error` code is in the message).
        case refused
        /// Not reachable, or the answer did not come.
        case unreachable
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Text a server sent, fit for a terminal and a tool error: control characters (escape
    /// sequences) shown as `?`, at most 200 characters.
    public static func printable(_ text: String) -> String {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            cleaned.append(scalar.properties.generalCategory == .control ? "?" : scalar)
        }
        let result = String(cleaned)
        return result.count > 200 ? String(result.prefix(200)) + "…" : result
    }
}
