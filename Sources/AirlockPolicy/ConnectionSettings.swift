/// How much a sandbox may hold open through its way out, and for how long, as one layer of a
/// policy file writes it (`connections:`): each field optional, the most specific layer that
/// sets a field wins, and the organisation's `max` is a ceiling.
///
///     connections:
///       max: 2048              # open connections from the sandbox (proxy, capture, DNS over TCP)
///       headerTimeout: 30s     # from a connection's first byte (or its accept) to a whole request head
///       bodyTimeout: 60s       # longest pause while a request body is being sent
///       idleTimeout: 5m        # nothing either way on a connection that speaks HTTP to the proxy
///       tunnelIdleTimeout: 1h  # nothing either way on a tunnel, or while a request awaits its answer
public struct ConnectionSettings: Codable, Sendable, Equatable {
    public var max: Int?
    public var headerTimeout: Seconds?
    public var bodyTimeout: Seconds?
    public var idleTimeout: Seconds?
    public var tunnelIdleTimeout: Seconds?

    public init(
        max: Int? = nil, headerTimeout: Seconds? = nil, bodyTimeout: Seconds? = nil, idleTimeout: Seconds? = nil,
        tunnelIdleTimeout: Seconds? = nil
    ) {
        self.max = max
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.tunnelIdleTimeout = tunnelIdleTimeout
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case max, headerTimeout, bodyTimeout, idleTimeout, tunnelIdleTimeout
    }

    public static let keys = CodingKeys.allCases.map(\.stringValue)

    public init(from decoder: any Decoder) throws {
        let known = Set(Self.keys)
        for key in try decoder.container(keyedBy: PolicySettings.AnyKey.self).allKeys
        where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "unknown key 'connections.\(key.stringValue)' (known: \(Self.keys.joined(separator: ", ")))"))
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if container.contains(.max) {
            guard let count = try? container.decode(Int.self, forKey: .max) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .max, in: container, debugDescription: "connections.max must be a whole number")
            }
            max = count
        }
        headerTimeout = try container.decodeIfPresent(Seconds.self, forKey: .headerTimeout)
        bodyTimeout = try container.decodeIfPresent(Seconds.self, forKey: .bodyTimeout)
        idleTimeout = try container.decodeIfPresent(Seconds.self, forKey: .idleTimeout)
        tunnelIdleTimeout = try container.decodeIfPresent(Seconds.self, forKey: .tunnelIdleTimeout)
    }

    /// Sets one field from `KEY=VALUE`, as `--connection-limit` gives it.
    public mutating func set(_ assignment: String) throws(PolicyError) {
        guard let equals = assignment.firstIndex(of: "="),
            let key = CodingKeys(rawValue: String(assignment[..<equals]))
        else {
            throw PolicyError(
                "'\(assignment)' is not KEY=VALUE with KEY one of \(Self.keys.joined(separator: ", "))")
        }
        let value = String(assignment[assignment.index(after: equals)...])
        if key == .max {
            guard let count = Int(value) else {
                throw PolicyError("connections.max must be a whole number, not '\(value)'")
            }
            max = count
            return
        }
        guard let seconds = Seconds(parsing: value) else {
            throw PolicyError("connections.\(key.rawValue) must be a duration such as 30s, 5m or 1h, not '\(value)'")
        }
        switch key {
        case .headerTimeout: headerTimeout = seconds
        case .bodyTimeout: bodyTimeout = seconds
        case .idleTimeout: idleTimeout = seconds
        case .tunnelIdleTimeout: tunnelIdleTimeout = seconds
        case .max: break
        }
    }

    /// This layer with the fields `changes` sets replaced.
    public func adding(_ changes: ConnectionSettings) -> ConnectionSettings {
        ConnectionSettings(
            max: changes.max ?? max, headerTimeout: changes.headerTimeout ?? headerTimeout,
            bodyTimeout: changes.bodyTimeout ?? bodyTimeout, idleTimeout: changes.idleTimeout ?? idleTimeout,
            tunnelIdleTimeout: changes.tunnelIdleTimeout ?? tunnelIdleTimeout)
    }

    public var isEmpty: Bool { self == ConnectionSettings() }

    public func validate() throws(PolicyError) {
        if let max, max < 1 { throw PolicyError("connections.max must be at least 1") }
        for case (let key, let value?) in [
            ("headerTimeout", headerTimeout), ("bodyTimeout", bodyTimeout), ("idleTimeout", idleTimeout),
            ("tunnelIdleTimeout", tunnelIdleTimeout),
        ] where !(Seconds.shortest.value...Seconds.longest.value).contains(value.value) {
            throw PolicyError(
                "connections.\(key) must be from \(Seconds.shortest) to \(Seconds.longest), not \(value.value)s")
        }
    }
}

/// A duration in a policy file: a number of seconds, or a number with `ms`, `s`, `m` or `h`.
public struct Seconds: Codable, Sendable, Equatable, CustomStringConvertible {
    public var value: Double

    /// The range a timeout may take: a millisecond to thirty days.
    public static let shortest = Seconds(0.001)
    public static let longest = Seconds(30 * 86400)

    public init(_ value: Double) {
        self.value = value
    }

    public init?(parsing text: String) {
        let units: [(suffix: String, scale: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let trimmed = String(text.filter { $0 != " " })
        let unit = units.first { trimmed.hasSuffix($0.suffix) } ?? ("", 1)
        guard let number = Double(trimmed.dropLast(unit.suffix.count)), number.isFinite, number >= 0 else {
            return nil
        }
        value = number * unit.scale
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            value = number
        } else if let parsed = Seconds(parsing: try container.decode(String.self)) {
            value = parsed.value
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a duration (a number of seconds, or 30s, 5m, 1h)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        guard value.isFinite, value < 1e12 else { return "\(value)s" }
        for (suffix, scale) in [("h", 3600.0), ("m", 60.0), ("s", 1.0)] where value >= scale {
            let count = value / scale
            if count == count.rounded() { return "\(Int(count))\(suffix)" }
        }
        return value < 1 ? "\(Int((value * 1000).rounded()))ms" : "\(value)s"
    }
}

/// The connection limits a sandbox runs under: its layers combined, with the defaults for what
/// none sets.
public struct ConnectionLimits: Sendable, Equatable, Codable {
    public var max: Int
    public var headerTimeout: Seconds
    public var bodyTimeout: Seconds
    public var idleTimeout: Seconds
    public var tunnelIdleTimeout: Seconds

    public static let defaults = ConnectionLimits(
        max: 2048, headerTimeout: Seconds(30), bodyTimeout: Seconds(60), idleTimeout: Seconds(300),
        tunnelIdleTimeout: Seconds(3600))

    public init(
        max: Int, headerTimeout: Seconds, bodyTimeout: Seconds, idleTimeout: Seconds, tunnelIdleTimeout: Seconds
    ) {
        self.max = max
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.tunnelIdleTimeout = tunnelIdleTimeout
    }

    /// Strongest layer first, as ``EffectivePolicy/combine`` takes them.
    static func combine(organisation: ConnectionSettings?, user: ConnectionSettings?, sandbox: ConnectionSettings?)
        -> ConnectionLimits
    {
        let merged = [organisation, user, sandbox].compactMap { $0 }.reduce(ConnectionSettings()) { $0.adding($1) }
        var limits = ConnectionLimits.defaults
        limits.max = merged.max ?? limits.max
        if let ceiling = organisation?.max { limits.max = min(limits.max, ceiling) }
        limits.headerTimeout = merged.headerTimeout ?? limits.headerTimeout
        limits.bodyTimeout = merged.bodyTimeout ?? limits.bodyTimeout
        limits.idleTimeout = merged.idleTimeout ?? limits.idleTimeout
        limits.tunnelIdleTimeout = merged.tunnelIdleTimeout ?? limits.tunnelIdleTimeout
        return limits
    }
}
