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

    /// The PEM certificate blocks of `text`, each ending in a newline.
    static func certificates(in text: String) -> [String] {
        let begin = "-----BEGIN CERTIFICATE-----"
        let end = "-----END CERTIFICATE-----"
        var blocks: [String] = []
        var rest = text[...]
        while let start = rest.range(of: begin), let stop = rest[start.upperBound...].range(of: end) {
            blocks.append(String(rest[start.lowerBound..<stop.upperBound]) + "\n")
            rest = rest[stop.upperBound...]
        }
        return blocks
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
