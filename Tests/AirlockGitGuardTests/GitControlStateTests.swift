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
            "logs/HEAD", "COMMIT_EDITMSG", "rebase-merge/done", "packed-refs.lock", "info/exclude",
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
            "info/attributes", "objects/info/alternates", "modules/a/refs/x/config.worktree",
            "modules/a/refs/x/hooks/x",
            "modules/sub/hooks/post-checkout", "modules/sub/commondir", "modules/a/b/info/attributes",
            "worktrees/wt/config.worktree", "modules/sub/modules/inner/hooks/pre-commit",
        ] {
            #expect(refused(.createFile(path(file))), "\(file)")
            #expect(refused(.write(path(file))), "\(file)")
        }
        #expect(refused(.remove(path("config"), isDirectory: false)))
        #expect(refused(.remove(path("hooks/pre-commit"), isDirectory: false)))
        #expect(decide(.createSymlink(path("tAbC123"), target: "testing")) == .allow)  // git init's probe
        #expect(decide(.createSymlink(path("modules/sub/tAbC123"), target: "testing")) == .allow)
        #expect(refused(.createSymlink(path("tAbC123"), target: "/home/u/.bashrc")))
        #expect(refused(.createSymlink(path("COMMIT_EDITMSG"), target: "testing")))
        #expect(refused(.createSymlink(path("logs/HEAD"), target: "/home/u/.bashrc")))
        #expect(refused(.createSymlink(path("refs/tAbC123"), target: "testing")))
        #expect(refused(.createSymlink(path("rebase-merge"), target: "testing")))
        #expect(refused(.createSymlink(path("hooks/pre-commit"), target: "testing")))
        #expect(refused(.changeMode(path("hooks/pre-commit"))))
        #expect(decide(.changeMode(path("config"))) == .allow)
        #expect(refused(.createSpecial(path("objects/fifo"))))
    }

    @Test func movesCannotCarryControlState() {
        // A prepared directory moved into place would become a nested git directory.
        #expect(refused(.rename(from: path("refs/x"), to: path("modules/evil"), isDirectory: true)))
        #expect(refused(.rename(from: path("refs/x"), to: path("worktrees/evil"), isDirectory: true)))
        #expect(refused(.rename(from: path("refs/x"), to: path("hooks"), isDirectory: true)))
        #expect(refused(.rename(from: path("prepared"), to: path("rebase-merge"), isDirectory: true)))
        #expect(refused(.rename(from: path("prepared"), to: path("modules/sub/sequencer"), isDirectory: true)))
        #expect(decide(.createDirectory(path("rebase-merge"))) == .allow)
        #expect(decide(.remove(path("rebase-merge"), isDirectory: true)) == .allow)
        #expect(refused(.rename(from: path("hooks"), to: path("old-hooks"), isDirectory: true)))
        #expect(refused(.rename(from: path("x"), to: path("hooks/pre-commit"), isDirectory: false)))
        #expect(refused(.rename(from: path("x"), to: path("commondir"), isDirectory: false)))
        #expect(refused(.rename(from: path("config"), to: path("config.bak"), isDirectory: false)))
        #expect(refused(.hardLink(from: path("refs/heads/x"), to: path("hooks/pre-commit"))))
        #expect(refused(.hardLink(from: path("config"), to: path("refs/heads/x"))))
        // Replacing a config file is checked by content.
        #expect(
            decide(.rename(from: path("config.lock"), to: path("config"), isDirectory: false)) == .checkRename(.config))
        #expect(
            decide(.rename(from: path("modules/sub/config.lock"), to: path("modules/sub/config"), isDirectory: false))
                == .checkRename(.config))
    }

    @Test func worktreeLinksAreCheckedAsWritten() {
        #expect(decide(.createFile(path("worktrees/wt/commondir"))) == .allowChecked(.commondir))
        #expect(decide(.createFile(path("worktrees/wt/gitdir"))) == .allowChecked(.gitdir))
        #expect(refused(.createFile(path("commondir"))))
        let context = GitCheckedContent.Context(
            directory: "/home/u/proj/.git/worktrees/wt", nested: true, roots: ["/home/u/proj"])
        func accepts(_ text: String, _ file: GitControlState.CheckedFile, partial: Bool = true) -> Bool {
            GitCheckedContent.refusal(text, file: file, partial: partial, context: context) == nil
        }
        #expect(accepts("../..\n", .commondir))
        #expect(accepts("../", .commondir))
        #expect(!accepts("../", .commondir, partial: false))
        #expect(!accepts("/tmp/evil", .commondir))
        #expect(!accepts("../../../x", .commondir))
        #expect(accepts("/home/u/proj/wt/.git\n", .gitdir))
        #expect(!accepts("/home/u", .gitdir))
        #expect(!accepts("/etc/x", .gitdir))
        #expect(!accepts("/home/u/proj/../../etc", .gitdir))
        #expect(!accepts("/home/u/projx/.git", .gitdir))
    }

    @Test func operationsInProgressRunNothingOnContinue() {
        #expect(decide(.createFile(path("rebase-merge/git-rebase-todo"))) == .allowChecked(.todo))
        #expect(
            decide(
                .rename(
                    from: path("rebase-merge/git-rebase-todo.lock"), to: path("rebase-merge/git-rebase-todo"),
                    isDirectory: false)) == .checkRename(.todo))
        #expect(decide(.createFile(path("rebase-merge/strategy"))) == .allowChecked(.strategy))
        #expect(
            decide(.rename(from: path("sequencer/opts.lock"), to: path("sequencer/opts"), isDirectory: false))
                == .checkRename(.sequencerOptions))
        #expect(decide(.createFile(path("rebase-merge/done"))) == .allow)
        let context = GitCheckedContent.Context(directory: "/p/.git/rebase-merge", nested: false, roots: ["/p"])
        func refusal(_ text: String, _ file: GitControlState.CheckedFile) -> String? {
            GitCheckedContent.refusal(text, file: file, partial: false, context: context)
        }
        #expect(refusal("pick abc one\n# exec in a comment\nfixup def two\n", .todo) == nil)
        #expect(refusal("pick abc one\nexec touch /tmp/x\n", .todo) != nil)
        #expect(refusal("pick abc one\n  x make\n", .todo) != nil)
        #expect(refusal("noop\r\nexec touch /tmp/x\r\n", .todo) != nil)
        #expect(refusal("ort\n", .strategy) == nil)
        #expect(refusal("x/../.atk/evil\n", .strategy) != nil)
        #expect(refusal("[options]\n\tstrategy = recursive\n", .sequencerOptions) == nil)
        #expect(refusal("[options]\n\tstrategy = x/../evil\n", .sequencerOptions) != nil)
    }

    @Test func ambiguousModuleNamesTakeTheStrictestReading() {
        // `config` of module `a/b`, or `b/config` of module `a`.
        #expect(GitControlState.classify(path("modules/a/b/config"), isFile: true).kind == .checked(.config))
        #expect(GitControlState.classify(path("modules/a/b/hooks/x"), isFile: true).kind == .control)
        #expect(GitControlState.classify(path("modules/a/b"), isFile: false).kind == .controlDirectory)
        #expect(GitControlState.classify(path("modules/sub/index.lock"), isFile: true).kind == .data)
        // No module is named with a git directory's entry as a step.
        #expect(decide(.createDirectory(path("modules/vendor/refs/remotes/origin"))) == .allow)
        #expect(decide(.createFile(path("modules/vendor/refs/remotes/origin/main.lock"))) == .allow)
        #expect(GitControlState.isNestedGitDirectory(path("modules/a/b")))
        #expect(GitControlState.isNestedGitDirectory(path("modules/a/modules/b")))
        #expect(GitControlState.isNestedGitDirectory(path("worktrees/wt")))
        #expect(GitControlState.isNestedGitDirectory(path("modules/a/refs/b")))
        #expect(!GitControlState.isNestedGitDirectory(path("modules")))
        #expect(!GitControlState.isNestedGitDirectory(path("worktrees/wt/x")))
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

    @Test func valuesReadAsGitReadsThem() throws {
        // Blanks count once something is in the value, and each is one space; quotes group.
        func value(_ line: String) throws -> String? {
            try GitConfigFile(parsing: "[s]\n\tk = " + line + "\n").entries.first?.value
        }
        #expect(try value("\"\" !touch x") == "!touch x")
        #expect(try value("a\t\tb") == "a  b")
        #expect(try value("\"a  b\"  # c") == "a  b")
        #expect(try value("a\\\n   b") == "a   b")
        #expect(try value("\\\n   !cmd") == "!cmd")
        #expect(try GitConfigFile(parsing: "[s]\r\n\tk = v\r\n").entries.first?.value == "v")
        #expect(try GitConfigFile(parsing: "\u{FEFF}[core]fsmonitor=x").entries.map(\.key) == ["core.fsmonitor"])
        #expect(try GitConfigFile(parsing: "[a.b \"C\"]\n\tx = 1\n").entries.first?.key == "a.b.C.x")
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[s]\nk # c\n") }
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[s \"x\" ]\nk\n") }
    }

    @Test func refusesMalformedFiles() {
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "key = value\n") }
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[core\nx = 1\n") }
        #expect(throws: GitConfigFile.ParseError.self) { try GitConfigFile(parsing: "[core]\nx = \"open\n") }
    }

    let top = GitCheckedContent.Context(directory: "/p/.git", nested: false, roots: ["/p"])
    let module = GitCheckedContent.Context(directory: "/p/.git/modules/sub", nested: true, roots: ["/p"])

    @Test func aWorktreeSettingOnlyForASubmoduleInTheWorkspace() {
        #expect(GitConfigSafety.refusal(replacing: nil, with: "[core]\n\tworktree = /home/u\n", context: top) != nil)
        #expect(
            GitConfigSafety.refusal(replacing: nil, with: "[core]\n\tworktree = ../../../sub\n", context: module) == nil
        )
        #expect(
            GitConfigSafety.refusal(replacing: nil, with: "[core]\n\tworktree = ../../../../etc\n", context: module)
                != nil)
        #expect(GitConfigSafety.refusal(replacing: nil, with: "[core]\n\tworktree = /home/u\n", context: module) != nil)
        #expect(
            GitConfigSafety.refusal(replacing: nil, with: "[submodule \"s\"]\n\tupdate = \"\" !x\n", context: top)
                != nil)
    }

    @Test func onlyDataSettingsMayBeAdded() {
        let old = "[core]\n\tbare = false\n\tpager = less\n"
        // The user's own setting stays; a remote, a branch and an identity may be added.
        #expect(
            GitConfigSafety.refusal(
                replacing: old,
                with: old
                    + "[remote \"origin\"]\n\turl = https://x/y.git\n[user]\n\tname = A\n[branch \"m\"]\n\tremote = origin\n",
                context: top) == nil)
        for added in [
            "[core]\n\tfsmonitor = touch /tmp/x\n", "[core]\n\thooksPath = /tmp\n", "[core]\n\tpager = evil\n",
            "[alias]\n\tst = !evil\n", "[include]\n\tpath = ../x\n", "[includeIf \"gitdir:/\"]\n\tpath = x\n",
            "[remote \"o\"]\n\turl = ext::sh -c evil\n", "[remote \"o\"]\n\tuploadpack = evil\n",
            "[submodule \"s\"]\n\tupdate = !evil\n", "[filter \"lfs\"]\n\tclean = evil\n",
            "[diff]\n\texternal = evil\n",
            "[credential]\n\thelper = evil\n", "[core]\n\tsshCommand = evil\n", "[commit]\n\tgpgsign = true\n",
        ] {
            #expect(GitConfigSafety.refusal(replacing: old, with: old + added, context: top) != nil, "\(added)")
        }
        // A changed value of a command setting is an addition too.
        #expect(
            GitConfigSafety.refusal(replacing: old, with: "[core]\n\tbare = false\n\tpager = evil\n", context: top)
                != nil)
        // Removing settings is fine; an unreadable file is refused.
        #expect(GitConfigSafety.refusal(replacing: old, with: "[core]\n\tbare = false\n", context: top) == nil)
        #expect(GitConfigSafety.refusal(replacing: old, with: "[core\n", context: top) != nil)
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
        #expect(GitConfigSafety.refusal(replacing: nil, with: clone, context: module) == nil)
        #expect(GitConfigSafety.refusal(replacing: nil, with: clone, context: top) != nil)
    }
}
