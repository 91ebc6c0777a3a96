import AirlockPolicy
import AirlockState
import AirlockSystem
import AirlockWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the sandbox's credential variables hold instead of the real values.
public let credentialSentinel = "airlock-proxy-managed"

/// A service whose API key the proxy adds on the way out: the variables that hold the key
/// (the sentinel, inside), the hosts it is for, and the header that carries it.
public struct CredentialService: Codable, Sendable, Equatable {
    public var name: String
    public var variables: [String]
    public var hosts: [String]
    public var header: String

    public init(name: String, variables: [String], hosts: [String], header: String) {
        self.name = name
        self.variables = variables
        self.hosts = hosts
        self.header = header
    }

    /// The services Airlock knows. Keys usually go in the header as sent by the client
    /// (`x-api-key: <key>` or `Authorization: Bearer <key>`); the proxy swaps the sentinel.
    public static let builtIn: [CredentialService] = [
        .init(name: "anthropic", variables: ["ANTHROPIC_API_KEY"], hosts: ["api.anthropic.com"], header: "x-api-key"),
        .init(name: "openai", variables: ["OPENAI_API_KEY"], hosts: ["api.openai.com"], header: "Authorization"),
        .init(
            name: "google", variables: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            hosts: ["generativelanguage.googleapis.com"], header: "x-goog-api-key"),
        .init(
            name: "github", variables: ["GH_TOKEN", "GITHUB_TOKEN"], hosts: ["api.github.com", "github.com"],
            header: "Authorization"),
        .init(name: "groq", variables: ["GROQ_API_KEY"], hosts: ["api.groq.com"], header: "Authorization"),
        .init(name: "mistral", variables: ["MISTRAL_API_KEY"], hosts: ["api.mistral.ai"], header: "Authorization"),
        .init(name: "xai", variables: ["XAI_API_KEY"], hosts: ["api.x.ai"], header: "Authorization"),
    ]

    public static func named(_ name: String) -> CredentialService? {
        builtIn.first { $0.name == name }
    }
}

/// One secret the proxy injects: its service (built-in or custom) and its real value.
public struct Credential: Codable, Sendable, Equatable {
    public var service: CredentialService
    public var value: String

    public init(service: CredentialService, value: String) {
        self.service = service
        self.value = value
    }

    /// Whether requests to `host` get this credential.
    public func applies(to host: String) -> Bool {
        service.hosts.contains { HostRule($0)?.matches(host: host, port: 443) ?? false }
    }

    /// Replaces the sentinel in the configured header only; also inside `Basic` credentials,
    /// where git puts a token. Other headers and the body are left as they are.
    public func inject(into fields: inout [HTTPField]) -> Bool {
        var injected = false
        for index in fields.indices where fields[index].name.lowercased() == service.header.lowercased() {
            let value = fields[index].value
            if value.contains(credentialSentinel) {
                fields[index].value = value.replacingOccurrences(of: credentialSentinel, with: self.value)
                injected = true
            } else if value.lowercased().hasPrefix("basic "),
                let decoded = Data(base64Encoded: String(value.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(data: decoded, encoding: .utf8), text.contains(credentialSentinel)
            {
                let replaced = text.replacingOccurrences(of: credentialSentinel, with: self.value)
                fields[index].value = "Basic " + Data(replaced.utf8).base64EncodedString()
                injected = true
            }
        }
        return injected
    }
}

/// Secrets at rest: the user's (`airlock secret set`, one 0600 file each under the state
/// directory) and those a sandbox took from the host environment when it was created.
public struct SecretStore: Sendable {
    public let directory: String

    public init(store: StateStore) {
        directory = store.secretsDirectory
    }

    public func names() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    public func load(_ name: String) throws -> Credential {
        try Self.validate(name: name)
        guard let text = Files.readRegularFile(path(name), limit: 1 << 20) else {
            throw AirlockError(.notFound, "no secret named '\(name)'")
        }
        do {
            return try JSONDecoder().decode(Credential.self, from: Data(text.utf8))
        } catch {
            throw AirlockError(.failed, "secret file \(path(name)) is damaged: \(error)")
        }
    }

    public func save(_ credential: Credential) throws {
        try Self.validate(name: credential.service.name)
        try Files.makeDirectory(directory, mode: 0o700)
        try Files.writeAtomically(path(credential.service.name), try JSONText.pretty(credential) + "\n", mode: 0o600)
    }

    public func remove(_ name: String) throws {
        try Self.validate(name: name)
        guard Files.exists(path(name)) else { throw AirlockError(.notFound, "no secret named '\(name)'") }
        Files.remove(path(name))
    }

    /// Every credential that applies to a sandbox: its own (from the host environment at
    /// create), with the user's stored ones taking precedence; only the services its record
    /// allows, when it names them.
    public func credentials(for paths: SandboxPaths) -> [Credential] {
        let allowed = (try? paths.loadRecord())?.credentialServices.map(Set.init)
        return everyCredential(for: paths).filter { allowed?.contains($0.service.name) ?? true }
    }

    private func everyCredential(for paths: SandboxPaths) -> [Credential] {
        var byName: [String: Credential] = [:]
        for credential in Self.loadSandboxCredentials(paths) { byName[credential.service.name] = credential }
        for name in names() {
            if let credential = try? load(name) { byName[name] = credential }
        }
        return byName.keys.sorted().compactMap { byName[$0] }
    }

    /// Takes the built-in services' keys from the host environment, for a new sandbox.
    public static func captureEnvironment(
        into paths: SandboxPaths, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        let captured = CredentialService.builtIn.compactMap { service -> Credential? in
            guard
                let value = service.variables.lazy.compactMap({ environment[$0] }).first(where: {
                    !$0.isEmpty && $0 != credentialSentinel
                })
            else { return nil }
            return Credential(service: service, value: value)
        }
        guard !captured.isEmpty else { return }
        try saveSandboxCredentials(captured, to: paths)
    }

    /// The sandbox's own credentials, which its proxy injects (0600, beside its record).
    public static func saveSandboxCredentials(_ credentials: [Credential], to paths: SandboxPaths) throws {
        try Files.writeAtomically(paths.credentials, try JSONText.pretty(credentials) + "\n", mode: 0o600)
    }

    static func loadSandboxCredentials(_ paths: SandboxPaths) -> [Credential] {
        guard let text = Files.readRegularFile(paths.credentials, limit: 1 << 20) else { return [] }
        return (try? JSONDecoder().decode([Credential].self, from: Data(text.utf8))) ?? []
    }

    static func validate(name: String) throws {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        guard allowed, !name.isEmpty, name.count <= 64 else {
            throw AirlockError(.invalidArgument, "secret name '\(name)' must be letters, digits, - and _")
        }
    }

    private func path(_ name: String) -> String { directory + "/" + name + ".json" }
}
