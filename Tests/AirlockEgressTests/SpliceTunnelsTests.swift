import AirlockSystem
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import AirlockEgress

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SpliceTunnelsTests {
    static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func bothWaysInTheKernelWithTheFirstBytesAheadAndEachEndPassedOn() throws {
        let (sandbox, clientSide) = try DescriptorPassing.socketPair()
        let (upstreamSide, server) = try DescriptorPassing.socketPair()
        let totals = Mutex<SpliceTunnels.Totals?>(nil)
        let splicer = try SpliceTunnels()
        #expect(
            splicer.start(client: clientSide, upstream: upstreamSide, first: Array("hello ".utf8), idle: 30) { done in
                totals.withLock { $0 = done }
            })
        let body = String(repeating: "0123456789", count: 50_000)
        Thread.detachNewThread {
            _ = UnixSocket.writeLine(sandbox, "world " + body)
            shutdown(sandbox, Int32(SHUT_WR))
        }
        #expect(Self.readAll(server) == "hello world " + body + "\n")
        _ = UnixSocket.writeLine(server, "reply")
        shutdown(server, Int32(SHUT_WR))
        #expect(Self.readAll(sandbox) == "reply\n")
        for _ in 0..<200 where totals.withLock({ $0 }) == nil { usleep(10_000) }
        let moved = try #require(totals.withLock { $0 })
        #expect(moved.toUpstream == 6 + 6 + body.utf8.count + 1)
        #expect(moved.fromUpstream == 6)
        close(sandbox)
        close(server)
    }

    @Test func aTunnelWithNothingEitherWayEndsAtItsIdleTimeout() throws {
        let (sandbox, clientSide) = try DescriptorPassing.socketPair()
        let (upstreamSide, server) = try DescriptorPassing.socketPair()
        let ended = Atomic<Bool>(false)
        #expect(
            try SpliceTunnels().start(client: clientSide, upstream: upstreamSide, first: [], idle: 0.5) { _ in
                ended.store(true, ordering: .relaxed)
            })
        #expect(Self.readAll(server) == "")
        // The end is reported just after the sockets close (that close is what readAll saw).
        for _ in 0..<200 where !ended.load(ordering: .relaxed) { usleep(10_000) }
        let endedByTheTimeout = ended.load(ordering: .relaxed)
        #expect(endedByTheTimeout)
        close(sandbox)
        close(server)
    }

    @Test func theSocketUnderANIOChannelIsFound() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        let copy = try await client.eventLoop.submit { ChannelDescriptor.duplicate(client) }.get()
        let fd = try #require(copy)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        #expect(Int(UInt16(bigEndian: address.sin_port)) == port)
        close(fd)
        try await client.close()
        try await server.close()
    }
}
