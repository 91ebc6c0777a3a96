import NIOCore
import Testing

@testable import AirlockEgress

@Suite struct ResponseFramingTests {
    private func feed(_ framing: inout ResponseFraming, _ pieces: String...) {
        for piece in pieces { framing.consume(ByteBuffer(string: piece)) }
    }

    @Test func aContentLengthResponseEndsWithItsLastByte() {
        var framing = ResponseFraming()
        framing.requestSent(isHead: false)
        #expect(framing.awaiting)
        feed(&framing, "HTTP/1.1 200 OK\r\nContent-Len", "gth: 10\r\n\r\n01234")
        #expect(framing.awaiting)
        feed(&framing, "56789")
        #expect(!framing.awaiting)
    }

    @Test func headersFirstKeepTheAnswerDue() {
        var framing = ResponseFraming()
        framing.requestSent(isHead: false)
        feed(&framing, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(framing.awaiting)
    }

    @Test func noBodyAfterHeadRequestsAnd204And304() {
        for (isHead, status) in [(true, "200 OK"), (false, "204 No Content"), (false, "304 Not Modified")] {
            var framing = ResponseFraming()
            framing.requestSent(isHead: isHead)
            feed(&framing, "HTTP/1.1 \(status)\r\nContent-Length: 99\r\n\r\n")
            #expect(!framing.awaiting, "\(status)")
        }
    }

    @Test func interimResponsesAreSkippedAndPipelinedAnswersCounted() {
        var framing = ResponseFraming()
        framing.requestSent(isHead: false)
        framing.requestSent(isHead: false)
        feed(&framing, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(framing.awaiting)
        feed(&framing, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(!framing.awaiting)
    }

    @Test func chunkedAndCloseDelimitedBodiesStayDueUntilTheNextRequest() {
        for head in ["Transfer-Encoding: chunked\r\n", ""] {
            var framing = ResponseFraming()
            framing.requestSent(isHead: false)
            feed(&framing, "HTTP/1.1 200 OK\r\n\(head)\r\n5\r\nhello\r\n0\r\n\r\n")
            #expect(framing.awaiting)
            framing.nextRequest()
            #expect(!framing.awaiting)
        }
    }

    @Test func encryptedBytesAreNotFollowed() {
        var framing = ResponseFraming()
        framing.requestSent(isHead: false)
        framing.giveUp()
        feed(&framing, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(framing.awaiting)
    }
}
