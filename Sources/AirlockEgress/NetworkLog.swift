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

/// Appends JSON lines to the network log: a ``RotatingLog``, so a sandbox that makes requests
/// for weeks keeps a bounded log (the current file and three older ones of 8 MiB each).
public final class NetworkLog: Sendable {
    private let file: RotatingLog

    public init(path: String) throws {
        file = try RotatingLog(path: path)
    }

    public func append(_ entry: NetworkLogEntry) {
        guard let line = try? Self.encoder.encode(entry) else { return }
        file.append(Array(line))
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
