import Foundation
import Testing

@testable import AirlockSystem

@Suite struct AirlockVersionTests {
    /// The checkout these tests were built from.
    static let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test(.enabled(if: FileManager.default.fileExists(atPath: root + "/.git")))
    func aBuildFromAGitCheckoutNamesItsCommit() throws {
        #expect(AirlockVersion.string != AirlockVersion.base)
        let commit = try #require(GitDescription.commit)
        #expect(AirlockVersion.string.contains("g" + commit) || GitDescription.distance == 0)
        // The commit is one of this repository's (later commits may have come since the build).
        let git = Process()
        git.executableURL = URL(filePath: "/usr/bin/git")
        git.arguments = ["-C", Self.root, "cat-file", "-e", commit + "^{commit}"]
        try git.run()
        git.waitUntilExit()
        #expect(git.terminationStatus == 0)
    }

    @Test func describesLikeGitDescribe() {
        let describe = AirlockVersion.describe
        #expect(describe("0.1.0", nil, 0, nil, false) == "0.1.0")
        #expect(describe("0.1.0", nil, 0, nil, true) == "0.1.0")
        #expect(describe("0.1.0", nil, 0, "1a2b3c4", false) == "0.1.0+g1a2b3c4")
        #expect(describe("0.1.0", nil, 0, "1a2b3c4", true) == "0.1.0+g1a2b3c4-dirty")
        #expect(describe("0.1.0", "v0.2.0", 0, "1a2b3c4", false) == "0.2.0")
        #expect(describe("0.1.0", "v0.2.0", 0, "1a2b3c4", true) == "0.2.0-dirty")
        #expect(describe("0.1.0", "0.2.0", 3, "1a2b3c4", false) == "0.2.0-3-g1a2b3c4")
        #expect(describe("0.1.0", "v0.2.0", 3, "1a2b3c4", true) == "0.2.0-3-g1a2b3c4-dirty")
    }
}
