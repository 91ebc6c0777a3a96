import Foundation
import Testing

@testable import AirlockGitGuard

#if canImport(Glibc)
    import Glibc
#endif

/// What keeps a descriptor from before a new repository's filter from writing past it.
@Suite struct AdoptionTests {
    /// A git directory as `git init` leaves it, in a fresh temporary directory.
    func newGitDirectory() throws -> String {
        let top = NSTemporaryDirectory() + "airlock-adoption-\(UUID().uuidString)"
        let git = top + "/.git"
        for directory in ["hooks", "info", "objects/info", "objects/pack", "refs/heads", "refs/tags", "logs/refs"] {
            try FileManager.default.createDirectory(atPath: git + "/" + directory, withIntermediateDirectories: true)
        }
        try "ref: refs/heads/main\n".write(toFile: git + "/HEAD", atomically: false, encoding: .utf8)
        try "[core]\n\trepositoryformatversion = 0\n\tbare = false\n".write(
            toFile: git + "/config", atomically: false, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: git + "/hooks/pre-commit.sample", atomically: false, encoding: .utf8)
        try "x\n".write(toFile: git + "/objects/pack/pack-1.pack", atomically: false, encoding: .utf8)
        return git
    }

    /// The check of an adopted repository at `git`, made there.
    func tampering(_ git: String) -> String? {
        guard
            let repository = AdoptedRepository(
                root: git, movesHead: false, worktreeRoots: [(git as NSString).deletingLastPathComponent])
        else { return "cannot be opened" }
        defer { repository.close() }
        return repository.tampering(root: git, inside: git)
    }

    @Test func aDescriptorOfTheOldConfigWritesIntoNothingGitReads() throws {
        let git = try newGitDirectory()
        defer { try? FileManager.default.removeItem(atPath: (git as NSString).deletingLastPathComponent) }
        chmod(git + "/config", 0o640)
        let held = open(git + "/config", O_WRONLY)
        #expect(held >= 0)
        defer { close(held) }
        let root = open(git, O_RDONLY | O_DIRECTORY)
        defer { close(root) }

        FreshCopy.renewCheckedFiles(root: root)
        _ = "[core]\n\tfsmonitor = \"touch /tmp/x\"\n".withCString { write(held, $0, strlen($0)) }

        let read = try String(contentsOfFile: git + "/config", encoding: .utf8)
        #expect(read == "[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
        var info = stat()
        #expect(stat(git + "/config", &info) == 0 && info.st_mode & 0o777 == 0o640)
        // Nothing of the copy is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: git).filter { $0.hasPrefix(".airlock") }.isEmpty)
    }

    @Test func aFreshRepositoryAndEverydayGitStateAreNotTampering() throws {
        let git = try newGitDirectory()
        defer { try? FileManager.default.removeItem(atPath: (git as NSString).deletingLastPathComponent) }
        #expect(tampering(git) == nil)
        // What `git worktree add` writes, through the filter.
        let worktree = (git as NSString).deletingLastPathComponent + "/wt"
        try FileManager.default.createDirectory(atPath: git + "/worktrees/wt", withIntermediateDirectories: true)
        try "../..\n".write(toFile: git + "/worktrees/wt/commondir", atomically: false, encoding: .utf8)
        try (worktree + "/.git\n").write(toFile: git + "/worktrees/wt/gitdir", atomically: false, encoding: .utf8)
        #expect(tampering(git) == nil)
        // Caught between gitdir's truncating open and its write: it names nothing yet.
        try "".write(toFile: git + "/worktrees/wt/gitdir", atomically: false, encoding: .utf8)
        #expect(tampering(git) == nil)
        // Companion: a gitdir that names a place outside is still refused.
        try "/elsewhere/.git\n".write(toFile: git + "/worktrees/wt/gitdir", atomically: false, encoding: .utf8)
        #expect(tampering(git)?.contains("gitdir may only name a place in the workspace") == true)
    }

    @Test func controlStateTheFilterNeverWritesIsTampering() throws {
        let cases: [(String, String, String)] = [
            ("hooks/post-checkout", "#!/bin/sh\n", "hooks/post-checkout"),
            ("info/attributes", "* filter=x\n", "info/attributes"),
            ("objects/info/alternates", "/elsewhere\n", "alternates"),
            ("config", "[core]\n\tfsmonitor = \"touch /tmp/x\"\n", "config"),
            ("worktrees/wt/commondir", "/elsewhere\n", "commondir"),
        ]
        for (file, content, said) in cases {
            let git = try newGitDirectory()
            defer { try? FileManager.default.removeItem(atPath: (git as NSString).deletingLastPathComponent) }
            try FileManager.default.createDirectory(
                atPath: ((git + "/" + file) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: git + "/" + file, atomically: false, encoding: .utf8)
            let problem = tampering(git)
            #expect(problem?.contains(said) == true, "\(file): \(problem ?? "nil")")
        }
    }

    @Test func aLinkInPlaceOfConfigOrHooksIsTampering() throws {
        let git = try newGitDirectory()
        defer { try? FileManager.default.removeItem(atPath: (git as NSString).deletingLastPathComponent) }
        unlink(git + "/config")
        symlink("/etc/hostname", git + "/config")
        #expect(tampering(git)?.contains("not a plain file") == true)
        unlink(git + "/config")
        rmdir(git + "/hooks/pre-commit.sample")
        try FileManager.default.removeItem(atPath: git + "/hooks")
        symlink("/tmp", git + "/hooks")
        #expect(tampering(git)?.contains("hooks") == true)
    }

    @Test func aMovedRepositoryIsFoundWhereItIsNow() throws {
        let git = try newGitDirectory()
        let top = (git as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: top + "-moved") }
        let repository = try #require(AdoptedRepository(root: git, movesHead: false, worktreeRoots: []))
        defer { repository.close() }
        #expect(rename(top, top + "-moved") == 0)
        #expect(repository.currentRoot() == top + "-moved/.git")
        #expect(repository.movedAway(from: top + "-moved/.git") == top + "-moved/.git")
        try FileManager.default.removeItem(atPath: top + "-moved")
        #expect(repository.currentRoot() == nil)
    }

    @Test func onlyControlDirectoriesAreWatched() throws {
        let git = try newGitDirectory()
        defer { try? FileManager.default.removeItem(atPath: (git as NSString).deletingLastPathComponent) }
        let watched = Set(AdoptedRepository.controlDirectories(under: git).map { $0.joined(separator: "/") })
        #expect(watched == ["", "hooks", "info", "objects", "objects/info"])
    }
}
