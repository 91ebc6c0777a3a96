import AirlockGateway
import AirlockMCP
import AirlockMCPAuth
import AirlockState
import AirlockSystem
import ArgumentParser
import Foundation

/// `airlock mcp oauth`: authorize MCP servers with OAuth, once, for the gateway to use.
struct OAuthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oauth",
        abstract: "Authorize MCP servers with OAuth; the gateway then sends their tokens, renewed as needed.",
        discussion: """
            `authorize` runs MCP's authorization flow: it finds the server's authorization server \
            from the server's own metadata, registers Airlock there where that is offered, and \
            sends your browser to it (with PKCE) to come back to a one-time listener on \
            127.0.0.1. The tokens are kept as the server's secrets (`SERVER.oauth_token`, 0600); \
            the gateway sends the token to that server only, renews it before it expires, and \
            gives a tool error naming `airlock mcp oauth authorize SERVER` when it cannot.

            A sandboxed server whose catalog entry has an `oauth` block (Docker's, with \
            `issuer:` naming the authorization server) gets the token the same way, but never \
            inside its sandbox: the variable its provider names holds a placeholder, and its \
            proxy puts the token into the `Authorization` header (or `oauth.header`) of its \
            requests to its `allowHosts`.

              airlock mcp oauth authorize linear
              airlock mcp oauth ls
              airlock mcp oauth revoke linear
            """,
        subcommands: [Authorize.self, List.self, Revoke.self])

    static func tokens() -> OAuthTokens {
        OAuthTokens(secrets: MCPSecrets(store: StateStore.default()))
    }

    static func failure(_ error: any Error, server: String) -> any Error {
        guard let oauth = error as? OAuthError else { return error }
        let code: AirlockError.Code = oauth.code == .unreachable ? .failed : .conflict
        return AirlockError(code, "\(server): \(oauth.message)")
    }

    /// Where the flow starts: a remote server's URL (its metadata names the authorization
    /// server), or the authorization server a sandboxed server's catalog entry names.
    enum Start: Sendable {
        case remote(URL)
        case issuer(String, resource: String?, scopes: [String])

        var label: String {
            switch self {
            case .remote(let url): url.absoluteString
            case .issuer(let issuer, _, _): issuer
            }
        }
    }

    static func start(_ name: String, catalog: [String]) throws -> Start {
        let server = try ServerCatalog.load(extra: catalog).find(name)
        if server.type == "remote", let text = server.remote?.url, let url = URL(string: text) {
            return .remote(url)
        }
        guard server.type == "server", let oauth = server.oauth else {
            throw AirlockError(
                .unsupported,
                "\(name) has no OAuth: a remote server (catalog `type: remote`) or a sandboxed one with an `oauth` block is"
            )
        }
        guard let issuer = oauth.issuer else {
            let provider = oauth.providers.first?.provider ?? "?"
            throw AirlockError(
                .invalidConfiguration,
                "\(name): its oauth provider '\(provider)' needs `oauth.issuer` (its authorization server): Airlock knows no provider by name"
            )
        }
        return .issuer(issuer, resource: oauth.resource, scopes: oauth.scopes ?? [])
    }
}

extension OAuthCommand {
    struct Authorize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Authorize a remote MCP server: the browser's flow, once; the tokens kept for the gateway.")

        @Argument(help: "The server's catalog name.")
        var server: String

        @Option(
            help: ArgumentHelp(
                "The scopes to ask for, space-separated (default: what the server names).", valueName: "scopes"))
        var scopes: String?

        @Flag(help: "Only print the URL; open no browser.")
        var noBrowser = false

        @Option(help: "Seconds to wait for the browser to come back.")
        var timeout = 300

        @Option(help: "A catalog file to add (repeatable).")
        var catalog: [String] = []

        func validate() throws {
            guard (1...3600).contains(timeout) else { throw ValidationError("--timeout takes 1 to 3600 seconds") }
        }

        func run() throws {
            let start = try OAuthCommand.start(server, catalog: catalog)
            let tokens = OAuthCommand.tokens()
            let server = self.server
            let requested = scopes.map { $0.split(separator: " ").map(String.init) }
            let openBrowser = !noBrowser
            let seconds = timeout
            Context.progress("authorizing \(server) (\(start.label))")
            let (authorized, answer) = try runBlocking {
                do {
                    let discovery: AuthorizationFlow.Discovery
                    switch start {
                    case .remote(let url): discovery = try await AuthorizationFlow.discover(server: url)
                    case .issuer(let issuer, let resource, let scopes):
                        discovery = try await AuthorizationFlow.discover(
                            issuer: issuer, resource: resource, scopes: scopes)
                    }
                    return try await AuthorizationFlow.authorize(
                        discovery, scopes: requested, clientName: "Airlock (\(server))",
                        present: { address in
                            print("Open this URL to authorize \(server):\n\(address)")
                            fflush(nil)
                            if openBrowser { Self.open(address) }
                        }, timeout: .seconds(seconds))
                } catch {
                    throw OAuthCommand.failure(error, server: server)
                }
            }
            var grant = authorized
            if case .remote(let url) = start { grant.serverURL = url.absoluteString }
            let token = answer.accessToken
            let finished = grant
            try runBlocking { try await tokens.saveAuthorized(server, grant: finished, accessToken: token) }
            let expiry = answer.expiresIn.map { ", the token renewed before it expires in \($0) s" } ?? ""
            print("authorized \(server) at \(grant.issuer)" + (grant.scope.map { " (scopes: \($0))" } ?? "") + expiry)
        }

        /// `$BROWSER URL`, else `xdg-open URL` where there is a display; the URL is printed either way.
        static func open(_ address: String) {
            let environment = ProcessInfo.processInfo.environment
            let argv: [String]
            if let browser = environment["BROWSER"], !browser.isEmpty {
                argv = ["/bin/sh", "-c", browser + " \"$1\"", "sh", address]
            } else if environment["DISPLAY"] != nil || environment["WAYLAND_DISPLAY"] != nil,
                Executables.find("xdg-open") != nil
            {
                argv = ["xdg-open", address]
            } else {
                return
            }
            _ = try? ChildProcess.spawn(argv, stdin: .null, stdout: .null, stderr: .inherit, newSession: true)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the servers authorized with OAuth and how their tokens stand.")

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let tokens = OAuthCommand.tokens()
            let now = Date()
            let rows: [(server: String, grant: OAuthGrant)] = tokens.servers().compactMap { name in
                tokens.grant(name).map { (name, $0) }
            }
            func status(_ grant: OAuthGrant) -> String {
                switch grant.status {
                case .revoked: return "revoked"
                case .refused: return "refused (\(grant.statusDetail ?? "?"))"
                case .ok:
                    guard let expiry = grant.expiresAt, expiry <= now else { return "authorized" }
                    return grant.refreshToken == nil ? "expired" : "expired (renewable)"
                }
            }
            if json {
                let formatter = ISO8601DateFormatter()
                print(
                    JSONValue.array(
                        rows.map { row in
                            .object([
                                "server": .string(row.server), "status": .string(status(row.grant)),
                                "issuer": .string(row.grant.issuer),
                                "scope": row.grant.scope.map(JSONValue.string) ?? .null,
                                "expiresAt": row.grant.expiresAt.map { .string(formatter.string(from: $0)) } ?? .null,
                                "renewable": .bool(row.grant.refreshToken != nil),
                            ])
                        }
                    ).text())
                return
            }
            let lines = rows.map { row -> [String] in
                let expires =
                    row.grant.status != .ok
                    ? "-"
                    : row.grant.expiresAt.map { expiry in
                        expiry > now ? "in \(Int(expiry.timeIntervalSince(now))) s" : "past"
                    } ?? "-"
                return [row.server, status(row.grant), expires, row.grant.scope ?? "-", row.grant.issuer]
            }
            print(Table.render([["SERVER", "STATUS", "EXPIRES", "SCOPES", "ISSUER"]] + lines), terminator: "")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a server's tokens at its authorization server and forget them.",
            discussion:
                "The gateway's next call to the server then gives the tool error that says how to authorize again.")

        @Argument(help: "The server's catalog name.")
        var server: String

        func run() throws {
            let tokens = OAuthCommand.tokens()
            let server = self.server
            guard OAuthTokens.isServerName(server) else {
                throw ValidationError("'\(server)' is not a server name")
            }
            let outcome: OAuthTokens.Revocation
            do {
                outcome = try runBlocking { try await tokens.revoke(server) }
            } catch let error as AirlockError {
                throw error
            } catch {
                throw AirlockError(
                    .failed,
                    "\(server): forgot its tokens, but its authorization server did not revoke them (\(error)); the access token stays valid until it expires"
                )
            }
            switch outcome {
            case .revoked: print("revoked \(server)'s tokens at its authorization server and forgot them")
            case .forgotten:
                print(
                    "forgot \(server)'s tokens (its authorization server offers no revocation: the access token stays valid until it expires)"
                )
            case .alreadyRevoked: print("\(server)'s tokens were revoked before")
            case .removedUnreadable: print("removed \(server)'s unreadable OAuth grant and its token")
            }
        }
    }
}
