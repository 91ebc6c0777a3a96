/// Why a client's settings could not be read or changed, in words a user can act on.
public struct WiringError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable {
        /// The file is not what its client reads (bad JSON or TOML, a server map that is not a map).
        case malformed
        /// The client has no such file or scope, or cannot take that kind of entry.
        case unsupported
        /// Reading or writing the file failed.
        case io
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
