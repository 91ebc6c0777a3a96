import AirlockPolicy
import AirlockSystem
import AirlockWire
import Foundation
import NIOCore
import NIOPosix

/// The host's own proxy (`HTTPS_PROXY` where the supervisor starts, e.g. a corporate one),
/// which the sandbox's proxy goes through after its own checks. It is asked to CONNECT to the
/// address Airlock checked, never to a name it would resolve again.
public struct UpstreamProxy: Sendable, Equatable {
    /// A user and password the proxy asks for, percent-decoded from the URL's userinfo.
    public struct Login: Sendable, Equatable {
        public var user: String
        public var password: String

        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }

        /// The `Proxy-Authorization` value: Basic, over the UTF-8 of `user:password`.
        public var authorization: String {
            "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
    }

    public var authority: Authority
    public var login: Login?
    /// Hosts and domains reached directly (`NO_PROXY`): `name`, `.domain`, `*`.
    public var bypass: [String]

    /// The variables read, first set first.
    static let variables = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]

    /// The proxy `environment` names, or nil when it names none. A setting that cannot be used
    /// is not passed over in silence: it is reported on standard error (the supervisor's log),
    /// and the sandbox's proxy connects directly.
    public init?(environment: [String: String]) {
        do throws(AirlockError) {
            guard let proxy = try Self.configured(in: environment) else { return nil }
            self = proxy
        } catch {
            FileHandle.standardError.write(Data("airlock: warning: \(error.message)\n".utf8))
            return nil
        }
    }

    /// Parses `http://[user[:password]@]host[:port][/]` (the scheme may be left out; the port
    /// defaults to 3128).
    ///
    /// ```swift
    /// try UpstreamProxy(url: "http://me:p%40ss@[fd00::1]:8080")  // me, p@ss, [fd00::1]:8080
    /// ```
    public init(url text: String, bypass: [String] = []) throws(AirlockError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let scheme = rest.range(of: "://") {
            let name = rest[..<scheme.lowerBound].lowercased()
            guard name == "http" else {
                throw AirlockError(.unsupported, "\(name):// proxies are not supported, only http://")
            }
            rest = rest[scheme.upperBound...]
        }
        rest = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var login: Login?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            let colon = userinfo.firstIndex(of: ":") ?? userinfo.endIndex
            guard let user = userinfo[..<colon].removingPercentEncoding,
                let password = userinfo[colon...].dropFirst().removingPercentEncoding
            else { throw AirlockError(.invalidArgument, "the user or password has a bad percent-encoding") }
            login = Login(user: user, password: password)
            rest = rest[rest.index(after: at)...]
        }
        guard let authority = Authority.parse(String(rest), defaultPort: 3128) else {
            // Not quoted: it may hold part of a password that was not percent-encoded.
            throw AirlockError(.invalidArgument, "its host[:port] is not a host name or address and a port")
        }
        self.authority = authority
        self.login = login
        self.bypass = bypass
    }

    /// The proxy `environment` names: nil when none is set, an error that says which variable
    /// when one is set but cannot be used.
    public static func configured(in environment: [String: String]) throws(AirlockError) -> UpstreamProxy? {
        guard let variable = variables.first(where: { !(environment[$0] ?? "").isEmpty }),
            let value = environment[variable]
        else { return nil }
        let bypass = (environment["NO_PROXY"] ?? environment["no_proxy"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        do throws(AirlockError) {
            return try UpstreamProxy(url: value, bypass: bypass)
        } catch {
            throw AirlockError(
                error.code,
                "the upstream proxy \(variable)=\(redacted(value)) cannot be used (\(error.message)); "
                    + "the sandbox's proxy connects directly")
        }
    }

    /// The setting with any password replaced, for logs.
    static func redacted(_ value: String) -> String {
        guard let at = value.lastIndex(of: "@") else { return value }
        let start = value.range(of: "://")?.upperBound ?? value.startIndex
        guard start <= at, let colon = value[start..<at].firstIndex(of: ":") else { return value }
        return String(value[...colon]) + "***" + String(value[at...])
    }

    /// Whether a destination goes around the upstream proxy.
    func isBypassed(host: String, address: IPAddress) -> Bool {
        bypass.contains { entry in
            if entry == "*" { return true }
            if let range = AddressRange(entry) { return range.contains(address) }
            let domain = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
            return host == domain || host.hasSuffix("." + domain)
        }
    }
}

/// Opens a tunnel through the upstream proxy: sends CONNECT, and once the proxy answers 200,
/// steps aside so the channel carries the tunnel. Any other answer fails the connection.
final class UpstreamConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let target: String
    private let authorization: String?
    private let established: EventLoopPromise<Void>
    private var response = ByteBuffer()

    /// `authorization` is the `Proxy-Authorization` value, when the proxy asks for a login.
    init(target: String, authorization: String? = nil, established: EventLoopPromise<Void>) {
        self.target = target
        self.authorization = authorization
        self.established = established
    }

    func channelActive(context: ChannelHandlerContext) {
        var request = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        if let authorization { request += "Proxy-Authorization: \(authorization)\r\n" }
        request += "\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        response.writeBuffer(&incoming)
        let view = response.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if response.readableBytes > 16_384 { fail(context: context, "the upstream proxy sent an overlong answer") }
            return
        }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let status = head.split(separator: " ", maxSplits: 2).dropFirst().first.map(String.init) ?? ""
        guard status == "200" else {
            let line = head.split(separator: "\r\n").first.map(String.init) ?? head
            fail(context: context, "the upstream proxy refused CONNECT \(target): \(line)")
            return
        }
        response.moveReaderIndex(to: end.upperBound)
        let rest = response
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        established.succeed()
        if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        established.fail(UpstreamProxyError(description: "the upstream proxy closed the connection"))
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        established.fail(UpstreamProxyError(description: message))
        context.close(promise: nil)
    }
}

struct UpstreamProxyError: Error, CustomStringConvertible {
    let description: String
}
