import AirlockImages
import AirlockSystem
import Foundation
import Testing

@testable import AirlockRuntime

@Suite struct RegistryAccessTests {
    @Test func onlyAllowedRegistriesArePulledFrom() throws {
        let file = NSTemporaryDirectory() + "airlock-org-policy-\(UUID().uuidString).yaml"
        try "allowedRegistries: [ghcr.io]\n".write(toFile: file, atomically: false, encoding: .utf8)
        defer { unlink(file) }
        try RegistryAccess.check(try ImageSource(parsing: "ghcr.io/o/r:1"), organisation: file)
        #expect(throws: AirlockError.self) {
            try RegistryAccess.check(try ImageSource(parsing: "node:22"), organisation: file)
        }
        // Files of the user's own are not registries.
        try RegistryAccess.check(try ImageSource(parsing: "oci:/tmp/layout"), organisation: file)
        // No organisation file: any registry.
        try RegistryAccess.check(try ImageSource(parsing: "node:22"), organisation: file + ".missing")
    }
}
