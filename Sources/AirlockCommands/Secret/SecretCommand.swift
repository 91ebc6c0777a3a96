import AirlockEgress
import AirlockPolicy
import AirlockSystem
import ArgumentParser
import Foundation

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Store API keys for the proxy to inject; sandboxes only ever see '\(credentialSentinel)'.",
        discussion: """
            Built-in services: \(CredentialService.builtIn.map(\.name).joined(separator: ", ")). \
            Without a stored secret, a sandbox takes a service's key from your environment \
            (e.g. ANTHROPIC_API_KEY) when it is created. Keys are kept with mode 0600 in the \
            state directory and are only added to requests to the service's own hosts, in its \
            own header, over TLS.
            """,
        subcommands: [Set.self, List.self, Remove.self])
}

extension SecretCommand {
    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a secret; its value is read from standard input (typed hidden at a terminal).",
            discussion: """
                echo "$KEY" | airlock secret set anthropic
                airlock secret set internal-api --host api.corp.example --header X-Token --env CORP_TOKEN < token.txt
                """)

        @Argument(help: "A built-in service, or a name of your own (with --host and --header).")
        var name: String

        @Option(name: .long, help: "Host the secret is for (repeatable; *.DOMAIN allowed).")
        var host: [String] = []

        @Option(name: .long, help: "Header the proxy puts it in (the sentinel in it is replaced).")
        var header: String?

        @Option(name: .long, help: "Variable that holds the sentinel inside sandboxes (repeatable).")
        var env: [String] = []

        func run() throws {
            let builtIn = CredentialService.named(name)
            guard builtIn != nil || (!host.isEmpty && header != nil) else {
                throw AirlockError(
                    .invalidArgument,
                    "'\(name)' is not a built-in service; give --host and --header for a secret of your own")
            }
            for rule in host where HostRule(rule) == nil {
                throw AirlockError(.invalidArgument, "'\(rule)' is not a host (HOST or *.DOMAIN)")
            }
            if let header,
                header.isEmpty || !header.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            {
                throw AirlockError(.invalidArgument, "'\(header)' is not a header name")
            }
            for variable in env where !Self.isVariableName(variable) {
                throw AirlockError(.invalidArgument, "'\(variable)' is not a variable name")
            }
            let value: String
            let terminal = HiddenInput()
            if terminal.isTerminal {
                value = try terminal.readLine(prompt: "secret for \(name) (input hidden): ")
            } else {
                let input = FileHandle.standardInput.readDataToEndOfFile()
                value = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .newlines)
            }
            guard !value.isEmpty else { throw AirlockError(.invalidArgument, "no value on standard input") }
            guard !value.contains("\n"), !value.contains("\r") else {
                throw AirlockError(.invalidArgument, "the value must be one line")
            }
            let service = CredentialService(
                name: name, variables: env.isEmpty ? builtIn?.variables ?? [] : env,
                hosts: host.isEmpty ? builtIn?.hosts ?? [] : host, header: header ?? builtIn?.header ?? "")
            try SecretStore(store: Context().store).save(Credential(service: service, value: value))
            print(name)
        }

        static func isVariableName(_ name: String) -> Bool {
            guard let first = name.first, first.isLetter || first == "_" else { return false }
            return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List stored secrets: names, hosts and headers, never values.")

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        struct Row: Codable {
            var name: String
            var hosts: [String]
            var header: String
            var variables: [String]
        }

        func run() throws {
            let secrets = SecretStore(store: Context().store)
            let rows = try secrets.names().map { name in
                let service = try secrets.load(name).service
                return Row(name: name, hosts: service.hosts, header: service.header, variables: service.variables)
            }
            if json {
                print(try JSONText.pretty(rows))
                return
            }
            let table =
                [["NAME", "HEADER", "HOSTS"]] + rows.map { [$0.name, $0.header, $0.hosts.joined(separator: ",")] }
            print(Table.render(table), terminator: "")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove stored secrets.")

        @Argument(help: "Secret names.")
        var names: [String]

        func validate() throws {
            guard !names.isEmpty else { throw ValidationError("name at least one secret") }
        }

        func run() throws {
            let secrets = SecretStore(store: Context().store)
            for name in names {
                try secrets.remove(name)
                print(name)
            }
        }
    }
}
