import AirlockState
import AirlockSystem
import Foundation
import Testing

@testable import AirlockEgress

#if canImport(Glibc)
    import Glibc
#endif

/// The forwarder with real sockets: the "sandbox" here is this process's own namespace, whose
/// sockets a ``NamespaceSockets`` server on a socket pair makes, as the sandbox init does.
@Suite struct PortForwarderTests {
    @Test func everyByteArrivesBeforeTheServerHangsUp() throws {
        let forwarder = try Self.forwarder()
        defer { forwarder.stop() }
        let body = [UInt8]((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let server = try Self.listen(address: "127.0.0.1")
        Self.serveOnce(server.fd) { connection in Self.writeAll(connection, body) }
        let active = try forwarder.publish(PublishedPort(hostPort: 0, port: server.port))
        #expect(active.hostPort != 0)
        let received = try Self.readAll(from: active.hostPort)
        #expect(received.count == body.count)
        #expect(received == body)
    }

    @Test func aServerOnIPv6LoopbackAloneIsReached() throws {
        let forwarder = try Self.forwarder()
        defer { forwarder.stop() }
        let server = try Self.listen(address: "::1")
        Self.serveOnce(server.fd) { connection in Self.writeAll(connection, Array("six\n".utf8)) }
        let active = try forwarder.publish(PublishedPort(hostPort: 0, port: server.port))
        #expect(try Self.readAll(from: active.hostPort) == Array("six\n".utf8))
    }

    @Test func unpublishClosesTheListenerAtOnce() throws {
        let forwarder = try Self.forwarder()
        defer { forwarder.stop() }
        let active = try forwarder.publish(PublishedPort(hostPort: 0, port: 9))
        #expect(forwarder.unpublish(hostPort: active.hostPort) == active)
        #expect(forwarder.active.isEmpty)
        #expect(throws: SystemCallError.self) { try Self.readAll(from: active.hostPort) }
    }

    @Test func aHostPortInUseIsOneLine() throws {
        let forwarder = try Self.forwarder()
        defer { forwarder.stop() }
        let taken = try Self.listen(address: "127.0.0.1")
        defer { close(taken.fd) }
        let error = #expect(throws: AirlockError.self) {
            try forwarder.publish(PublishedPort(hostPort: taken.port, port: 80))
        }
        #expect(
            error?.description
                == "host port 127.0.0.1:\(taken.port) is already in use; publish another (or 0 to pick one)")
    }

    // MARK: helpers

    static func forwarder() throws -> PortForwarder {
        let (here, there) = try DescriptorPassing.socketPair()
        NamespaceSockets.serve(on: there)
        return PortForwarder(sockets: NamespaceSockets(fd: here))
    }

    static func listen(address: String) throws -> (fd: Int32, port: UInt16) {
        let family = try #require(IPAddressText.family(of: address))
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        let bound = IPAddressText.withSocketAddress(address, port: 0) { _, address, length in
            bind(fd, address, length) == 0 && Glibc.listen(fd, 8) == 0
        }
        #expect(bound == true)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // sin_port and sin6_port sit at the same offset.
        let port = withUnsafeBytes(of: &storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        return (fd, port)
    }

    static func serveOnce(_ listener: Int32, _ body: @escaping @Sendable (Int32) -> Void) {
        Thread {
            let connection = accept(listener, nil, nil)
            if connection >= 0 {
                body(connection)
                close(connection)
            }
            close(listener)
        }.start()
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            offset += written
        }
    }

    /// Everything a connection to host loopback `port` receives until the other side closes.
    static func readAll(from port: UInt16) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = IPAddressText.withSocketAddress("127.0.0.1", port: port) { _, address, length in
            connect(fd, address, length)
        }
        guard connected == 0 else { throw SystemCallError("connect", errno: errno) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            received += buffer[..<count]
        }
        return received
    }
}
