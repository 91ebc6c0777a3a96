/// One layer of network policy as a person writes it: the organisation's
/// (`/etc/airlock/policy.yaml`), the user's, or one sandbox's (its `create` flags, changed
/// later by `airlock network policy`).
public struct PolicySettings: Codable, Sendable, Equatable {
    public var preset: EgressPolicy.Preset?
    public var allowHosts: [String]
    public var blockHosts: [String]
    public var allowCIDRs: [String]
    public var blockCIDRs: [String]
    /// Hosts tunnelled without TLS termination even when a secret or rule would intercept them.
    public var bypassHosts: [String]
    /// Static resolution, `NAME:IP`, as for internal hosts without public DNS.
    public var addHosts: [String]
    /// Connection caps and timeouts (``ConnectionSettings``).
    public var connections: ConnectionSettings?
    /// The registries images may be pulled from (`HOST[:PORT]`, `*.DOMAIN`; Docker Hub is
    /// `docker.io`): read from the organisation's file only. Nil: any.
    public var allowedRegistries: [String]?

    public init(
        preset: EgressPolicy.Preset? = nil, allowHosts: [String] = [], blockHosts: [String] = [],
        allowCIDRs: [String] = [], blockCIDRs: [String] = [], bypassHosts: [String] = [], addHosts: [String] = [],
        connections: ConnectionSettings? = nil, allowedRegistries: [String]? = nil
    ) {
        self.allowedRegistries = allowedRegistries
        self.preset = preset
        self.allowHosts = allowHosts
        self.blockHosts = blockHosts
        self.allowCIDRs = allowCIDRs
        self.blockCIDRs = blockCIDRs
        self.bypassHosts = bypassHosts
        self.addHosts = addHosts
        self.connections = connections
    }

    enum CodingKeys: String, CodingKey {
        case preset, allowHosts, blockHosts, allowCIDRs, blockCIDRs, bypassHosts, addHosts, connections
        case allowedRegistries
    }

    /// Any key of a mapping, to find those a policy does not know.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Every field is optional in a file: a layer says only what it changes. A key it does not
    /// know is an error, not ignored: `blockhosts:` for `blockHosts:` would drop the blocks.
    public init(from decoder: any Decoder) throws {
        let known = Set(
            [
                CodingKeys.preset, .allowHosts, .blockHosts, .allowCIDRs, .blockCIDRs, .bypassHosts, .addHosts,
                .connections, .allowedRegistries,
            ]
            .map(\.stringValue))
        for key in try decoder.container(keyedBy: AnyKey.self).allKeys where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: [],
                    debugDescription:
                        "unknown key '\(key.stringValue)' (known: \(known.sorted().joined(separator: ", ")))"))
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        preset = try container.decodeIfPresent(EgressPolicy.Preset.self, forKey: .preset)
        allowHosts = try container.decodeIfPresent([String].self, forKey: .allowHosts) ?? []
        blockHosts = try container.decodeIfPresent([String].self, forKey: .blockHosts) ?? []
        allowCIDRs = try container.decodeIfPresent([String].self, forKey: .allowCIDRs) ?? []
        blockCIDRs = try container.decodeIfPresent([String].self, forKey: .blockCIDRs) ?? []
        bypassHosts = try container.decodeIfPresent([String].self, forKey: .bypassHosts) ?? []
        addHosts = try container.decodeIfPresent([String].self, forKey: .addHosts) ?? []
        connections = try container.decodeIfPresent(ConnectionSettings.self, forKey: .connections)
        allowedRegistries = try container.decodeIfPresent([String].self, forKey: .allowedRegistries)
    }

    /// This layer with `changes` added: their preset if they name one, their rules after these
    /// (without repeats).
    public func adding(_ changes: PolicySettings) -> PolicySettings {
        func merge(_ existing: [String], _ added: [String]) -> [String] {
            existing + added.filter { !existing.contains($0) }
        }
        return PolicySettings(
            preset: changes.preset ?? preset, allowHosts: merge(allowHosts, changes.allowHosts),
            blockHosts: merge(blockHosts, changes.blockHosts), allowCIDRs: merge(allowCIDRs, changes.allowCIDRs),
            blockCIDRs: merge(blockCIDRs, changes.blockCIDRs), bypassHosts: merge(bypassHosts, changes.bypassHosts),
            addHosts: merge(addHosts, changes.addHosts), connections: Self.merge(connections, changes.connections))
    }

    private static func merge(_ existing: ConnectionSettings?, _ changes: ConnectionSettings?) -> ConnectionSettings? {
        guard let changes else { return existing }
        return (existing ?? ConnectionSettings()).adding(changes)
    }

    /// Only what narrows: the blocks. The user's layer of a sandbox whose own layer alone says
    /// what it reaches (an MCP server with `allowHosts`).
    public var restrictions: PolicySettings {
        PolicySettings(blockHosts: blockHosts, blockCIDRs: blockCIDRs, connections: connections)
    }

    /// Checks every entry; the error names the first bad one.
    public func validate() throws(PolicyError) {
        for host in allowHosts + blockHosts + bypassHosts where HostRule(host) == nil {
            throw PolicyError("'\(host)' is not a host rule (HOST, *.DOMAIN, optionally :PORT)")
        }
        for range in allowCIDRs + blockCIDRs where AddressRange(range) == nil {
            throw PolicyError("'\(range)' is not an address range (ADDRESS or ADDRESS/PREFIX)")
        }
        for entry in addHosts { _ = try Self.staticHost(entry) }
        try connections?.validate()
        for registry in allowedRegistries ?? [] where HostRule(registry) == nil {
            throw PolicyError("'\(registry)' in allowedRegistries is not a registry (HOST, *.DOMAIN, optionally :PORT)")
        }
    }

    /// Whether `allowedRegistries` lets images come from `registry` (`HOST[:PORT]`).
    public func allowsRegistry(_ registry: String) -> Bool {
        guard let allowed = allowedRegistries else { return true }
        var host = Substring(registry)
        var port: UInt16 = 443
        if let colon = host.lastIndex(of: ":"), let number = UInt16(host[host.index(after: colon)...]) {
            port = number
            host = host[..<colon]
        }
        let name = HostName.normalize(String(host))
        return allowed.compactMap(HostRule.init).contains { $0.matches(host: name, port: port) }
    }

    /// Parses `NAME:IP` (the IP may be IPv6, bracketed or not).
    public static func staticHost(_ entry: String) throws(PolicyError) -> (name: String, address: IPAddress) {
        guard let colon = entry.firstIndex(of: ":") else {
            throw PolicyError("'\(entry)' is not NAME:IP")
        }
        let name = HostName.normalize(String(entry[..<colon]))
        guard HostName.isValid(name), IPAddress(parsing: name) == nil,
            let address = IPAddress(parsing: String(entry[entry.index(after: colon)...]))
        else { throw PolicyError("'\(entry)' is not NAME:IP") }
        return (name, address)
    }
}

public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// The policy a sandbox runs under, combined from its layers.
public struct EffectivePolicy: Sendable, Equatable {
    public var egress: EgressPolicy
    public var bypassHosts: [HostRule]
    public var staticHosts: [String: [IPAddress]]
    public var connections = ConnectionLimits.defaults

    /// Combines the layers, strongest first. The organisation's blocks can't be allowed away
    /// (deny beats allow), and its preset is a ceiling: `locked` < `balanced` < `open`.
    public static func combine(
        organisation: PolicySettings?, user: PolicySettings?, sandbox: PolicySettings?
    ) throws(PolicyError) -> EffectivePolicy {
        let layers = [organisation, user, sandbox].compactMap { $0 }
        for layer in layers { try layer.validate() }
        var preset = sandbox?.preset ?? user?.preset ?? organisation?.preset ?? .balanced
        if let ceiling = organisation?.preset, preset.openness > ceiling.openness { preset = ceiling }
        var staticHosts: [String: [IPAddress]] = [:]
        // Weaker layers first so the organisation's entries win.
        for layer in layers.reversed() {
            var seen: Set<String> = []
            for entry in layer.addHosts {
                let (name, address) = try PolicySettings.staticHost(entry)
                if seen.insert(name).inserted { staticHosts[name] = [] }
                staticHosts[name, default: []].append(address)
            }
        }
        let egress = EgressPolicy(
            preset: preset,
            allowHosts: layers.flatMap(\.allowHosts).compactMap { HostRule($0) },
            blockHosts: layers.flatMap(\.blockHosts).compactMap { HostRule($0) },
            allowRanges: layers.flatMap(\.allowCIDRs).compactMap { AddressRange($0) },
            blockRanges: layers.flatMap(\.blockCIDRs).compactMap { AddressRange($0) })
        return EffectivePolicy(
            egress: egress, bypassHosts: layers.flatMap(\.bypassHosts).compactMap { HostRule($0) },
            staticHosts: staticHosts,
            connections: ConnectionLimits.combine(
                organisation: organisation?.connections, user: user?.connections, sandbox: sandbox?.connections))
    }
}

extension EgressPolicy.Preset {
    var openness: Int {
        switch self {
        case .locked: 0
        case .balanced: 1
        case .open: 2
        }
    }
}
