import Foundation

/// A bearer token: `bytes` bytes from the system's secure random source, as lower-case hex.
public func randomToken(bytes: Int = 24) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
}
