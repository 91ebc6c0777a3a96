/// The `Bearer` challenge of a `WWW-Authenticate` header (RFC 6750 §3, RFC 9728 §5.1): where the
/// server's protected resource metadata is, the scope it wants, and why it refused.
///
/// ```swift
/// BearerChallenge.parse(#"Bearer error="invalid_token", resource_metadata="https://h/.well-known/oauth-protected-resource""#)
/// ```
public struct BearerChallenge: Sendable, Equatable {
    public var resourceMetadata: String?
    public var scope: String?
    public var error: String?
    public var errorDescription: String?

    public init(resourceMetadata: String? = nil, scope: String? = nil, error: String? = nil) {
        self.resourceMetadata = resourceMetadata
        self.scope = scope
        self.error = error
    }

    /// The Bearer challenge among the header's challenges (nil if there is none).
    public static func parse(_ header: String) -> BearerChallenge? {
        var scanner = Scanner(Array(header.unicodeScalars))
        var found: BearerChallenge?
        var inBearer = false
        while !scanner.atEnd {
            scanner.skip { $0 == " " || $0 == "\t" || $0 == "," }
            let token = scanner.token()
            guard !token.isEmpty else {
                scanner.advance()
                continue
            }
            scanner.skip { $0 == " " || $0 == "\t" }
            if scanner.peek == "=" {
                scanner.advance()
                scanner.skip { $0 == " " || $0 == "\t" }
                let value = scanner.peek == "\"" ? scanner.quoted() : scanner.token()
                guard inBearer else { continue }
                switch token.lowercased() {
                case "resource_metadata": found?.resourceMetadata = value
                case "scope": found?.scope = value
                case "error": found?.error = value
                case "error_description": found?.errorDescription = value
                default: break
                }
            } else {
                // A scheme name starts a challenge (a token68 after it is ignored).
                inBearer = token.lowercased() == "bearer"
                if inBearer && found == nil { found = BearerChallenge() }
            }
        }
        return found
    }

    struct Scanner {
        let scalars: [Unicode.Scalar]
        var index = 0

        init(_ scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        var atEnd: Bool { index >= scalars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : scalars[index] }

        mutating func advance() { index += 1 }

        mutating func skip(_ predicate: (Unicode.Scalar) -> Bool) {
            while let next = peek, predicate(next) { index += 1 }
        }

        /// An RFC 9110 token (with `/` and `=`-free token68 characters).
        mutating func token() -> String {
            var out = String.UnicodeScalarView()
            while let next = peek, !" \t,=\"".unicodeScalars.contains(next) {
                out.append(next)
                index += 1
            }
            return String(out)
        }

        mutating func quoted() -> String {
            index += 1
            var out = String.UnicodeScalarView()
            while let next = peek, next != "\"" {
                if next == "\\" { index += 1 }
                if let escaped = peek { out.append(escaped) }
                index += 1
            }
            index += 1
            return String(out)
        }
    }
}
