import AirlockPolicy
import AirlockSystem
import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Counts a sandbox's open connections to its way out (proxy, capture, DNS over TCP) and
/// refuses the newest past the cap, so that one sandbox's flood of connections cannot take the
/// supervisor's descriptors: the connections already open keep being served.
final class ConnectionGate: Sendable {
    private let open = Atomic<Int>(0)
    /// Refusals since the last one logged: a flood is one log line a second, not one a connection.
    private let refusals = Mutex<(count: Int, lastLogged: Double)>((0, 0))
    /// What the descriptor limit leaves room for: two descriptors a connection (the sandbox's
    /// and the upstream's), less a reserve for everything else the supervisor has open.
    let descriptorBudget: Int

    init(descriptorLimit: Int = ConnectionGate.descriptorLimit()) {
        descriptorBudget = Self.budget(descriptorLimit: descriptorLimit)
    }

    static func budget(descriptorLimit: Int) -> Int {
        max(64, (descriptorLimit - 512) / 2)
    }

    /// Takes a place for a new connection; false when `cap` are open already.
    func admit(cap: Int) -> Bool {
        let cap = min(cap, descriptorBudget)
        while true {
            let current = open.load(ordering: .relaxed)
            guard current < cap else { return false }
            if open.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                .exchanged
            {
                return true
            }
        }
    }

    /// Counts `places` more, past the cap: a connection whose sockets leave the event loop
    /// (``SpliceTunnels``) stays counted after its channel closes, until its tunnel ends, and
    /// its pipes count too (six descriptors, where the budget reckons two a place).
    func hold(_ places: Int = 1) {
        open.add(places, ordering: .relaxed)
    }

    func release(_ places: Int = 1) {
        open.subtract(places, ordering: .relaxed)
    }

    /// Counts a refusal; returns how many to report when a line is due (at most one a second).
    func refused(now: Double = Monotonic.now()) -> Int? {
        refusals.withLock { state in
            state.count += 1
            guard now - state.lastLogged >= 1 else { return nil }
            let count = state.count
            state = (0, now)
            return count
        }
    }

    static func descriptorLimit(hard: Bool = false) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(min(hard ? limit.rlim_max : limit.rlim_cur, 1 << 20))
    }
}

extension ConnectionLimits {
    /// These limits as a supervisor started from here enforces them: `max` no more than its
    /// descriptors leave room for (it raises its limit to the hard one).
    public var enforced: ConnectionLimits {
        var limits = self
        limits.max = min(max, ConnectionGate.budget(descriptorLimit: ConnectionGate.descriptorLimit(hard: true)))
        return limits
    }
}

/// Closes a connection that stalls: a request head not complete within the header timeout of
/// its first byte (a slow-header attack), a request body that stops moving, and nothing either
/// way for the idle timeout (longer for tunnels, and while a request awaits its answer).
///
/// It sits first in the pipeline, next to the socket, so it sees every byte both ways (TLS the
/// proxy terminates included). ``ProxyConnection`` tells it which phase the connection is in;
/// on expiry it asks ``onExpiry`` to answer (a 408) and closes the connection itself otherwise.
final class ConnectionTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Expiry: Equatable {
        case header, body, idle
    }

    private enum Phase {
        /// Reading a request head (or a ClientHello): the header deadline runs.
        case head
        /// Reading a request body: each byte moves the deadline.
        case body
        /// A request was sent on (or its body waits for the upstream) and its answer is due.
        case awaitingResponse
        /// Nothing due: between requests.
        case http
        /// Relayed byte for byte.
        case tunnel
    }

    /// What the responses written to the sandbox say about what is still due.
    private var responses = ResponseFraming()

    private let limits: ConnectionLimits
    private var phase = Phase.head
    private var deadline: NIODeadline?
    private var lastActivity = NIODeadline.now()
    private var check: (task: Scheduled<Void>, at: NIODeadline)?
    private var context: ChannelHandlerContext?
    /// Answers an expiry the way the connection speaks; returns false to leave it to the close.
    var onExpiry: ((Expiry) -> Bool)?

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { expectHead() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.task.cancel()
        check = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        expectHead()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.task.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = .now()
        if phase == .awaitingResponse || phase == .http {
            responses.consume(unwrapOutboundIn(data))
            phase = responses.awaiting ? .awaitingResponse : .http
        }
        context.write(data, promise: promise)
    }

    // MARK: - Phases, as the connection tells them

    /// The first byte of a request head (or the start of one): it has the header timeout to finish.
    func expectHead() {
        guard phase != .head || deadline == nil else { return }
        responses.nextRequest()
        phase = .head
        deadline = .now() + Self.amount(limits.headerTimeout)
        schedule()
    }

    /// A whole request head was read: its answer is due (none is followed through TLS the
    /// proxy terminates, whose bytes this handler sees encrypted).
    func requestRead(isHead: Bool, readable: Bool) {
        responses.requestSent(isHead: isHead)
        if !readable { responses.giveUp() }
        awaitResponse()
    }

    /// Waiting for a request body's bytes; each one moves the deadline.
    func bodyProgress() {
        phase = .body
        deadline = .now() + Self.amount(limits.bodyTimeout)
        schedule()
    }

    /// The request is sent on, or its body waits for the upstream to take more: nothing is
    /// expected of the sandbox until its answer has come.
    func awaitResponse() {
        phase = responses.awaiting ? .awaitingResponse : .http
        deadline = nil
        schedule()
    }

    func tunnel() {
        phase = .tunnel
        deadline = nil
        onExpiry = nil
        schedule()
    }

    // MARK: - Expiry

    private var idleLimit: TimeAmount {
        switch phase {
        case .tunnel, .awaitingResponse: Self.amount(limits.tunnelIdleTimeout)
        case .head, .body, .http: Self.amount(limits.idleTimeout)
        }
    }

    private func schedule() {
        guard let context, context.channel.isActive else { return }
        var next = lastActivity + idleLimit
        if let deadline { next = min(next, deadline) }
        if let check {
            guard next < check.at else { return }
            check.task.cancel()
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        check = (context.eventLoop.scheduleTask(deadline: next) { bound.value.expire() }, next)
    }

    private func expire() {
        check = nil
        guard let context, context.channel.isActive else { return }
        let now = NIODeadline.now()
        let expiry: Expiry? =
            if let deadline, now >= deadline {
                phase == .body ? .body : .header
            } else if now >= lastActivity + idleLimit { .idle } else { nil }
        guard let expiry else {
            schedule()
            return
        }
        if onExpiry?(expiry) != true { context.close(promise: nil) }
    }

    static func amount(_ seconds: Seconds) -> TimeAmount {
        let value = seconds.value.isFinite ? min(max(seconds.value, Seconds.shortest.value), Seconds.longest.value) : 30
        return .nanoseconds(Int64(value * 1e9))
    }
}

/// Answers a connection past the cap and closes it: a 503 to a program that speaks HTTP to the
/// proxy, a plain close to TLS and DNS. The answer is followed by a half-close and what the
/// program still sends is read and dropped for a moment, so that its request does not turn the
/// close into a reset that would discard the answer.
final class OverCapacity: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let speaksHTTP: Bool
    private let cap: Int

    init(speaksHTTP: Bool, cap: Int) {
        self.speaksHTTP = speaksHTTP
        self.cap = cap
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        guard speaksHTTP else {
            channel.close(promise: nil)
            return
        }
        let body = "Refused by airlock: this sandbox already has \(cap) open connections (connections.max)\n"
        let answer =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }
}
