/// Airlock's egress policy: deny by default, host and address rules, deny beats allow.
///
/// Checked twice per connection: ``decide(host:port:)`` on the name before anything is
/// resolved (a denied name is never looked up), and ``decide(address:port:host:)`` on each
/// address the name resolved to, which is where private, loopback and metadata ranges are
/// stopped whatever name led there.
public struct EgressPolicy: Sendable, Equatable {
    public enum Preset: String, Sendable, CaseIterable, Codable {
        /// Package registries, source hosts and the agents' model APIs.
        case balanced
        /// Every public address.
        case open
        /// Only the hosts added explicitly (the agent's model API).
        case locked
    }

    public var preset: Preset
    public var allowHosts: [HostRule]
    public var blockHosts: [HostRule]
    public var allowRanges: [AddressRange]
    public var blockRanges: [AddressRange]

    public init(
        preset: Preset, allowHosts: [HostRule] = [], blockHosts: [HostRule] = [], allowRanges: [AddressRange] = [],
        blockRanges: [AddressRange] = []
    ) {
        self.preset = preset
        self.allowHosts = allowHosts
        self.blockHosts = blockHosts
        self.allowRanges = allowRanges
        self.blockRanges = blockRanges
    }

    /// The outcome of a check, with the reason a blocked request reports.
    public enum Decision: Equatable, Sendable {
        case allow
        case deny(String)

        public var isAllowed: Bool { self == .allow }
    }

    /// Every host rule the policy allows: the preset's, then the explicit ones.
    public var allowedHostRules: [HostRule] {
        (preset == .balanced ? Self.balancedHosts : []) + allowHosts
    }

    /// Checks a destination by name, before any resolution. Host names that are IP literals
    /// in any spelling are checked as addresses.
    public func decide(host rawHost: String, port: UInt16) -> Decision {
        let host = HostName.normalize(rawHost)
        if let address = IPAddress(parsing: host) {
            return decide(address: address, port: port, host: nil)
        }
        guard HostName.isValid(host) else { return .deny("'\(rawHost)' is not a valid host name") }
        if let rule = blockHosts.first(where: { $0.matches(host: host, port: port) }) {
            return .deny("\(host) matches block rule \(rule)")
        }
        if host == "localhost" || host.hasSuffix(".localhost") {
            return .deny("\(host) is a loopback name")
        }
        if Self.metadataHosts.contains(host) {
            return .deny("\(host) is a cloud metadata service")
        }
        if preset == .open || allowedHostRules.contains(where: { $0.matches(host: host, port: port) }) {
            return .allow
        }
        return .deny("\(host) is not allowed by the \(preset.rawValue) policy")
    }

    /// Checks one resolved address (or an IP literal the client gave). `host` is the name it
    /// came from, when there was one and that name was already allowed.
    public func decide(address: IPAddress, port: UInt16, host: String?) -> Decision {
        if let range = blockRanges.first(where: { $0.contains(address) }) {
            return .deny("\(address) is in blocked range \(range)")
        }
        let explicitlyAllowed = allowRanges.contains { $0.contains(address) }
        if !explicitlyAllowed, let reason = BlockedRanges.reason(for: address) {
            return .deny("\(address) is a \(reason)")
        }
        // An address reached through an allowed name, or named by --allow-cidr, or any public
        // address under the open policy.
        if host != nil || explicitlyAllowed || preset == .open { return .allow }
        return .deny("\(address) is not allowed by the \(preset.rawValue) policy (name it with --allow-cidr)")
    }

    /// What let an allowed destination through, for the network log.
    public func allowingRule(host: String?, address: IPAddress?, port: UInt16) -> String {
        var reasons: [String] = []
        if let host = host.map(HostName.normalize),
            let rule = allowedHostRules.first(where: { $0.matches(host: host, port: port) })
        {
            reasons.append((allowHosts.contains(rule) ? "allow-host " : "balanced ") + "\(rule)")
        }
        if let address, let range = allowRanges.first(where: { $0.contains(address) }) {
            reasons.append("allow-cidr \(range)")
        }
        return reasons.isEmpty ? preset.rawValue : reasons.joined(separator: ", ")
    }

    /// Names of metadata services that must never be reached, whatever they resolve to.
    public static let metadataHosts: Set<String> = [
        "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    ]

    /// The `balanced` preset: what installing and building code needs, and the agents' APIs.
    public static let balancedHosts: [HostRule] = [
        // Debian and Ubuntu
        "deb.debian.org", "security.debian.org", "*.debian.org", "archive.ubuntu.com", "security.ubuntu.com",
        // Python
        "pypi.org", "files.pythonhosted.org",
        // JavaScript
        "registry.npmjs.org", "registry.yarnpkg.com", "*.npmjs.org", "nodejs.org",
        // Rust
        "crates.io", "static.crates.io", "index.crates.io", "static.rust-lang.org", "sh.rustup.rs",
        // Go
        "proxy.golang.org", "sum.golang.org", "go.dev", "dl.google.com",
        // Java
        "repo.maven.apache.org", "repo1.maven.org", "plugins.gradle.org", "services.gradle.org",
        // Ruby
        "rubygems.org", "index.rubygems.org",
        // GitHub and its content hosts
        "github.com", "api.github.com", "codeload.github.com", "objects.githubusercontent.com",
        "raw.githubusercontent.com", "release-assets.githubusercontent.com", "ghcr.io",
        "pkg-containers.githubusercontent.com",
        // Container registries: Docker Hub (its API, tokens and blobs) and Quay, for `--docker`
        "registry-1.docker.io", "auth.docker.io", "index.docker.io", "production.cloudflare.docker.com", "quay.io",
        "*.quay.io",
        // Model APIs of the agents
        "api.anthropic.com", "statsig.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com",
        "api.groq.com", "api.mistral.ai", "api.x.ai", "openrouter.ai",
    ].compactMap { HostRule($0) }
}
