import AirlockPolicy
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

    /// One layer; nil when its file does not exist.
    public static func load(_ path: String) throws(PolicyError) -> PolicySettings? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? AirlockSystem.Files.read(path) else { throw PolicyError("cannot read \(path)") }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return PolicySettings() }
        do {
            return try YAMLDecoder().decode(PolicySettings.self, from: text)
        } catch {
            throw PolicyError("\(path) is not a valid policy: \(error)")
        }
    }
}
