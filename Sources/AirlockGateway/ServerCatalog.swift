import AirlockImages
import AirlockMCP
import AirlockPolicy
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation
import Yams

/// One MCP server a catalog offers: what it is, how it runs and what it may reach.
///
/// The field names are those of docker/mcp-gateway's catalogs where they mean the same
/// (`title`, `description`, `type`, `command`, `env`, `secrets`, `config`, `allowHosts`,
/// `disableNetwork`, `longLived`, `prefix`, `tools`, `remote`, `image`, `user`), so Docker's
/// entries run unchanged: an `image` runs as `docker run IMAGE COMMAND...` would run it (its
/// Entrypoint, then `command` or its Cmd; its User, WorkingDir and Env), pulled on first use.
/// An Airlock `template` (an image built from a recipe) can take its place.
///
/// ```yaml
/// registry:
///   github:
///     title: GitHub
///     description: Issues, pull requests and code search
///     template: mcp-github             # an image template that installs the server
///     command: [github-mcp-server, stdio]
///     secrets: [{name: github.token, env: GITHUB_PERSONAL_ACCESS_TOKEN}]
///     # or, the token never inside: its proxy puts it into the header for allowHosts
///     # secrets: [{name: github.token, env: GITHUB_PERSONAL_ACCESS_TOKEN, inject: {header: Authorization}}]
///     allowHosts: [api.github.com]     # and nothing else; or disableNetwork: true
///     allowCIDRs: [10.0.0.5/32]        # private addresses it may dial (an internal service)
///     workspace: ro                    # mount the workspace (ro or rw); none by default
///     config:
///       - name: github
///         type: object
///         properties: {owner: {type: string}}
///     env: [{name: GITHUB_OWNER, value: "{{github.owner}}"}]
/// ```
public struct CatalogServer: Codable, Sendable, Equatable {
    public var name: String
    public var title: String?
    public var description: String?
    /// `server` (runs in a sandbox), `remote` (an HTTP endpoint) or `airlock` (one of
    /// Airlock's own servers, which sandbox what they run themselves).
    public var type: String
    public var template: String?
    /// A container image (docker/mcp-gateway's catalogs), often pinned by digest.
    public var image: String?
    /// In place of the image's `User`, as `docker run -u`.
    public var user: String?
    public var command: [String]
    public var env: [EnvEntry]
    public var secrets: [SecretEntry]
    /// JSON Schemas of the settings `mcp-config-set` takes (docker's catalogs: a list of objects).
    public var config: [JSONValue]
    /// Exactly the hosts the server may reach: the user's own policy does not widen them.
    public var allowHosts: [String]
    /// Airlock's: private or loopback ranges the server may dial, for an internal service
    /// (the names it uses are still only `allowHosts`, or the user's policy without them).
    public var allowCIDRs: [String]
    public var disableNetwork: Bool
    public var longLived: Bool
    public var prefix: String?
    /// Tools the catalog lists without starting the server (`mcp-find` searches them too).
    public var tools: [ToolEntry]
    /// `ro` or `rw`: the workspace mounted at /workspace; absent: no host files at all.
    public var workspace: String?
    public var remote: Remote?
    public var memory: String?
    public var cpus: Double?
    public var pids: Int64?
    /// `isolation: gvisor` runs the server's sandbox on gVisor whatever the gateway's default.
    public var isolation: String?
    /// OAuth for the server (Docker's block, with Airlock's `issuer`): a remote server finds its
    /// authorization server itself; a sandboxed one names it, and its proxy injects the token.
    public var oauth: OAuth?

    public struct OAuth: Codable, Sendable, Equatable {
        public struct Provider: Codable, Sendable, Equatable {
            public var provider: String
            /// Docker's name for the secret the token fills (Airlock keeps it as `SERVER.oauth_token`).
            public var secret: String?
            /// The variable the server reads the token from (it holds the proxy's placeholder).
            public var env: String
        }

        public var providers: [Provider]
        public var scopes: [String]?
        /// The authorization server (its RFC 8414 or OIDC metadata is looked up from it).
        public var issuer: String?
        /// The header the proxy puts the token into (default `Authorization`).
        public var header: String?
        /// The `resource` parameter to send (RFC 8707), if the authorization server wants one.
        public var resource: String?
    }

    /// The secret an OAuth-authorized sandboxed server's proxy injects: its token.
    public var oauthSecret: SecretEntry? {
        guard type == "server", let oauth, let provider = oauth.providers.first else { return nil }
        return SecretEntry(
            name: name + ".oauth_token", env: provider.env,
            inject: Injection(header: oauth.header ?? "Authorization", hosts: nil))
    }

    /// The secrets the server runs with: its own, and its OAuth token in place of a secret for
    /// the same variable.
    public var runSecrets: [SecretEntry] {
        guard let oauthSecret else { return secrets }
        return secrets.filter { $0.env != oauthSecret.env } + [oauthSecret]
    }

    public struct EnvEntry: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public struct SecretEntry: Codable, Sendable, Equatable {
        /// `SERVER.KEY`, as `airlock mcp secret set` stores it.
        public var name: String
        public var env: String
        /// Airlock's: the value never enters the sandbox. `env` holds a placeholder, which the
        /// server's proxy replaces with the value in this header of requests to these hosts.
        public var inject: Injection?

        public init(name: String, env: String, inject: Injection? = nil) {
            self.name = name
            self.env = env
            self.inject = inject
        }
    }

    public struct Injection: Codable, Sendable, Equatable {
        /// The header the server sends the placeholder in (`Authorization`, `x-api-key`, ...).
        public var header: String
        /// Default: the server's `allowHosts`.
        public var hosts: [String]?
    }

    /// The hosts whose requests get `secret` injected; empty when it goes in the environment.
    public func injectionHosts(_ secret: SecretEntry) -> [String] {
        secret.inject.map { $0.hosts ?? allowHosts } ?? []
    }

    public struct ToolEntry: Codable, Sendable, Equatable {
        public var name: String
        public var description: String?
    }

    /// A server reached over MCP's streamable HTTP. Header values may name the server's own
    /// secrets as `{{secret:SERVER.KEY}}`.
    public struct Remote: Codable, Sendable, Equatable {
        public var url: String
        public var transportType: String?
        public var headers: [String: String]?

        enum CodingKeys: String, CodingKey {
            case url, headers
            case transportType = "transport_type"
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, title, description, type, template, image, user, command, env, secrets, config, allowHosts
        case allowCIDRs
        case disableNetwork, longLived, prefix, tools, workspace, remote, memory, cpus, pids, isolation, oauth
    }

    public init(
        name: String, title: String? = nil, description: String? = nil, type: String = "server",
        template: String? = nil, command: [String] = [], env: [EnvEntry] = [], secrets: [SecretEntry] = [],
        config: [JSONValue] = [], allowHosts: [String] = [], disableNetwork: Bool = false, longLived: Bool = false,
        prefix: String? = nil, tools: [ToolEntry] = [], workspace: String? = nil
    ) {
        self.name = name
        self.title = title
        self.description = description
        self.type = type
        self.template = template
        self.command = command
        self.env = env
        self.secrets = secrets
        self.config = config
        self.allowHosts = allowHosts
        self.allowCIDRs = []
        self.disableNetwork = disableNetwork
        self.longLived = longLived
        self.prefix = prefix
        self.tools = tools
        self.workspace = workspace
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        title = try container.decodeIfPresent(String.self, forKey: .title)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        type = try container.decodeIfPresent(String.self, forKey: .type) ?? "server"
        template = try container.decodeIfPresent(String.self, forKey: .template)
        image = try container.decodeIfPresent(String.self, forKey: .image)
        user = try container.decodeIfPresent(String.self, forKey: .user)
        command = try container.decodeIfPresent([String].self, forKey: .command) ?? []
        env = try container.decodeIfPresent([EnvEntry].self, forKey: .env) ?? []
        secrets = try container.decodeIfPresent([SecretEntry].self, forKey: .secrets) ?? []
        config = try container.decodeIfPresent([JSONValue].self, forKey: .config) ?? []
        allowHosts = try container.decodeIfPresent([String].self, forKey: .allowHosts) ?? []
        allowCIDRs = try container.decodeIfPresent([String].self, forKey: .allowCIDRs) ?? []
        disableNetwork = try container.decodeIfPresent(Bool.self, forKey: .disableNetwork) ?? false
        longLived = try container.decodeIfPresent(Bool.self, forKey: .longLived) ?? false
        prefix = try container.decodeIfPresent(String.self, forKey: .prefix)
        tools = try container.decodeIfPresent([ToolEntry].self, forKey: .tools) ?? []
        workspace = try container.decodeIfPresent(String.self, forKey: .workspace)
        remote = try container.decodeIfPresent(Remote.self, forKey: .remote)
        memory = try container.decodeIfPresent(String.self, forKey: .memory)
        cpus = try container.decodeIfPresent(Double.self, forKey: .cpus)
        pids = try container.decodeIfPresent(Int64.self, forKey: .pids)
        isolation = try container.decodeIfPresent(String.self, forKey: .isolation)
        oauth = try container.decodeIfPresent(OAuth.self, forKey: .oauth)
    }

    /// Checks what the gateway relies on; errors name the catalog and the server.
    func validate(source: String) throws {
        let what = "catalog \(source): server '\(name)'"
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9._-]*/) != nil else {
            throw AirlockError(
                .invalidArgument, "\(what): the name must be lower-case letters, digits, '.', '_' or '-'")
        }
        switch type {
        case "server":
            switch (template, image) {
            case (nil, nil):
                throw AirlockError(.invalidArgument, "\(what) needs an `image` or a `template` to run from")
            case (.some, .some):
                throw AirlockError(.invalidArgument, "\(what) names both an `image` and a `template`: give one")
            case (nil, .some(let image)):
                do {
                    _ = try ImageSource(parsing: image)
                } catch {
                    throw AirlockError(.invalidArgument, "\(what): \(error)")
                }
            case (.some, nil):
                // A template's image has no program of its own: the catalog names it.
                guard !command.isEmpty else { throw AirlockError(.invalidArgument, "\(what) needs a `command`") }
                guard user == nil else {
                    throw AirlockError(
                        .invalidArgument, "\(what): `user` is for an `image` (a template's server runs as its agent)")
                }
            }
        case "airlock":
            guard !command.isEmpty else { throw AirlockError(.invalidArgument, "\(what) needs a `command`") }
        case "remote":
            guard let url = remote?.url, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw AirlockError(.invalidArgument, "\(what) needs `remote.url` (http:// or https://)")
            }
            if let transport = remote?.transportType, transport != "streamable-http" && transport != "http" {
                throw AirlockError(
                    .invalidArgument, "\(what): remote transport '\(transport)' is not supported (streamable-http is)")
            }
        default:
            throw AirlockError(.invalidArgument, "\(what): type '\(type)' is not server, remote or airlock")
        }
        if disableNetwork && !(allowHosts.isEmpty && allowCIDRs.isEmpty) {
            let field = allowHosts.isEmpty ? "allowCIDRs" : "allowHosts"
            throw AirlockError(.invalidArgument, "\(what): disableNetwork and \(field) contradict each other")
        }
        do {
            try PolicySettings(allowHosts: allowHosts, allowCIDRs: allowCIDRs).validate()
        } catch {
            throw AirlockError(.invalidArgument, "\(what): \(error)")
        }
        if let cpus, !(cpus > 0 && cpus <= 1024) {
            throw AirlockError(.invalidArgument, "\(what): cpus must be above 0 (e.g. 0.5 or 2), not \(cpus)")
        }
        if let isolation {
            guard Isolation(rawValue: isolation) != nil else {
                throw AirlockError(
                    .invalidArgument, "\(what): isolation is 'container' or 'gvisor', not '\(isolation)'")
            }
            guard type == "server" else {
                throw AirlockError(.invalidArgument, "\(what): isolation is for a server that runs in a sandbox")
            }
        }
        if let workspace, workspace != "ro" && workspace != "rw" {
            throw AirlockError(.invalidArgument, "\(what): workspace is 'ro' or 'rw', not '\(workspace)'")
        }
        if let prefix, prefix.wholeMatch(of: /[A-Za-z0-9_-]+/) == nil {
            throw AirlockError(.invalidArgument, "\(what): prefix '\(prefix)' must be letters, digits, '_' or '-'")
        }
        var named = secrets.map(\.name)
        for value in (remote?.headers ?? [:]).values {
            _ = Placeholders.replace(in: value, opening: "{{secret:") { secret in
                named.append(secret)
                return ""
            }
        }
        for secret in secrets where secret.inject != nil {
            try validateInjection(secret, what: what)
        }
        if let oauth {
            guard type != "airlock" else {
                throw AirlockError(.invalidArgument, "\(what): oauth is for remote or sandboxed servers")
            }
            guard oauth.providers.count <= 1 else {
                throw AirlockError(
                    .invalidArgument, "\(what): oauth names \(oauth.providers.count) providers; Airlock takes one")
            }
            if let oauthSecret {
                guard oauthSecret.env.wholeMatch(of: /[A-Za-z_][A-Za-z0-9_]*/) != nil else {
                    throw AirlockError(
                        .invalidArgument, "\(what): oauth provider env '\(oauthSecret.env)' is no variable name")
                }
                try validateInjection(oauthSecret, what: what)
            }
        }
        for secret in named where !secret.hasPrefix(name + ".") {
            throw AirlockError(
                .invalidArgument, "\(what): secret '\(secret)' must be named \(name).KEY (a server's own)")
        }
    }

    private func validateInjection(_ secret: SecretEntry, what: String) throws {
        let what = "\(what): secret \(secret.name)"
        guard type == "server", !disableNetwork else {
            throw AirlockError(.invalidArgument, "\(what) is injected by the server's proxy, and it has none")
        }
        guard let header = secret.inject?.header, header.wholeMatch(of: /[A-Za-z0-9-]+/) != nil else {
            throw AirlockError(.invalidArgument, "\(what): inject.header must be a header name")
        }
        let hosts = injectionHosts(secret)
        guard !hosts.isEmpty else {
            throw AirlockError(
                .invalidArgument, "\(what): inject needs hosts (inject.hosts, or the server's allowHosts)")
        }
        for host in hosts where HostRule(host) == nil {
            throw AirlockError(.invalidArgument, "\(what): '\(host)' is not a host rule")
        }
        for host in hosts where !allowHosts.isEmpty && !allowHosts.contains(host) {
            throw AirlockError(.invalidArgument, "\(what): inject host '\(host)' is not in allowHosts")
        }
    }

    /// The schema `mcp-config-set` validates against: the catalog's `config` entry named
    /// after the server, or the first.
    public var configSchema: JSONValue? {
        config.first { $0["name"]?.stringValue == name } ?? config.first
    }

    /// The text `mcp-find` searches and `catalog ls` shows.
    public var summary: String {
        [title, description].compactMap { $0 }.joined(separator: ": ")
    }
}

/// Catalogs: the built-in one, the user's (`$XDG_CONFIG_HOME/airlock/catalogs/*.yaml`) and
/// any given with `--catalog`, later ones replacing servers of the same name.
public struct ServerCatalog: Sendable {
    public var servers: [String: CatalogServer]
    /// Where each server's entry came from.
    public var sources: [String: String]

    public init(servers: [CatalogServer], source: String) {
        self.servers = Dictionary(servers.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        self.sources = Dictionary(servers.map { ($0.name, source) }, uniquingKeysWith: { $1 })
    }

    /// The user's catalog directory.
    public static func userDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        UserConfig.directory(environment: environment) + "/catalogs"
    }

    /// Built-in, then the user's directory, then `extra` files in order.
    public static func load(
        extra: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ServerCatalog {
        var catalog = ServerCatalog(servers: BuiltinServers.all, source: "built-in")
        let directory = userDirectory(environment: environment)
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.map { directory + "/" + $0 }
        for path in files + extra.map(Files.absolute) {
            guard Files.exists(path) else { throw AirlockError(.notFound, "catalog \(path) does not exist") }
            catalog.merge(try parse(yaml: try Files.read(path), source: path), source: path)
        }
        return catalog
    }

    mutating func merge(_ servers: [CatalogServer], source: String) {
        for server in servers {
            self.servers[server.name] = server
            sources[server.name] = source
        }
    }

    /// The servers of one catalog file: `registry: {NAME: {...}}`.
    public static func parse(yaml: String, source: String) throws -> [CatalogServer] {
        struct File: Decodable {
            var registry: [String: CatalogServer]?
        }
        let file: File
        do {
            file = try YAMLDecoder().decode(File.self, from: yaml)
        } catch {
            throw AirlockError(.invalidArgument, "catalog \(source) is malformed: \(error)")
        }
        guard let registry = file.registry else {
            throw AirlockError(.invalidArgument, "catalog \(source) has no `registry:` of servers")
        }
        var servers: [CatalogServer] = []
        for (key, var server) in registry.sorted(by: { $0.key < $1.key }) {
            if server.name.isEmpty { server.name = key }
            try server.validate(source: source)
            servers.append(server)
        }
        return servers
    }

    /// Server names as options take them: `a,b`, spaces around each ignored.
    public static func names(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    public func find(_ name: String) throws -> CatalogServer {
        guard let server = servers[name] else {
            throw AirlockError(
                .notFound,
                "no server '\(name)' in the catalogs (known: \(servers.keys.sorted().joined(separator: ", ")))")
        }
        return server
    }
}
