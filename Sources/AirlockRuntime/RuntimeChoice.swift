import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Which OCI runtime, and so which isolation tier (``Isolation``), a new sandbox gets.
///
/// `--isolation gvisor` is runsc. Otherwise `--runtime NAME` when given; else `$AIRLOCK_RUNTIME`;
/// else the user's default tier (`isolation:` in `~/.config/airlock/config.yaml`); else crun
/// where it runs sandboxes on this host (it starts a container in about a quarter of runc's
/// time), else runc. Whether a runtime works is the doctor's probe
/// (``HostDoctor/runtime(_:namespace:)``), run once and remembered in the state directory until
/// the runtime's binary or the kernel changes.
public struct RuntimeChoice: Sendable {
    public let store: StateStore
    let environment: [String: String]

    public static let environmentVariable = "AIRLOCK_RUNTIME"

    public init(store: StateStore, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.store = store
        self.environment = environment
    }

    /// What a new sandbox runs under.
    public struct Choice: Sendable, Equatable {
        public var runtime: RuntimeDriver.Kind
        /// Under gVisor: the platform its probe passed on.
        public var gvisorPlatform: RuntimeDriver.GVisorPlatform?
        public var isolation: Isolation { Isolation(runtime: runtime) }
    }

    /// The runtime for `--runtime name` and `--isolation tier`, or the default; fails with one
    /// line when they disagree or the runtime cannot run here.
    public func choose(runtime name: String?, isolation: Isolation?) throws -> Choice {
        let named = try name.map(Self.kind(parsing:))
        switch isolation {
        case .gvisor:
            if let named, named != .runsc {
                throw AirlockError(
                    .invalidArgument,
                    "--runtime \(named.rawValue) is a container runtime; --isolation gvisor runs gVisor's runsc")
            }
            return try checked(.runsc, asked: "--isolation gvisor")
        case .container:
            if named == .runsc {
                throw AirlockError(
                    .invalidArgument, "--runtime runsc is the gvisor tier; --isolation container runs crun or runc")
            }
            if let named { return try checked(named, asked: "--runtime \(named.rawValue)") }
            if let fromEnvironment = try environmentRuntime(), fromEnvironment != .runsc {
                return try checked(fromEnvironment, asked: "$\(Self.environmentVariable)")
            }
            return Choice(runtime: preferred())
        case nil:
            if let named { return try checked(named, asked: "--runtime \(named.rawValue)") }
            if let fromEnvironment = try environmentRuntime() {
                return try checked(fromEnvironment, asked: "$\(Self.environmentVariable)")
            }
            if try UserSettings.load(environment: environment).isolation == .gvisor {
                return try checked(.runsc, asked: "isolation: gvisor in \(UserSettings.file(environment: environment))")
            }
            return Choice(runtime: preferred())
        }
    }

    /// The runtime for `--runtime name`, or the default (see ``choose(runtime:isolation:)``).
    public func kind(named name: String?) throws -> RuntimeDriver.Kind {
        try choose(runtime: name, isolation: nil).runtime
    }

    static func kind(parsing name: String) throws -> RuntimeDriver.Kind {
        guard let kind = RuntimeDriver.Kind(rawValue: name) else {
            throw AirlockError(.invalidArgument, "unknown runtime '\(name)' (choose runc, crun or runsc)")
        }
        return kind
    }

    private func environmentRuntime() throws -> RuntimeDriver.Kind? {
        guard let name = environment[Self.environmentVariable], !name.isEmpty else { return nil }
        return try Self.kind(parsing: name)
    }

    /// `kind`, installed and passing its probe, or one line saying why not and how to fix it.
    private func checked(_ kind: RuntimeDriver.Kind, asked: String) throws -> Choice {
        guard Executables.find(kind.rawValue) != nil else {
            throw AirlockError(
                .notFound, "runtime \(kind.rawValue) is not installed (\(RuntimeDriver.installHint(kind)))")
        }
        guard kind != .runc else { return Choice(runtime: kind) }
        let check = try check(kind)
        guard check.level == .ok else {
            let tier = kind == .runsc ? "\(asked) needs gVisor's runsc, which" : "runtime \(kind.rawValue)"
            throw AirlockError(
                .unsupported,
                "\(tier) cannot run sandboxes on this host: \(check.detail) (fix: \(HostDoctor.runtimeFix(kind)))")
        }
        return Choice(
            runtime: kind,
            gvisorPlatform: kind == .runsc
                ? check.platform.flatMap(RuntimeDriver.GVisorPlatform.init(rawValue:)) ?? .systrap : nil)
    }

    /// crun where its probe passes, else runc.
    public func preferred() -> RuntimeDriver.Kind {
        (try? check(.crun))?.level == .ok ? .crun : .runc
    }

    /// The remembered probe of `kind`, or a fresh one (remembered).
    func check(_ kind: RuntimeDriver.Kind) throws -> HostCheck {
        guard let key = Self.key(kind) else {
            return HostCheck(name: "runtime \(kind.rawValue)", level: .warning, detail: "not installed", fix: nil)
        }
        var probes = load()
        if let known = probes[kind.rawValue], known.key == key { return known.check }
        let namespace = try UserNamespace(identity: try SandboxIdentity.current())
        defer { namespace.close() }
        let check = HostDoctor().runtime(kind, namespace: namespace)
        probes[kind.rawValue] = Probe(key: key, check: check)
        save(probes)
        return check
    }

    /// Keeps what `airlock doctor` found, so the next `create` need not probe again.
    public func remember(_ checks: [HostCheck]) {
        var probes = load()
        for kind in RuntimeDriver.Kind.allCases {
            guard let check = checks.first(where: { $0.name == "runtime \(kind.rawValue)" }),
                let key = Self.key(kind)
            else { continue }
            probes[kind.rawValue] = Probe(key: key, check: check)
        }
        save(probes)
    }

    struct Probe: Codable {
        var key: String
        var check: HostCheck
    }

    private var file: String { store.root + "/runtime-probes.json" }

    private func load() -> [String: Probe] {
        guard let text = try? Files.read(file) else { return [:] }
        return (try? JSONDecoder().decode([String: Probe].self, from: Data(text.utf8))) ?? [:]
    }

    /// Best effort: a probe not remembered is run again next time.
    private func save(_ probes: [String: Probe]) {
        guard (try? Files.makeDirectory(store.root, mode: 0o700)) != nil,
            let text = try? JSONText.pretty(probes)
        else { return }
        try? Files.writeAtomically(file, text + "\n", mode: 0o600)
    }

    /// What a probe's answer depends on: the binary (path, size, time) and the kernel.
    static func key(_ kind: RuntimeDriver.Kind) -> String? {
        guard let path = Executables.find(kind.rawValue) else { return nil }
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(path) \(info.st_size) \(info.st_mtim.tv_sec) \(release) \(UnifiedCgroupMask.isNeeded)"
    }
}
