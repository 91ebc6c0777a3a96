import AirlockRuntime
import AirlockState
import AirlockSystem
import ArgumentParser

struct Port: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a sandbox's ports on the host, close them, or list them.",
        discussion: """
            A published port is a listener on the host: each connection it accepts is carried to \
            PORT on the sandbox's own loopback, whether the server inside listens on 0.0.0.0, \
            127.0.0.1 or ::. Nothing flows the other way: the sandbox cannot reach the host or the \
            network through it. Ports are kept with the sandbox and open again at every `run`; \
            `stop` closes them. A server inside may use any port; 80 and 443 once published \
            (transparent capture holds them until then, so publish them before the server starts).

              airlock port shell-app publish 8080:3000        # http://127.0.0.1:8080
              airlock port shell-app publish 0.0.0.0:8081:80  # every host address
              airlock port shell-app publish 5173             # a free host port
              airlock port shell-app unpublish 8080
              airlock port shell-app ls --json

            SPEC is [HOSTIP:]HOSTPORT:PORT; HOSTIP defaults to 127.0.0.1, HOSTPORT 0 picks a free \
            port at each start. `run` and `create` take the same with --publish.
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case publish, unpublish, ls
    }

    @Argument(help: "The sandbox name.")
    var name: String

    @Argument(help: "publish SPEC, unpublish HOSTPORT, or ls (default).")
    var action: Action = .ls

    @Argument(help: "The port spec (publish), or the host port (unpublish; HOSTPORT:PORT where several share one).")
    var value: String?

    @Flag(help: "Print JSON (ls, publish).")
    var json = false

    func validate() throws {
        switch action {
        case .publish where value == nil: throw ValidationError("publish needs a spec: [HOSTIP:]HOSTPORT:PORT")
        case .unpublish where value == nil: throw ValidationError("unpublish needs the host port (see `port NAME ls`)")
        case .ls where value != nil: throw ValidationError("ls takes no value")
        default: break
        }
    }

    func run() throws {
        let context = Context()
        let ports = SandboxPorts(store: context.store)
        switch action {
        case .publish:
            let spec = try PublishedPort(spec: value ?? "")
            let active = try ports.publish(name, spec)
            if json {
                print(try JSONText.pretty(Listed(SandboxPorts.Entry(spec: spec, active: active))))
            } else if let active {
                print("\(active.hostEndpoint) -> \(spec.port)")
            } else {
                print("\(spec)")
                context.sandboxes.log("sandbox \(name) is stopped: the port opens when it next runs")
            }
        case .unpublish:
            // HOSTPORT, or HOSTPORT:PORT where several share a host port (0, picked at start).
            let parts = (value ?? "").split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, let hostPort = UInt16(parts[0]),
                parts.count == 1 || UInt16(parts[1]).map({ $0 > 0 }) == true
            else {
                throw AirlockError(.invalidArgument, "invalid host port '\(value ?? "")' (HOSTPORT or HOSTPORT:PORT)")
            }
            let spec = try ports.unpublish(name, hostPort: hostPort, port: parts.count == 2 ? UInt16(parts[1]) : nil)
            print("\(spec)")
        case .ls:
            let entries = try ports.list(name)
            if json {
                print(try JSONText.pretty(entries.map(Listed.init)))
            } else {
                for entry in entries {
                    let host =
                        entry.active?.hostEndpoint
                        ?? IPAddressText.withPort(entry.spec.hostAddress, entry.spec.hostPort)
                    print(
                        "\(host) -> \(entry.spec.port)"
                            + (entry.active == nil ? "  (closed: the sandbox is stopped)" : ""))
                }
            }
        }
    }

    /// A port as `--json` shows it.
    struct Listed: Codable {
        var hostAddress: String
        /// The host port it listens on (while running), or the one asked for (0: picked at start).
        var hostPort: UInt16
        var port: UInt16
        var requestedHostPort: UInt16
        var listening: Bool

        init(_ entry: SandboxPorts.Entry) {
            hostAddress = entry.spec.hostAddress
            hostPort = entry.active?.hostPort ?? entry.spec.hostPort
            port = entry.spec.port
            requestedHostPort = entry.spec.hostPort
            listening = entry.active != nil
        }
    }
}
