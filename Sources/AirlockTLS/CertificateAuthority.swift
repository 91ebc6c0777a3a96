import AirlockSystem
import Crypto
import Foundation
import NIOSSL
import Synchronization
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// The per-user certificate authority that signs the certificates the egress proxy presents
/// when it intercepts TLS.
///
/// The authority lives in one directory: `ca.pem`, the certificate sandboxes are told to trust,
/// and `ca-key.pem`, its P-256 key, which only the user may read. Leaf certificates are made on
/// demand, kept in memory and never written to disk.
///
/// ```swift
/// let authority = try CertificateAuthority.loadOrCreate(directory: stateDirectory + "/ca")
/// let context = try authority.serverContext(for: "api.github.com")
/// try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
/// ```
public final class CertificateAuthority: Sendable {
    /// The certificate file's name inside the authority's directory.
    public static let certificateFile = "ca.pem"
    /// The private key file's name inside the authority's directory.
    public static let keyFile = "ca-key.pem"
    static let lockFile = "ca.lock"
    static let hour: TimeInterval = 3600
    static let day: TimeInterval = 24 * hour
    /// Ten years, counting their leap days.
    static let authorityLifetime = 3653 * day
    static let leafLifetime = 30 * day
    static let leafRenewalMargin = day
    /// Hosts are attacker-chosen (a sandbox may connect to endless subdomains of an allowed
    /// wildcard), so the cache is bounded.
    static let leafCacheLimit = 1024

    /// The authority's certificate in PEM, for a sandbox's trust store.
    public let certificatePEM: String
    /// Where the authority's certificate lies on disk.
    public let certificatePath: String

    let certificate: Certificate
    let privateKey: Certificate.PrivateKey
    let chainCertificate: NIOSSLCertificate
    /// One key serves every leaf this instance signs; it never leaves memory.
    let leafPublicKey: Certificate.PublicKey
    let leafSSLKey: NIOSSLPrivateKey
    let leaves = Mutex<[String: Leaf]>([:])

    /// A leaf certificate for one host and the TLS context that presents it.
    struct Leaf: Sendable {
        let certificate: Certificate
        let pem: String
        let context: NIOSSLContext

        func isFresh(at now: Date) -> Bool {
            certificate.notValidAfter.timeIntervalSince(now) > CertificateAuthority.leafRenewalMargin
        }
    }

    init(certificatePEM: String, keyPEM: String, certificatePath: String) throws {
        let certificate = try Certificate(pemEncoded: certificatePEM)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw AirlockError(.conflict, "\(certificatePath) does not belong to the key beside it")
        }
        self.certificatePEM = certificatePEM
        self.certificatePath = certificatePath
        self.certificate = certificate
        self.privateKey = Certificate.PrivateKey(key)
        self.chainCertificate = try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
        let leafKey = P256.Signing.PrivateKey()
        self.leafPublicKey = Certificate.PublicKey(leafKey.publicKey)
        self.leafSSLKey = try NIOSSLPrivateKey(bytes: Array(leafKey.pemRepresentation.utf8), format: .pem)
    }

    /// Loads the authority kept in `directory`, creating the directory (mode 0700) and a new
    /// authority when there is none.
    ///
    /// Processes that call this at once agree on one authority: they take turns through a lock
    /// file in the directory. A key file that other users may read is refused rather than used.
    public static func loadOrCreate(directory: String) throws -> CertificateAuthority {
        do {
            if !Files.isDirectory(directory) {
                try Files.makeDirectory(directory, mode: 0o700)
            }
            let lock = try FileLock(path: directory + "/" + lockFile)
            try lock.acquire(timeout: 30, what: "the certificate authority in \(directory)")
            defer { lock.release() }
            return try loadOrCreateHoldingLock(directory: directory)
        } catch let error as AirlockError {
            throw error
        } catch {
            throw AirlockError(.failed, "cannot load the certificate authority in \(directory)", cause: error)
        }
    }

    static func loadOrCreateHoldingLock(directory: String) throws -> CertificateAuthority {
        let certificatePath = directory + "/" + certificateFile
        let keyPath = directory + "/" + keyFile
        if let keyPEM = try readPrivateFile(keyPath, directory: directory) {
            guard let certificatePEM = Files.readRegularFile(certificatePath, limit: 1 << 16) else {
                throw AirlockError(
                    .notFound,
                    "\(certificatePath) is missing beside its key; remove \(directory) to create a new "
                        + "certificate authority")
            }
            let authority = try CertificateAuthority(
                certificatePEM: certificatePEM, keyPEM: keyPEM, certificatePath: certificatePath)
            guard authority.certificate.notValidAfter > Date() else {
                throw AirlockError(
                    .failed,
                    "the certificate authority in \(directory) expired on \(authority.certificate.notValidAfter); "
                        + "remove \(directory) to create a new one")
            }
            return authority
        }
        // The certificate goes first: a crash between the two writes leaves no key, so the next
        // call starts over instead of finding a key without its certificate.
        let (certificatePEM, keyPEM) = try makeAuthority(now: Date())
        try Files.writeAtomically(certificatePath, certificatePEM, mode: 0o644)
        try Files.writeAtomically(keyPath, keyPEM, mode: 0o600, durable: true)
        return try CertificateAuthority(
            certificatePEM: certificatePEM, keyPEM: keyPEM, certificatePath: certificatePath)
    }

    /// A TLS server context that presents a certificate for `host` (a name or an IP literal)
    /// signed by this authority, offering ALPN `http/1.1` only. The same host gets the same
    /// context until its certificate is a day from expiring.
    public func serverContext(for host: String) throws -> NIOSSLContext {
        try leaf(for: host, now: Date()).context
    }

    /// The certificate ``serverContext(for:)`` presents for `host`, in PEM.
    public func leafCertificatePEM(for host: String) throws -> String {
        try leaf(for: host, now: Date()).pem
    }

    func leaf(for host: String, now: Date) throws -> Leaf {
        let host = try Self.normalized(host: host)
        if let cached = leaves.withLock({ $0[host] }), cached.isFresh(at: now) {
            return cached
        }
        // Signing happens outside the lock; if two threads race, the first one stored wins so
        // that every caller sees one context per host.
        let made = try makeLeaf(for: host, now: now)
        return leaves.withLock { cache in
            if let cached = cache[host], cached.isFresh(at: now) {
                return cached
            }
            if cache[host] == nil, cache.count >= Self.leafCacheLimit,
                let oldest = cache.min(by: { $0.value.certificate.notValidAfter < $1.value.certificate.notValidAfter })
            {
                cache[oldest.key] = nil
            }
            cache[host] = made
            return made
        }
    }

    func makeLeaf(for host: String, now: Date) throws -> Leaf {
        let name: GeneralName =
            if let address = Self.addressBytes(host) {
                .ipAddress(.init(contentBytes: address[...]))
            } else {
                .dnsName(host)
            }
        let subject = try DistinguishedName {
            OrganizationName("Airlock")
            if host.utf8.count <= 64 {  // the longest common name X.520 allows
                CommonName(host)
            }
        }
        let issuerKeyIdentifier = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerialNumber(),
            publicKey: leafPublicKey,
            notValidBefore: now - Self.hour,
            notValidAfter: min(now + Self.leafLifetime, self.certificate.notValidAfter),
            issuer: self.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([name])
                SubjectKeyIdentifier(hash: leafPublicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
            },
            issuerPrivateKey: privateKey)
        let pem = try certificate.serializeAsPEM().pemString
        let leafCertificate = try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(leafCertificate), .certificate(chainCertificate)],
            privateKey: .privateKey(leafSSLKey))
        configuration.minimumTLSVersion = .tlsv12
        // The proxy speaks HTTP/1.1 on intercepted connections; offering h2 would break them.
        configuration.applicationProtocols = ["http/1.1"]
        return Leaf(certificate: certificate, pem: pem, context: try NIOSSLContext(configuration: configuration))
    }

    /// A new authority's certificate and key, both in PEM.
    static func makeAuthority(now: Date) throws -> (certificate: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let name = try DistinguishedName {
            CommonName(authorityCommonName())
            OrganizationName("Airlock")
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: randomSerialNumber(),
            publicKey: publicKey,
            notValidBefore: now - hour,
            notValidAfter: now + authorityLifetime,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    /// "Airlock sandbox CA (user@host)", the host name shortened to keep within the 64
    /// characters X.520 allows a common name.
    static func authorityCommonName() -> String {
        var user = ProcessInfo.processInfo.environment["USER"] ?? "uid \(geteuid())"
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            user = String(cString: name)
        }
        var host = "localhost"
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count - 1) == 0 {
            host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let frame = "Airlock sandbox CA (\(user)@)"
        return "Airlock sandbox CA (\(user)@\(host.prefix(max(1, 64 - frame.count))))"
    }

    /// Twenty random bytes with the top bit clear, so the DER integer stays positive and
    /// within the twenty bytes RFC 5280 allows.
    static func randomSerialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[0] = bytes[0] & 0x7f | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// The host as a certificate names it: lower case, without a trailing dot or IPv6 brackets.
    /// A name holds letters, digits, `-`, `_` and dots; only an IPv6 literal holds colons.
    static func normalized(host: String) throws -> String {
        var host = Substring(host.lowercased())
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host.hasSuffix(".") { host = host.dropLast() }
        let isName =
            host.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)
            } && !host.split(separator: ".", omittingEmptySubsequences: false).contains("")
        guard !host.isEmpty, host.utf8.count <= 253, isName || addressBytes(String(host)) != nil else {
            throw AirlockError(.invalidArgument, "cannot issue a certificate for the host '\(host)'")
        }
        return String(host)
    }

    /// The network-order bytes of an IP literal, or nil for a host name. IPv4 takes every
    /// spelling a URL parser accepts (`127.1`, `0x7f.0.0.1`), as a client would connect to it.
    static func addressBytes(_ host: String) -> [UInt8]? {
        var v6 = in6_addr()
        if host.contains(":") {
            return inet_pton(AF_INET6, host, &v6) == 1 ? withUnsafeBytes(of: &v6) { Array($0) } : nil
        }
        // inet_aton stops at a space and ignores the rest, so the whole host must look numeric.
        guard host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == "x" }) else { return nil }
        var v4 = in_addr()
        return inet_aton(host, &v4) != 0 ? withUnsafeBytes(of: &v4) { Array($0) } : nil
    }

    /// The contents of the key file, nil if there is none. The mode is checked on the open file
    /// so the check and the read see the same file; a symlink is refused.
    static func readPrivateFile(_ path: String, directory: String) throws -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw AirlockError(.failed, "cannot open \(path)", cause: SystemCallError("open \(path)", errno: errno))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemCallError("fstat \(path)", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_size <= 1 << 16 else {
            throw AirlockError(.conflict, "\(path) is not a key file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw AirlockError(
                .conflict,
                "\(path) has mode \(String(mode, radix: 8)), so other users may have read the certificate "
                    + "authority's key; remove \(directory) to create a new authority (or chmod 600 \(path) if "
                    + "no one else can have read it)")
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw SystemCallError("read \(path)", errno: errno) }
            if count == 0 { break }
            contents += buffer[0..<count]
        }
        return String(decoding: contents, as: UTF8.self)
    }
}
