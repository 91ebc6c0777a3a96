import Testing

@testable import AirlockGitGuard

@Suite struct GitControlStateTests {
    func path(_ text: String) -> [String] { text.split(separator: "/").map(String.init) }

    func decide(_ operation: GitControlState.Operation) -> GitControlState.Decision {
        GitControlState.decide(operation)
    }

    func refused(_ operation: GitControlState.Operation) -> Bool {
        if case .refuse = decide(operation) { return true }
        return false
    }

    @Test func everydayGitWritesAreAllowed() {
        for file in [
            "index.lock", "HEAD.lock", "ORIG_HEAD", "objects/ab/cdef", "objects/pack/tmp_pack_1",
            "refs/heads/main.lock",
            "logs/HEAD", "COMMIT_EDITMSG", "rebase-merge/git-rebase-todo", "packed-refs.lock", "info/exclude",
            "hooks/pre-commit.sample", "modules/sub/index.lock", "modules/sub/HEAD", "modules/lib/a/config.lock",
            "modules/sub/hooks/update.sample", "worktrees/wt/HEAD", "worktrees/wt/index.lock", "worktrees/wt/locked",
        ] {
            #expect(decide(.createFile(path(file))) == .allow, "\(file)")
        }
        for directory in ["modules", "modules/sub", "modules/sub/hooks", "worktrees/wt", "refs/heads/x", "hooks"] {
            #expect(decide(.createDirectory(path(directory))) == .allow, "\(directory)")
        }
        #expect(decide(.rename(from: path("index.lock"), to: path("index"), isDirectory: false)) == .allow)
        #expect(decide(.rename(from: path("refs/heads/a"), to: path("refs/heads/b"), isDirectory: true)) == .allow)
        #expect(decide(.remove(path("worktrees"), isDirectory: true)) == .allow)
        #expect(decide(.remove(path("worktrees/wt/commondir"), isDirectory: false)) == .allow)
    }

    @Test func controlStateCannotBeWritten() {
        for file in [
            "config", "commondir", "gitdir", "config.worktree", "hooks/pre-commit", "hooks/post-checkout",
            "info/attributes", "objects/info/alternates", "branches/origin", "remotes/origin",
            "modules/sub/hooks/post-checkout", "modules/sub/commondir", "modules/a/b/info/attributes",
            "worktrees/wt/config.worktree", "modules/sub/modules/inner/hooks/pre-commit",
        ] {
            #expect(refused(.createFile(path(file))), "\(file)")
            #expect(refused(.write(path(file))), "\(file)")
        }
        #expect(refused(.remove(path("config"), isDirectory: false)))
        #expect(refused(.remove(path("hooks/pre-commit"), isDirectory: false)))
        #expect(refused(.createSymlink(path("refs/heads/x"))))
        #expect(refused(.createSpecial(path("objects/fifo"))))
    }

    @Test func movesCannotCarryControlState() {
        // A prepared directory moved into place would become a nested git directory.
        #expect(refused(.rename(from: path("refs/x"), to: path("modules/evil"), isDirectory: true)))
        #expect(refused(.rename(from: path("refs/x"), to: path("worktrees/evil"), isDirectory: true)))
        #expect(refused(.rename(from: path("refs/x"), to: path("hooks"), isDirectory: true)))
        #expect(refused(.rename(from: path("hooks"), to: path("old-hooks"), isDirectory: true)))
        #expect(refused(.rename(from: path("x"), to: path("hooks/pre-commit"), isDirectory: false)))
        #expect(refused(.rename(from: path("x"), to: path("commondir"), isDirectory: false)))
        #expect(refused(.rename(from: path("config"), to: path("config.bak"), isDirectory: false)))
        #expect(refused(.hardLink(from: path("refs/heads/x"), to: path("hooks/pre-commit"))))
        #expect(refused(.hardLink(from: path("config"), to: path("refs/heads/x"))))
        // Replacing a config file is checked by content.
        #expect(decide(.rename(from: path("config.lock"), to: path("config"), isDirectory: false)) == .checkConfig)
        #expect(
            decide(.rename(from: path("modules/sub/config.lock"), to: path("modules/sub/config"), isDirectory: false))
                == .checkConfig)
    }

    @Test func worktreeLinksAreCheckedAsWritten() {
        #expect(decide(.createFile(path("worktrees/wt/commondir"))) == .allowChecked(.commondir))
        #expect(decide(.createFile(path("worktrees/wt/gitdir"))) == .allowChecked(.gitdir))
        #expect(refused(.createFile(path("commondir"))))
        let roots = ["/home/u/proj"]
        #expect(GitWorktreeLinks.accepts("../..\n", link: .commondir, worktreeRoots: roots))
        #expect(GitWorktreeLinks.accepts("../", link: .commondir, worktreeRoots: roots))
        #expect(!GitWorktreeLinks.accepts("/tmp/evil", link: .commondir, worktreeRoots: roots))
        #expect(!GitWorktreeLinks.accepts("../../../x", link: .commondir, worktreeRoots: roots))
        #expect(GitWorktreeLinks.accepts("/home/u/proj/wt/.git\n", link: .gitdir, worktreeRoots: roots))
        #expect(GitWorktreeLinks.accepts("/home/u", link: .gitdir, worktreeRoots: roots))
        #expect(!GitWorktreeLinks.accepts("/etc/x", link: .gitdir, worktreeRoots: roots))
        #expect(!GitWorktreeLinks.accepts("/home/u/proj/../../etc", link: .gitdir, worktreeRoots: roots))
        #expect(!GitWorktreeLinks.accepts("/home/u/projx/.git", link: .gitdir, worktreeRoots: roots))
    }

    @Test func ambiguousModuleNamesTakeTheStrictestReading() {
        // `config` of module `a/b`, or `b/config` of module `a`.
        #expect(GitControlState.classify(path("modules/a/b/config"), isFile: true).kind == .config)
        #expect(GitControlState.classify(path("modules/a/b/hooks/x"), isFile: true).kind == .control)
        #expect(GitControlState.classify(path("modules/a/b"), isFile: false).kind == .controlDirectory)
        #expect(GitControlState.classify(path("modules/sub/index.lock"), isFile: true).kind == .data)
        let deep = Array(repeating: "modules", count: 40)
        #expect(GitControlState.classify(deep).kind == .control)
    }
}

@Suite struct GitConfigFileTests {
    @Test func readsWhatGitReads() throws {
        let text = """
            # a comment
            [core]
            \trepositoryformatversion = 0
            \tbare
            [remote "origin"]
            \turl = "https://example.com/a b.git" ; trailing comment
            \tfetch = +refs/heads/*:refs/remotes/origin/*
            [Branch.Main]
            \tmerge = refs/heads/main
            [alias]
            \tlong = !echo \\
            continued
            """
        let config = try GitConfigFile(parsing: text)
        #expect(
            config.entries.map(\.key) == [
                "core.repositoryformatversion", "core.bare", "remote.origin.url", "remote.origin.fetch",
                "branch.main.merge", "alias.long",
            ])
        #expect(config.entries[1].value == nil)
        #expect(config.entries[2].value == "https://example.com/a b.git")
        #expect(config.entries[5].value == "!echo continued")
    }

    @Test func refusesMalformedFiles() {
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "key = value\n") }
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[core\nx = 1\n") }
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[core]\nx = \"open\n") }
    }

    @Test func onlyDataSettingsMayBeAdded() {
        let old = "[core]\n\tbare = false\n\tpager = less\n"
        // The user's own setting stays; a remote, a branch and an identity may be added.
        #expect(
            GitConfigSafety.refusal(
                replacing: old,
                with: old
                    + "[remote \"origin\"]\n\turl = https://x/y.git\n[user]\n\tname = A\n[branch \"m\"]\n\tremote = origin\n"
            )
                == nil)
        for added in [
            "[core]\n\tfsmonitor = touch /tmp/x\n", "[core]\n\thooksPath = /tmp\n", "[core]\n\tpager = evil\n",
            "[alias]\n\tst = !evil\n", "[include]\n\tpath = ../x\n", "[includeIf \"gitdir:/\"]\n\tpath = x\n",
            "[remote \"o\"]\n\turl = ext::sh -c evil\n", "[remote \"o\"]\n\tuploadpack = evil\n",
            "[submodule \"s\"]\n\tupdate = !evil\n", "[filter \"lfs\"]\n\tclean = evil\n",
            "[diff]\n\texternal = evil\n",
            "[credential]\n\thelper = evil\n", "[core]\n\tsshCommand = evil\n", "[commit]\n\tgpgsign = true\n",
        ] {
            #expect(GitConfigSafety.refusal(replacing: old, with: old + added) != nil, "\(added)")
        }
        // A changed value of a command setting is an addition too.
        #expect(GitConfigSafety.refusal(replacing: old, with: "[core]\n\tbare = false\n\tpager = evil\n") != nil)
        // Removing settings is fine; an unreadable file is refused.
        #expect(GitConfigSafety.refusal(replacing: old, with: "[core]\n\tbare = false\n") == nil)
        #expect(GitConfigSafety.refusal(replacing: old, with: "[core\n") != nil)
        // A new submodule's config, as git clone writes it.
        let clone = """
            [core]
            \trepositoryformatversion = 0
            \tfilemode = true
            \tbare = false
            \tlogallrefupdates = true
            \tworktree = ../../../sub
            [remote "origin"]
            \turl = /tmp/subsrc
            \tfetch = +refs/heads/*:refs/remotes/origin/*
            [branch "master"]
            \tremote = origin
            \tmerge = refs/heads/master
            """
        #expect(GitConfigSafety.refusal(replacing: nil, with: clone) == nil)
    }
}
