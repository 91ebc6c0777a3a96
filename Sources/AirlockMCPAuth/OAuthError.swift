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
}
