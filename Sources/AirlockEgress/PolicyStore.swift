import AirlockPolicy
import AirlockState
import AirlockSystem
import Foundation
import Synchronization
import Yams

#if canImport(Glibc)
    import Glibc
#endif

/// The sandbox's effective policy, re-read whenever one of its layers changes on disk, so
/// `airlock network policy` takes effect on the next request without a restart.
///
/// A layer that cannot be read or parsed denies everything (fail closed) and says why.
public final class PolicyStore: Sendable {
    public struct Files: Sendable {
        public var organisation: String
        public var user: String
        public var sandbox: String
        /// The user's layer adds only its blocks (``PolicySettings/restrictions``): the
        /// sandbox's own layer alone says what it may reach, within the organisation's.
        public var userNarrowsOnly: Bool

        public init(organisation: String, user: String, sandbox: String, userNarrowsOnly: Bool = false) {
            self.organisation = organisation
            self.user = user
            self.sandbox = sandbox
            self.userNarrowsOnly = userNarrowsOnly
        }

        /// A sandbox's layers: the organisation's, the user's (`$XDG_CONFIG_HOME/airlock/policy.yaml`)
        /// and its own.
        public init(
            paths: SandboxPaths, userNarrowsOnly: Bool,
            environment: [String: String] = ProcessInfo.processInfo.environment
        ) {
            self.init(
                organisation: UserConfig.organisationPolicy,
                user: UserConfig.directory(environment: environment) + "/policy.yaml", sandbox: paths.policy,
                userNarrowsOnly: userNarrowsOnly)
        }

        var all: [String] { [organisation, user, sandbox] }
    }

    public let files: Files
    private let cache = Mutex<(stamp: [FileStamp?], policy: Result<EffectivePolicy, PolicyError>)?>(nil)

    public init(files: Files) {
        self.files = files
    }

    public func current() -> Result<EffectivePolicy, PolicyError> {
        let stamp = files.all.map(FileStamp.init(path:))
        if let cached = cache.withLock({ $0 }), cached.stamp == stamp { return cached.policy }
        let policy = Result { () throws(PolicyError) in
            let user = try Self.load(files.user)
            return try EffectivePolicy.combine(
                organisation: try Self.load(files.organisation),
                user: files.userNarrowsOnly ? user?.restrictions : user, sandbox: try Self.load(files.sandbox))
        }
        cache.withLock { $0 = (stamp, policy) }
        return policy
    }

    /// The policy, or the one-line error a command gives when it cannot be used: what
    /// `create` and `start` check, so that a broken file stops them before anything is made
    /// rather than leaving a sandbox whose every request is refused without a word.
    public func check() throws -> EffectivePolicy {
        switch current() {
        case .success(let policy): return policy
        case .failure(let error): throw AirlockError(.invalidConfiguration, error.description)
        }
    }

    /// One layer; nil when its file does not exist. The error is one line that names the file,
    /// as the network log records it for each request refused because of it.
    public static func load(_ path: String) throws(PolicyError) -> PolicySettings? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw PolicyError("policy error: \(path): \(String(cString: strerror(errno)))")
        }
        guard let text = try? AirlockSystem.Files.read(path) else {
            throw PolicyError("policy error: \(path): cannot read it")
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return PolicySettings() }
        let settings: PolicySettings
        do {
            settings = try YAMLDecoder().decode(PolicySettings.self, from: text)
        } catch {
            throw PolicyError("policy error: \(path): \(describe(error))")
        }
        do {
            try settings.validate()
        } catch {
            throw PolicyError("policy error: \(path): \(error.description)")
        }
        return settings
    }

    /// A YAML or decoding error in one line: where, then what (Yams adds a snippet of the file
    /// on lines of its own, and a decoding error's description is Swift's debug dump).
    public static func describe(_ error: any Error) -> String {
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
            YamlError.parser(let context, let problem, let mark, _),
            YamlError.composer(let context, let problem, let mark, _):
            let during = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return "line \(mark.line), column \(mark.column): \(problem)\(during)"
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return "line \(context.mark.line), column \(context.mark.column): \(keys) given more than once"
        case DecodingError.dataCorrupted(let context) where context.underlyingError != nil:
            // How Yams's decoder reports a file that is not YAML at all.
            return describe(context.underlyingError ?? error)
        case DecodingError.dataCorrupted(let context) where context.codingPath.last?.stringValue == "preset":
            let presets = EgressPolicy.Preset.allCases.map(\.rawValue).joined(separator: ", ")
            return "preset: not one of \(presets)"
        case DecodingError.typeMismatch(let type, let context):
            let expected =
                switch type {
                case is Node.Mapping.Type: "settings (KEY: VALUE lines)"
                case is Node.Sequence.Type: "a list"
                default: "a single value"
                }
            return field(context.codingPath) + "expected " + expected
        case DecodingError.valueNotFound(_, let context), DecodingError.dataCorrupted(let context):
            return field(context.codingPath) + context.debugDescription
        default:
            return "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
        }
    }

    /// `allowHosts[2]: `, or nothing at the top.
    private static func field(_ path: [any CodingKey]) -> String {
        guard let first = path.first else { return "" }
        return path.dropFirst().reduce(first.stringValue) { text, key in
            text + (key.intValue.map { "[\($0)]" } ?? "." + key.stringValue)
        } + ": "
    }
}
