import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One egress decision, as a line of the sandbox's network log.
public struct NetworkLogEntry: Codable, Sendable, Equatable {
    public var time: Date
    public var sandbox: String
    /// `CONNECT`, an HTTP method, or `DNS` / `TLS` for what had no HTTP request.
    public var method: String
    public var scheme: String
    public var host: String
    public var port: UInt16
    public var path: String?
    /// The address connected to, once resolved and checked.
    public var address: String?
    /// `allow` or `deny`.
    public var decision: String
    /// What allowed it (a preset, a host rule, a range), when allowed.
    public var rule: String?
    public var reason: String?
    /// Bytes from the sandbox out, and back in.
    public var bytesOut: Int
    public var bytesIn: Int
    public var durationMs: Double
    /// `proxy` (HTTP_PROXY), `capture` (a program that ignored it) or `dns`.
    public var via: String
    /// Services whose key the proxy put into this request (names only, never values).
    public var injected: [String]? = nil
}

/// Appends JSON lines to the network log. Each line is one `write` on an `O_APPEND`
/// descriptor, so lines from several threads never interleave.
public final class NetworkLog: Sendable {
    private let fd: Int32

    public init(path: String) throws {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(path)", errno: errno) }
    }

    deinit { close(fd) }

    public func append(_ entry: NetworkLogEntry) {
        guard var line = try? Self.encoder.encode(entry) else { return }
        line.append(UInt8(ascii: "\n"))
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestampStyle.format(date))
        }
        return encoder
    }()

    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return try timestampStyle.parse(text)
        }
        return decoder
    }()
}
