import AirlockPolicy
import AirlockWire
import Foundation
import NIOCore

/// The sandbox's resolver (`nameserver 127.0.0.1`). It answers a name the policy could allow
/// with a synthetic address that leads to transparent capture, and every other name with
/// NXDOMAIN. It never asks a real server anything, so a name cannot carry data out.
enum DNSStub {
    /// Short, so a policy change is seen soon by programs that cache answers.
    static let ttl: UInt32 = 5

    static func answer(_ bytes: ByteBuffer, engine: EgressEngine) -> [UInt8]? {
        let message = Array(bytes.readableBytesView)
        let started = Date()
        let query: DNSQuery
        do {
            query = try DNSQuery.parse(message)
        } catch {
            guard let id = DNSQuery.id(of: message) else { return nil }
            return DNSMessage.error(id: id, rcode: DNSRcode.notImp)
        }
        let name = HostName.normalize(query.question.name)
        let refusal =
            query.question.qclass == DNSClass.internet
            ? engine.dnsRefusal(of: name) : "\(name) is not allowed by the policy (NXDOMAIN, not resolved)"
        let allowed = refusal == nil
        var reply: [UInt8]
        if !allowed {
            reply = DNSMessage.error(query, rcode: DNSRcode.nxDomain)
        } else if query.question.type == DNSType.a, let address = engine.synthetic.address(for: name) {
            reply = DNSMessage.answer(query, addresses: [address], ttl: ttl)
        } else {
            // The name exists; it has no records of this type (IPv6 is not routed out).
            reply = DNSMessage.answer(query, addresses: [], ttl: ttl)
        }
        // Answers to allowed names are routine; what the stub refused is worth a line, once
        // per name and at most a few a second, with a count of those left out (a flood of
        // made-up names must not fill the log and push everything else out of it).
        if let refusal, engine.firstRefusal(of: name, reason: refusal) {
            let (allowed, leftOut) = engine.dnsLineAllowed()
            if allowed {
                let note = leftOut > 0 ? " (and \(leftOut) more refused names not logged before this one)" : ""
                engine.log.append(
                    NetworkLogEntry(
                        time: started, sandbox: engine.configuration.sandbox, method: "DNS", scheme: "dns",
                        host: name, port: 53, path: nil, address: nil, decision: "deny", rule: nil,
                        reason: refusal + note, bytesOut: message.count,
                        bytesIn: reply.count, durationMs: Date().timeIntervalSince(started) * 1000, via: "dns"))
            }
        }
        return reply
    }

    final class DatagramHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let engine: EgressEngine

        init(engine: EgressEngine) {
            self.engine = engine
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let reply = DNSStub.answer(envelope.data, engine: engine) else { return }
            let buffer = context.channel.allocator.buffer(bytes: reply)
            context.writeAndFlush(
                wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {}
    }

    /// DNS over TCP: two-byte length, then the message.
    final class StreamHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let engine: EgressEngine
        private var pending = ByteBuffer()

        init(engine: EgressEngine) {
            self.engine = engine
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            pending.writeBuffer(&buffer)
            // A client that sends without reading gets cut off, not buffered for.
            guard pending.readableBytes <= 65_536 + 2, context.channel.isWritable else {
                context.close(promise: nil)
                return
            }
            while let length = pending.getInteger(at: pending.readerIndex, as: UInt16.self),
                pending.readableBytes >= 2 + Int(length)
            {
                pending.moveReaderIndex(forwardBy: 2)
                guard let message = pending.readSlice(length: Int(length)),
                    let reply = DNSStub.answer(message, engine: engine)
                else {
                    context.close(promise: nil)
                    return
                }
                context.write(
                    wrapOutboundOut(context.channel.allocator.buffer(bytes: DNSMessage.tcpFrame(reply))), promise: nil)
            }
            pending.discardReadBytes()
            context.flush()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
