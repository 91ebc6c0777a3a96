import Crypto
import Foundation

/// Lowercase hex of a digest's bytes: how the store names what it keeps by content.
public func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// The SHA-256 of `text` in hex: a name made from what a thing is made of.
public func sha256Hex(_ text: String) -> String {
    hex(SHA256.hash(data: Data(text.utf8)))
}
