import NIOCore

/// Copies bytes between two channels on one event loop, reading from one side only while the
/// other can take more (so a fast upstream cannot fill the proxy's memory), and closing both
/// when either ends.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Bytes this side received (and passed to its partner).
    private(set) var received = 0
    private let ended: Ended

    /// Runs its action once, when the first of the two channels closes.
    private final class Ended {
        var action: (() -> Void)?

        init(_ action: (() -> Void)?) {
            self.action = action
        }

        func run() {
            let action = self.action
            self.action = nil
            action?()
        }
    }

    private init(ended: Ended) {
        self.ended = ended
    }

    /// Two joined handlers: add the first to one channel and the second to the other.
    /// `onClose` runs once, when the relay ends.
    static func pair(onClose: (() -> Void)? = nil) -> (RelayHandler, RelayHandler) {
        let ended = Ended(onClose)
        let first = RelayHandler(ended: ended)
        let second = RelayHandler(ended: ended)
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytes
        partner?.send(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.closeAfterWrites()
        ended.run()
        context.fireChannelInactive()
    }

    /// Closes once what this side still has to write is written: a close at once would drop
    /// the tail of a body the other side sent just before it hung up.
    private func closeAfterWrites() {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func send(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }
}
