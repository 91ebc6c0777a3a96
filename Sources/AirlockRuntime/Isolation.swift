import AirlockEgress
import AirlockState
import AirlockSystem
import Foundation
import Yams

/// How strong a wall a sandbox gets.
///
/// - `container`: namespaces, a seccomp filter and cgroups around processes that call the
///   host's kernel directly (crun, or runc).
/// - `gvisor`: gVisor's runsc puts a kernel of its own (the Sentry, in user space) between
///   the sandbox's processes and the host's; the host kernel sees only runsc's few processes
///   and the narrow set of calls its own seccomp filter lets them make.
///
/// A microVM tier is planned (`docs/isolation.md`). The tier is a property of the runtime a
/// sandbox is created with: `runsc` is gVisor, the others are containers.
public enum Isolation: String, CaseIterable, Codable, Sendable {
    case container, gvisor

    public init(runtime: RuntimeDriver.Kind) {
        self = runtime == .runsc ? .gvisor : .container
    }

    /// The tier of a sandbox created with `runtime` (a record's name for it).
    public init(runtimeName: String) {
        self.init(runtime: RuntimeDriver.Kind(rawValue: runtimeName) ?? .runc)
    }

    /// The stronger of two asks (either may be silent): a server's catalog entry and its
    /// gateway's flag each may ask for gVisor, and neither can take it away.
    public static func stronger(_ one: Isolation?, _ other: Isolation?) -> Isolation? {
        if one == .gvisor || other == .gvisor { return .gvisor }
        return one ?? other
    }

    public init(parsing text: String) throws {
        guard let tier = Isolation(rawValue: text) else {
            throw AirlockError(
                .invalidArgument,
                "unknown isolation '\(text)' (choose \(Self.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        self = tier
    }
}

/// The user's defaults for new sandboxes: `~/.config/airlock/config.yaml`.
///
/// ```yaml
/// isolation: gvisor   # every new sandbox on gVisor unless --isolation says otherwise
/// ```
///
/// A file that does not parse, or a key Airlock does not know, is one error line naming the
/// file: a default the user believes is set must not be silently ignored.
public struct UserSettings: Sendable, Equatable {
    public var isolation: Isolation?

    public init(isolation: Isolation? = nil) {
        self.isolation = isolation
    }

    public static func file(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        UserConfig.directory(environment: environment) + "/config.yaml"
    }

    /// The settings in the user's file; none when it does not exist.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> UserSettings
    {
        let path = file(environment: environment)
        guard Files.exists(path) else { return UserSettings() }
        guard let text = Files.readRegularFile(path, limit: 1 << 20) else {
            throw AirlockError(.invalidConfiguration, "settings error: \(path): not a readable file")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws -> UserSettings {
        let fields: [String: String]
        do {
            let node = try Yams.compose(yaml: text)
            if node == nil || node?.scalar?.string == "" { return UserSettings() }
            guard let mapping = node?.mapping else {
                throw AirlockError(.invalidArgument, "settings (KEY: VALUE lines) expected")
            }
            var found: [String: String] = [:]
            for (key, value) in mapping {
                guard let key = key.string else { throw AirlockError(.invalidArgument, "a key is not text") }
                guard let value = value.string else {
                    throw AirlockError(.invalidArgument, "\(key): expected a single value")
                }
                found[key] = value
            }
            fields = found
        } catch let error as AirlockError {
            throw AirlockError(.invalidConfiguration, "settings error: \(path): \(error.message)")
        } catch {
            throw AirlockError(.invalidConfiguration, "settings error: \(path): \(PolicyStore.describe(error))")
        }
        var settings = UserSettings()
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "isolation":
                do {
                    settings.isolation = try Isolation(parsing: value)
                } catch let error as AirlockError {
                    throw AirlockError(.invalidConfiguration, "settings error: \(path): \(error.message)")
                }
            default:
                throw AirlockError(
                    .invalidConfiguration, "settings error: \(path): unknown setting '\(key)' (known: isolation)")
            }
        }
        return settings
    }
}

/// Where a runsc recent enough comes from. Debian 12's own (20221219) cannot serve the `statx`
/// call coreutils makes, so every `ls` fails inside; bookworm-backports carries 20240729.
public enum GVisorInstall {
    public static var hint: String {
        if osRelease["VERSION_CODENAME"] == "bookworm" {
            return
                "on Debian 12, runsc comes from bookworm-backports: add it to apt's sources and run `sudo apt-get install -t bookworm-backports runsc` (scripts/install.sh does both)"
        }
        return
            "install runsc 20240729 or newer: `sudo apt-get install runsc`, or https://gvisor.dev/docs/user_guide/install/"
    }

    /// `runsc --version`'s first line (`runsc version 0.0~20240729.0`), or nil.
    public static func version(of binary: String) -> String? {
        guard let output = try? ChildProcess.run([binary, "--version"]), output.status == 0 else { return nil }
        return output.stdout.split(separator: "\n").first.map { String($0) }
    }

    static var osRelease: [String: String] {
        var fields: [String: String] = [:]
        for line in ((try? Files.read("/etc/os-release")) ?? "").split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
                .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return fields
    }
}
