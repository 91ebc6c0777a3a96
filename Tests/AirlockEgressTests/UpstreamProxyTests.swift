import AirlockSystem
import AirlockWire
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AirlockEgress

@Suite struct UpstreamProxyTests {
    @Test func aProxyWithoutALogin() throws {
        let proxy = try #require(UpstreamProxy(environment: ["HTTPS_PROXY": "http://proxy.corp:8080/"]))
        #expect(proxy.authority == Authority(host: "proxy.corp", port: 8080))
        #expect(proxy.login == nil)
    }

    @Test func aProxyWithALogin() throws {
        let proxy = try #require(UpstreamProxy(environment: ["HTTPS_PROXY": "http://user:pass@proxy:3128"]))
        #expect(proxy.authority == Authority(host: "proxy", port: 3128))
        #expect(proxy.login == UpstreamProxy.Login(user: "user", password: "pass"))
        #expect(proxy.login?.authorization == "Basic dXNlcjpwYXNz")
    }

    @Test func userAndPasswordArePercentDecoded() throws {
        let proxy = try UpstreamProxy(url: "http://d%C3%A9v%40corp:p%3Ass%40w%2Frd@proxy")
        #expect(proxy.login == UpstreamProxy.Login(user: "d\u{E9}v@corp", password: "p:ss@w/rd"))
        // A raw @ in the password: the last @ ends the userinfo.
        #expect(try UpstreamProxy(url: "http://me:p@ss@proxy").login?.password == "p@ss")
        #expect(try UpstreamProxy(url: "http://me@proxy").login == UpstreamProxy.Login(user: "me", password: ""))
    }

    @Test func anIPv6ProxyAndTheDefaultPort() throws {
        #expect(try UpstreamProxy(url: "http://u:p@[fd00::1]:8080").authority == Authority(host: "fd00::1", port: 8080))
        #expect(try UpstreamProxy(url: "http://[::1]").authority == Authority(host: "::1", port: 3128))
        #expect(try UpstreamProxy(url: "proxy.corp").authority == Authority(host: "proxy.corp", port: 3128))
        #expect(try UpstreamProxy(url: "HTTP://Proxy.Corp:81").authority == Authority(host: "proxy.corp", port: 81))
    }

    @Test(arguments: [
        "socks5://proxy:1080", "https://proxy:443", "http://", "http://:8080", "http://proxy:0", "http://proxy:99999",
        "http://proxy:80:81", "http://fd00::1", "http://u:p%zz@proxy", "http://pro xy", "http://user:pa/ss@proxy",
    ])
    func garbageIsAnError(url: String) {
        #expect(throws: AirlockError.self) { try UpstreamProxy(url: url) }
    }

    @Test func aSettingThatCannotBeUsedSaysWhichAndHidesThePassword() throws {
        #expect(try UpstreamProxy.configured(in: [:]) == nil)
        #expect(try UpstreamProxy.configured(in: ["HTTPS_PROXY": ""]) == nil)
        let error = #expect(throws: AirlockError.self) {
            try UpstreamProxy.configured(in: ["http_proxy": "socks5://me:secret@proxy:1080"])
        }
        let message = try #require(error?.message)
        #expect(message.contains("http_proxy=socks5://me:***@proxy:1080"))
        #expect(!message.contains("secret"))
        #expect(UpstreamProxy(environment: ["HTTPS_PROXY": "http://proxy:bad"]) == nil)
    }

    @Test func theFirstVariableSetWinsAndNoProxyIsRead() throws {
        let proxy = try #require(
            try UpstreamProxy.configured(in: [
                "http_proxy": "http://b:1", "HTTPS_PROXY": "http://a:1", "NO_PROXY": " .corp, localhost ,",
            ]))
        #expect(proxy.authority.host == "a")
        #expect(proxy.bypass == [".corp", "localhost"])
    }

    /// A proxy on loopback that records the CONNECT head and answers 200.
    static func connectHead(authorization: String?) async throws -> String {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = try #require(server.channel.localAddress?.port)
        let head = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    return try await connection.executeThenClose { inbound, outbound in
                        var request = ByteBuffer()
                        for try await var part in inbound {
                            request.writeBuffer(&part)
                            if request.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) != nil { break }
                        }
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"))
                        return String(buffer: request)
                    }
                }
                return ""
            }
        }
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let established = eventLoop.makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnectHandler(
                            target: "192.0.2.1:443", authorization: authorization, established: established))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await established.futureResult.get()
        channel.close(promise: nil)  // the proxy may have closed it already
        return try await head.value
    }

    @Test func theConnectCarriesTheLogin() async throws {
        let login = UpstreamProxy.Login(user: "user", password: "pass")
        let head = try await Self.connectHead(authorization: login.authorization)
        #expect(
            head == "CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n"
                + "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n")
        #expect(
            try await Self.connectHead(authorization: nil)
                == "CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n")
    }
}
