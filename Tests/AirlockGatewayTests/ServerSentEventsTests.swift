import AirlockMCP
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import AirlockGateway

@Suite struct ServerSentEventsTests {
    typealias Event = ServerSentEvents.Event

    static func parse(_ pieces: [some Sequence<UInt8>]) -> [Event] {
        var parser = ServerSentEvents()
        return pieces.flatMap { parser.feed($0) }
    }

    static func parse(_ text: String) -> [Event] { parse([Array(text.utf8)]) }

    @Test func aCharacterAndALineEndSplitAnywhereArriveIntact() {
        let stream = Array("data: h\u{E9}llo \u{1F600}\r\n\r\nevent: note\r\nid: 7\rdata: \u{2603}\n\r\n".utf8)
        let expected = [
            Event(type: "message", data: "h\u{E9}llo \u{1F600}", id: ""),
            Event(type: "note", data: "\u{2603}", id: "7"),
        ]
        #expect(Self.parse([stream]) == expected)
        for first in 0...stream.count {
            for second in first...stream.count {
                let pieces = [stream[..<first], stream[first..<second], stream[second...]]
                #expect(Self.parse(pieces) == expected, "split at \(first) and \(second)")
            }
        }
    }

    @Test func oneByteAtATime() {
        let stream = Array("data: \u{1F600}\r\n\r\n".utf8)
        #expect(Self.parse(stream.map { [$0] }) == [Event(type: "message", data: "\u{1F600}", id: "")])
    }

    @Test func eachLineEndEndsALine() {
        #expect(Self.parse("data: a\r\rdata: b\n\ndata: c\r\n\r\n").map(\.data) == ["a", "b", "c"])
        // CR then LF is one line end; LF then CR is two (an empty line: dispatch).
        #expect(Self.parse("data: a\n\rdata: b\r\n\n").map(\.data) == ["a", "b"])
    }

    @Test func onlyOneSpaceAfterTheColonIsDropped() {
        #expect(Self.parse("data:  x\n\n").map(\.data) == [" x"])
        #expect(Self.parse("data:x\n\n").map(\.data) == ["x"])
        #expect(Self.parse("data: x \n\n").map(\.data) == ["x "])
    }

    @Test func dataLinesJoinWithLineFeeds() {
        #expect(Self.parse("data: {\"a\":\ndata: 1}\n\n").map(\.data) == ["{\"a\":\n1}"])
        #expect(Self.parse("data\ndata\n\n").map(\.data) == ["\n"])
        #expect(Self.parse("data:\n\n").map(\.data) == [""])
    }

    @Test func commentsAndUnknownFieldsAreIgnored() {
        let events = Self.parse(": keep-alive\n\n:\ndata: a\n: note: data: b\nfoo: bar\nretry: 100\n\n")
        #expect(events == [Event(type: "message", data: "a", id: "")])
    }

    @Test func noDataNoEvent() {
        #expect(Self.parse("event: ping\n\ndata: a\n\n") == [Event(type: "message", data: "a", id: "")])
    }

    @Test func theLastEventIDCarriesOverAndAnIDWithNULIsIgnored() {
        let events = Self.parse("id: 1\ndata: a\n\ndata: b\n\nid: x\u{0}\ndata: c\n\nid\ndata: d\n\n")
        #expect(events.map(\.id) == ["1", "1", "1", ""])
    }

    @Test func anUnfinishedEventIsNotDispatched() {
        #expect(Self.parse("data: a\n\ndata: b\n").map(\.data) == ["a"])
    }

    @Test func aByteOrderMarkAtTheStartIsDropped() {
        #expect(Self.parse("\u{FEFF}data: a\n\n\u{FEFF}data: b\n\n").map(\.data) == ["a"])
    }

    @Test func retryTakesDigitsOnly() {
        var parser = ServerSentEvents()
        _ = parser.feed(Array("retry: 1500\n".utf8))
        _ = parser.feed(Array("retry: 2s\n".utf8))
        #expect(parser.retry == 1500)
    }
}

/// The remote transport against a server on loopback that sends its event stream in pieces cut
/// inside a character and between CR and LF.
@Suite(.timeLimit(.minutes(1))) struct RemoteEventStreamTests {
    /// Serves one connection: reads the request head, writes `pieces` with pauses, closes.
    static func serve(_ pieces: [[UInt8]]) async throws -> (port: Int, done: Task<Void, any Error>) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = try #require(server.channel.localAddress?.port)
        let done = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        var request = ByteBuffer()
                        for try await var part in inbound {
                            request.writeBuffer(&part)
                            if request.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) != nil { break }
                        }
                        for piece in pieces {
                            try await outbound.write(ByteBuffer(bytes: piece))
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                    return
                }
            }
        }
        return (port, done)
    }

    static func call(port: Int) async throws -> JSONRPCMessage {
        let transport = try RemoteTransport(url: "http://127.0.0.1:\(port)/mcp")
        let (replies, continuation) = AsyncStream.makeStream(of: JSONRPCMessage.self)
        transport.start(receive: { continuation.yield($0) }, ended: { _ in continuation.finish() })
        #expect(transport.send(JSONRPCMessage(id: .int(1), method: "tools/list")))
        var iterator = replies.makeAsyncIterator()
        return try #require(await iterator.next())
    }

    @Test func aResponseCutAnywhereArrivesWhole() async throws {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        let event = Array(
            ": hi\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"name\":\"caf\u{E9}\"}}\r\n\r\n".utf8)
        let accent = try #require(event.firstIndex(of: 0xC3))
        let cr = try #require(event.lastIndex(of: 13))
        let pieces = [
            Array(head.utf8), Array(event[..<(accent + 1)]), Array(event[(accent + 1)..<cr]), Array(event[cr...]),
        ]
        let (port, done) = try await Self.serve(pieces)
        let reply = try await Self.call(port: port)
        #expect(reply.id == .int(1))
        #expect(reply.result == .object(["name": .string("caf\u{E9}")]))
        try await done.value
    }

    @Test func aStreamThatEndsWithoutTheResponseFailsTheRequest() async throws {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        let (port, done) = try await Self.serve([Array(head.utf8), Array("data: {\"jsonrpc\":\"2.0\",\"id\":1".utf8)])
        let reply = try await Self.call(port: port)
        #expect(reply.id == .int(1))
        #expect(reply.error != nil)
        try await done.value
    }
}
