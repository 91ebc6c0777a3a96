import AirlockEgress
import AirlockPolicy
import AirlockRuntime
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "See and change what sandboxes may reach.",
        discussion: """
            A sandbox's policy combines, strongest first: the organisation's \
            \(UserConfig.organisationPolicy) (nothing loosens it), your \
            $XDG_CONFIG_HOME/airlock/policy.yaml, and the sandbox's own flags. Nothing in a \
            workspace sets policy. The same layers set the proxy's connection cap and timeouts \
            (`connections:` in a file, --connection-limit on the command line).
            """,
        subcommands: [PolicyCommand.self, LogCommand.self])
}

extension NetworkCommand {
    struct PolicyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy",
            abstract: "Change a sandbox's network policy; a running sandbox applies it to its next request.",
            discussion: """
                Rules given here are added to the sandbox's own; a preset replaces its preset. \
                With no changes (or with --show) it prints the policy in effect.
                """)

        @Argument(help: "The sandbox name.")
        var name: String

        @Argument(help: "New preset: balanced, open or locked.")
        var preset: EgressPolicy.Preset?

        @OptionGroup(title: "Rules to add")
        var rules: RuleOptions

        @Flag(name: .long, help: "Drop the sandbox's own rules first.")
        var reset = false

        @Flag(name: .long, help: "Print the policy in effect after the change.")
        var show = false

        @Flag(name: .long, help: "Print it as JSON.")
        var json = false

        func run() throws {
            let context = Context()
            _ = try context.sandboxes.record(name)
            let paths = context.store.sandbox(name)
            let changes = rules.settings(preset: preset)
            let changed = reset || changes != PolicySettings()
            if changed {
                // Read under the lock, so two changes at once both land.
                let lock = try FileLock(path: paths.lock)
                try lock.acquire(timeout: 30, what: "sandbox \(name)")
                defer { lock.release() }
                let current = reset ? nil : (try? PolicyStore.load(paths.policy)) ?? nil
                let layer = (current ?? PolicySettings()).adding(changes)
                do {
                    try layer.validate()
                } catch {
                    throw AirlockError(.invalidArgument, error.description)
                }
                try Sandboxes.savePolicy(layer, to: paths)
            }
            if show || !changed || json {
                try printEffective(store: context.store)
            } else {
                print(name)
            }
        }

        private func printEffective(store: StateStore) throws {
            let files = try EgressConfiguration(store: store, name: name).policyFiles
            let effective: EffectivePolicy
            switch PolicyStore(files: files).current() {
            case .success(let value): effective = value
            case .failure(let error):
                throw AirlockError(.invalidConfiguration, "\(error) (all egress is denied until it is fixed)")
            }
            let egress = effective.egress
            let view = PolicyView(
                sandbox: name, preset: egress.preset.rawValue,
                allowHosts: egress.allowedHostRules.map(\.description),
                blockHosts: egress.blockHosts.map(\.description),
                allowCIDRs: egress.allowRanges.map(\.description), blockCIDRs: egress.blockRanges.map(\.description),
                bypassHosts: effective.bypassHosts.map(\.description),
                addHosts: effective.staticHosts.keys.sorted().flatMap { name in
                    effective.staticHosts[name, default: []].map { "\(name):\($0)" }
                },
                connections: effective.connections.enforced,
                layers: [files.organisation, files.user, files.sandbox].filter { Files.exists($0) })
            if json {
                print(try JSONText.pretty(view))
                return
            }
            print("sandbox:      \(view.sandbox)")
            print("preset:       \(view.preset)")
            for (label, values) in [
                ("allow hosts:", view.allowHosts), ("block hosts:", view.blockHosts), ("allow CIDRs:", view.allowCIDRs),
                ("block CIDRs:", view.blockCIDRs), ("bypass TLS:", view.bypassHosts), ("static hosts:", view.addHosts),
            ] where !values.isEmpty {
                print(label.padding(toLength: 14, withPad: " ", startingAt: 0) + values.joined(separator: " "))
            }
            print("connections:  " + ConnectionLimitsText.line(view.connections))
            print("always blocked unless --allow-cidr: private, loopback, link-local, metadata, CGNAT, unique-local")
            print("from:         " + view.layers.joined(separator: ", "))
        }
    }

    struct PolicyView: Codable {
        var sandbox: String
        var preset: String
        var allowHosts: [String]
        var blockHosts: [String]
        var allowCIDRs: [String]
        var blockCIDRs: [String]
        var bypassHosts: [String]
        var addHosts: [String]
        var connections: ConnectionLimits
        var layers: [String]
    }

    /// The rule flags of `create`, `run` and `network policy`.
    struct RuleOptions: ParsableArguments {
        @Option(
            name: .long,
            help: ArgumentHelp(
                "Allow HOST, *.DOMAIN (subdomains only), optionally :PORT (repeatable).", valueName: "host"))
        var allowHost: [String] = []

        @Option(
            name: .long, help: ArgumentHelp("Block a host rule; blocks beat allows (repeatable).", valueName: "host"))
        var blockHost: [String] = []

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Allow an address range, even a private or loopback one (repeatable).", valueName: "cidr"))
        var allowCidr: [String] = []

        @Option(name: .long, help: ArgumentHelp("Block an address range (repeatable).", valueName: "cidr"))
        var blockCidr: [String] = []

        @Option(name: .long, help: ArgumentHelp("Tunnel HOST without TLS termination (repeatable).", valueName: "host"))
        var bypassHost: [String] = []

        @Option(
            name: .long,
            help: ArgumentHelp("Resolve NAME to IP, as for internal hosts (repeatable).", valueName: "name:ip"))
        var addHost: [String] = []

        @Option(
            name: .long,
            help: ArgumentHelp(
                """
                Set a connection cap or timeout (repeatable): max (open connections), headerTimeout, \
                bodyTimeout, idleTimeout, tunnelIdleTimeout (durations such as 30s, 5m, 1h).
                """, valueName: "key=value"))
        var connectionLimit: [String] = []

        func validate() throws {
            _ = try connections()
        }

        func connections() throws -> ConnectionSettings? {
            guard !connectionLimit.isEmpty else { return nil }
            var settings = ConnectionSettings()
            do {
                for assignment in connectionLimit { try settings.set(assignment) }
                try settings.validate()
            } catch {
                throw ValidationError(error.description)
            }
            return settings
        }

        func settings(preset: EgressPolicy.Preset?) -> PolicySettings {
            PolicySettings(
                preset: preset, allowHosts: allowHost, blockHosts: blockHost, allowCIDRs: allowCidr,
                blockCIDRs: blockCidr, bypassHosts: bypassHost, addHosts: addHost,
                connections: (try? connections()) ?? nil)
        }
    }
}

/// The one-line form of a sandbox's connection limits, as `network policy --show` prints them.
enum ConnectionLimitsText {
    static func line(_ limits: ConnectionLimits) -> String {
        "max \(limits.max), header \(limits.headerTimeout), body \(limits.bodyTimeout), "
            + "idle \(limits.idleTimeout), tunnel idle \(limits.tunnelIdleTimeout)"
    }
}
