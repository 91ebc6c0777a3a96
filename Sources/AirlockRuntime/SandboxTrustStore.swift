import AirlockSystem

/// The CA certificates a sandbox trusts, as PEM: its image's, the host's, and Airlock's own.
///
/// Only `CERTIFICATE` blocks are taken from the host's store (never a key, whatever else a
/// bundle file holds), and each certificate is listed once.
public struct SandboxTrustStore: Sendable, Equatable {
    /// Every trusted certificate: what `SSL_CERT_FILE` and Debian's bundle path show inside.
    public var bundle: String
    /// What the image does not hold: Airlock's CA and the host's own additions, for the
    /// programs that keep their own roots and add extra ones (Node's `NODE_EXTRA_CA_CERTS`).
    public var anchors: String

    public init(image: String, host: String, airlock: String) {
        let imageCertificates = Self.certificates(in: image)
        var seen = Set(imageCertificates)
        var extra: [String] = []
        for certificate in Self.certificates(in: airlock) + Self.certificates(in: host)
        where !seen.contains(certificate) {
            seen.insert(certificate)
            extra.append(certificate)
        }
        bundle = (imageCertificates + extra).joined()
        anchors = extra.joined()
    }

    /// The PEM certificate blocks of `text`, each ending in a newline. Scanned as bytes: a
    /// system bundle is some 200 KB, read at every sandbox start.
    static func certificates(in text: String) -> [String] {
        let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
        let end = Array("-----END CERTIFICATE-----".utf8)
        let bytes = Array(text.utf8)
        var blocks: [String] = []
        var position = 0
        while let start = find(begin, in: bytes, from: position),
            let stop = find(end, in: bytes, from: start + begin.count)
        {
            blocks.append(String(decoding: bytes[start..<stop + end.count], as: UTF8.self) + "\n")
            position = stop + end.count
        }
        return blocks
    }

    /// A plain scan: the standard library's `firstRange(of:)` took 18 ms on the host's bundle,
    /// this takes about 1 (`AIRLOCK_TIMING=1 airlock run`, "trust store written").
    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, bytes.count >= needle.count else { return nil }
        var index = start
        while index <= bytes.count - needle.count {
            if bytes[index] == first && bytes[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// Where distributions keep the system's bundle, Debian's first.
    static let hostBundles = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]

    /// The host's system trust store, if one is found.
    public static func hostBundle() -> String? {
        for path in hostBundles {
            if let text = Files.readRegularFile(Files.absolute(path), limit: 16 << 20) { return text }
        }
        return nil
    }
}
