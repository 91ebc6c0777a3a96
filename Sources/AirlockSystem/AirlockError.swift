/// An error a user can act on: what failed, in one line, and what lay under it.
///
/// Every Airlock module reports failures with this type, so the CLI can print exactly one line
/// on stderr and pick an exit status from ``Code``.
public struct AirlockError: Error, CustomStringConvertible, Sendable {
    /// The broad kind of failure; it decides the exit status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public let exitStatus: Int32

        /// A bad option, argument or value: EX_USAGE, as the argument parser's own errors.
        public static let invalidArgument = Code(name: "invalid argument", exitStatus: 64)
        public static let notFound = Code(name: "not found", exitStatus: 3)
        public static let conflict = Code(name: "conflict", exitStatus: 4)
        public static let unsupported = Code(name: "unsupported", exitStatus: 5)
        public static let busy = Code(name: "busy", exitStatus: 6)
        public static let failed = Code(name: "failed", exitStatus: 1)
        /// A configuration file (a network policy) that cannot be used: EX_CONFIG.
        public static let invalidConfiguration = Code(name: "invalid configuration", exitStatus: 78)

        public var description: String { name }

        /// The code with this name (as another process reported it), or ``failed``.
        public static func named(_ name: String) -> Code {
            [invalidArgument, notFound, conflict, unsupported, busy, failed, invalidConfiguration]
                .first { $0.name == name } ?? failed
        }
    }

    public let code: Code
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        guard let cause else { return message }
        return "\(message): \(cause)"
    }
}

/// A failed system call, with the errno text.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno)))"
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
