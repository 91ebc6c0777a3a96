import AirlockPolicy
import AirlockWire
import NIOCore
import NIOPosix

/// The host's own proxy (`HTTPS_PROXY` where the supervisor starts, e.g. a corporate one),
/// which the sandbox's proxy goes through after its own checks. It is asked to CONNECT to the
/// address Airlock checked, never to a name it would resolve again.
public struct UpstreamProxy: Sendable, Equatable {
    public var authority: Authority
    /// Hosts and domains reached directly (`NO_PROXY`): `name`, `.domain`, `*`.
    public var bypass: [String]

    public init?(environment: [String: String]) {
        let value = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].lazy
            .compactMap { environment[$0] }.first { !$0.isEmpty }
        guard var text = value else { return nil }
        if let scheme = text.range(of: "://") {
            guard text[..<scheme.lowerBound].lowercased() == "http" else { return nil }
            text = String(text[scheme.upperBound...])
        }
        text = String(text.prefix { $0 != "/" })
        guard let authority = Authority.parse(text, defaultPort: 3128) else { return nil }
        self.authority = authority
        bypass = (environment["NO_PROXY"] ?? environment["no_proxy"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
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
    private let established: EventLoopPromise<Void>
    private var response = ByteBuffer()

    init(target: String, established: EventLoopPromise<Void>) {
        self.target = target
        self.established = established
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n"
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
