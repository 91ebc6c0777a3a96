import AirlockSystem
import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Synchronization
import Testing

@testable import AirlockTLS

@Suite struct CertificateAuthorityTests {
    @Test func createsAPrivateKeyAndReloadsTheSameAuthority() throws {
        try withTemporaryDirectory { parent in
            let directory = parent + "/ca"
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            #expect(try mode(of: directory) == 0o700)
            #expect(try mode(of: directory + "/ca-key.pem") == 0o600)
            #expect(try mode(of: directory + "/ca.pem") == 0o644)
            #expect(authority.certificatePath == directory + "/ca.pem")
            #expect(try String(contentsOfFile: authority.certificatePath, encoding: .utf8) == authority.certificatePEM)
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [
                    "ca-key.pem", "ca.lock", "ca.pem",
                ])

            let reloaded = try CertificateAuthority.loadOrCreate(directory: directory)
            #expect(reloaded.certificatePEM == authority.certificatePEM)
            // A leaf the reloaded authority signs verifies against the first one's certificate.
            try writeLeaf(of: reloaded, for: "example.com", to: directory + "/leaf.pem")
            let verify = try openssl(["verify", "-CAfile", directory + "/ca.pem", directory + "/leaf.pem"])
            #expect(verify.status == 0, "\(verify.output)")
        }
    }

    @Test func authorityCertificateIsAConstrainedCA() throws {
        try withTemporaryDirectory { directory in
            _ = try CertificateAuthority.loadOrCreate(directory: directory)
            let text = try openssl(["x509", "-noout", "-text", "-in", directory + "/ca.pem"]).output
            #expect(
                text.contains("Subject: CN=Airlock sandbox CA (") || text.contains("Subject: CN = Airlock sandbox CA (")
            )
            #expect(text.contains("O=Airlock") || text.contains("O = Airlock"))
            #expect(text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"))
            #expect(text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"))
            #expect(text.contains("X509v3 Subject Key Identifier"))
            #expect(text.contains("ASN1 OID: prime256v1"))
            let serial = try openssl(["x509", "-noout", "-serial", "-in", directory + "/ca.pem"]).output
            #expect(serial.trimmingCharacters(in: .whitespacesAndNewlines).count == "serial=".count + 40)
            let dates = try openssl([
                "x509", "-noout", "-checkend", String(9 * 365 * 86400), "-in", directory + "/ca.pem",
            ])
            #expect(dates.status == 0, "the authority should outlive nine years")
        }
    }

    @Test func leafForANameVerifiesAgainstTheAuthority() throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            let leaf = directory + "/leaf.pem"
            try writeLeaf(of: authority, for: "API.Example.com.", to: leaf)
            let verify = try openssl([
                "verify", "-CAfile", directory + "/ca.pem", "-purpose", "sslserver", "-verify_hostname",
                "api.example.com", leaf,
            ])
            #expect(verify.status == 0, "\(verify.output)")
            // The companion: the same leaf does not pass for another name.
            let wrongName = try openssl([
                "verify", "-CAfile", directory + "/ca.pem", "-verify_hostname", "evil.example.com", leaf,
            ])
            #expect(wrongName.status != 0)

            let text = try openssl(["x509", "-noout", "-text", "-in", leaf]).output
            #expect(text.contains("DNS:api.example.com"))
            #expect(text.contains("TLS Web Server Authentication"))
            #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature"))
            #expect(text.contains("X509v3 Authority Key Identifier"))
            #expect(text.contains("CA:FALSE"))
            let days31 = try openssl(["x509", "-noout", "-checkend", String(31 * 86400), "-in", leaf])
            #expect(days31.status != 0, "a leaf lives 30 days")
        }
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", "IP Address:127.0.0.1"), ("127.1", "127.0.0.1", "IP Address:127.0.0.1"),
        ("[::1]", "::1", "IP Address:0:0:0:0:0:0:0:1"),
    ])
    func leafForAnAddressCarriesAnIPName(host: String, address: String, san: String) throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            let leaf = directory + "/leaf.pem"
            try writeLeaf(of: authority, for: host, to: leaf)
            let verify = try openssl(["verify", "-CAfile", directory + "/ca.pem", "-verify_ip", address, leaf])
            #expect(verify.status == 0, "\(verify.output)")
            #expect(try openssl(["x509", "-noout", "-text", "-in", leaf]).output.contains(san))
        }
    }

    @Test(arguments: ["", ".", "a..b", "exa mple.com", "évil.com", "a/b", "::zz", "1.2.3.4 extra"])
    func refusesHostsNoCertificateCanName(host: String) throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            #expect(throws: AirlockError.self) { try authority.serverContext(for: host) }
        }
    }

    @Test func contextIsCachedPerHost() throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            let first = try authority.serverContext(for: "api.example.com")
            #expect(try authority.serverContext(for: "api.example.com") === first)
            #expect(try authority.serverContext(for: "API.example.com.") === first)
            #expect(try authority.serverContext(for: "www.example.com") !== first)
        }
    }

    @Test func leafIsRenewedADayBeforeItExpires() throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            let now = Date()
            let first = try authority.leaf(for: "example.com", now: now)
            #expect(try authority.leaf(for: "example.com", now: now + 28 * 86400).context === first.context)
            let renewed = try authority.leaf(for: "example.com", now: now + 29.5 * 86400)
            #expect(renewed.context !== first.context)
            #expect(renewed.certificate.notValidAfter > first.certificate.notValidAfter)
        }
    }

    @Test func refusesAKeyOthersCanRead() throws {
        try withTemporaryDirectory { directory in
            _ = try CertificateAuthority.loadOrCreate(directory: directory)
            let key = directory + "/ca-key.pem"
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
            let error = #expect(throws: AirlockError.self) {
                try CertificateAuthority.loadOrCreate(directory: directory)
            }
            #expect(error?.message.contains("mode 644") == true)
            // The companion: the same files load once the key is private again.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            _ = try CertificateAuthority.loadOrCreate(directory: directory)
        }
    }

    @Test func refusesAKeyThatIsASymlink() throws {
        try withTemporaryDirectory { directory in
            let authority = directory + "/ca"
            _ = try CertificateAuthority.loadOrCreate(directory: authority)
            try FileManager.default.moveItem(atPath: authority + "/ca-key.pem", toPath: directory + "/elsewhere.pem")
            try FileManager.default.createSymbolicLink(
                atPath: authority + "/ca-key.pem", withDestinationPath: directory + "/elsewhere.pem")
            #expect(throws: AirlockError.self) { try CertificateAuthority.loadOrCreate(directory: authority) }
        }
    }

    @Test func concurrentFirstCallsAgreeOnOneAuthority() throws {
        try withTemporaryDirectory { parent in
            let directory = parent + "/ca"
            let certificates = Mutex<[String]>([])
            // flock(2) locks belong to an open file, so threads contend exactly as processes do.
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                let pem = try? CertificateAuthority.loadOrCreate(directory: directory).certificatePEM
                certificates.withLock { $0.append(pem ?? "failed") }
            }
            let distinct = certificates.withLock { Set($0) }
            #expect(distinct.count == 1)
            #expect(!distinct.contains("failed"))
        }
    }

    /// A real TLS 1.3 handshake in memory: a client that trusts only the authority accepts the
    /// leaf for the name it asked for and settles on HTTP/1.1 even though it prefers h2.
    @Test func handshakeWithAClientThatTrustsTheAuthority() throws {
        try withTemporaryDirectory { directory in
            let authority = try CertificateAuthority.loadOrCreate(directory: directory)
            let context = try authority.serverContext(for: "api.example.com")
            #expect(try handshake(trusting: authority, serverName: "api.example.com", server: context) == "http/1.1")
            // The companion: the same client refuses the leaf when it asked for another name.
            #expect(throws: (any Error).self) {
                try handshake(trusting: authority, serverName: "evil.example.com", server: context)
            }
        }
    }
}

// MARK: Helpers

private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("airlock-ca-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
}

private func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
}

private func writeLeaf(of authority: CertificateAuthority, for host: String, to path: String) throws {
    try authority.leafCertificatePEM(for: host).write(toFile: path, atomically: true, encoding: .utf8)
}

private func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Runs a handshake between an in-memory client and server and returns the negotiated ALPN
/// protocol; throws when the client rejects the server.
private func handshake(
    trusting authority: CertificateAuthority, serverName: String, server context: NIOSSLContext
) throws -> String? {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.trustRoots = .certificates([
        try NIOSSLCertificate(bytes: Array(authority.certificatePEM.utf8), format: .pem)
    ])
    configuration.applicationProtocols = ["h2", "http/1.1"]
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    defer {
        // TLS waits for the peer's close_notify before it closes; let its shutdown timeout pass.
        for channel in [client, server] {
            channel.close(promise: nil)
            channel.embeddedEventLoop.advanceTime(by: .seconds(60))
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }
    let recorder = HandshakeRecorder()
    try client.pipeline.syncOperations.addHandler(
        NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: serverName))
    try client.pipeline.syncOperations.addHandler(recorder)
    try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
    let address = try SocketAddress(ipAddress: "127.0.0.1", port: 443)
    server.connect(to: address, promise: nil)
    client.connect(to: address, promise: nil)
    var moving = true
    while moving {
        client.embeddedEventLoop.run()
        server.embeddedEventLoop.run()
        moving = false
        if let data = try client.readOutbound(as: IOData.self) {
            try server.writeInbound(data)
            moving = true
        }
        if let data = try server.readOutbound(as: IOData.self) {
            try client.writeInbound(data)
            moving = true
        }
        try client.throwIfErrorCaught()
        try server.throwIfErrorCaught()
    }
    guard let negotiated = recorder.negotiated else {
        throw AirlockError(.failed, "the handshake did not complete")
    }
    return negotiated
}

private final class HandshakeRecorder: ChannelInboundHandler {
    typealias InboundIn = Any
    var negotiated: String??

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiatedProtocol)? = event as? TLSUserEvent {
            negotiated = .some(negotiatedProtocol)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
