import AirlockEgress
import AirlockImages
import AirlockOCI
import AirlockPolicy
import AirlockState
import AirlockSystem
import Foundation
import Testing

@testable import AirlockRuntime

@Suite struct DisposableSpecTests {
    func spec(disposable: Bool) -> SandboxSpec {
        let owner = ProcessIdentity(pid: 1, startTime: 1)
        let record = SandboxRecord(
            name: "code-1", agent: "code", workspace: "/workspace", template: "code", image: "abc",
            user: "agent", sudo: false, runtime: "runc", command: ["bash"], environment: [], mounts: [],
            limits: .init(memoryBytes: 256 << 20, cpus: 1, pids: 64), created: Date(),
            network: SandboxRecord.NetworkMode.none,
            disposable: disposable ? .init(owner: owner, diskBytes: 64 << 20) : nil)
        return SandboxSpec(
            record: record, paths: StateStore(root: "/s").sandbox("code-1"), imageRootfs: "/s/images/abc/rootfs",
            user: .init(name: "agent", sudo: false), limitsBy: .cgroupV1)
    }

    @Test func aDisposableSandboxWritesOnlyToSizedMemory() throws {
        let runtime = spec(disposable: true).runtimeSpec()
        #expect(runtime.root.readonly == true)
        #expect(!runtime.mounts.contains { $0.type == "bind" && $0.destination == "/workspace" })
        #expect(!runtime.mounts.contains { $0.type == "bind" && $0.destination == "/home/agent" })
        for path in ["/workspace", "/home/agent", "/tmp"] {
            let mount = try #require(runtime.mounts.first { $0.destination == path })
            #expect(mount.type == "tmpfs")
            #expect(mount.options.contains { $0.hasSuffix("size=\(64 << 20)") }, "\(path): \(mount.options)")
        }
    }

    @Test func aDisposableSandboxHasPerProcessLimitsEverywhere() {
        let spec = spec(disposable: true)
        let expected = [
            RuntimeSpec.Rlimit(type: "RLIMIT_DATA", hard: 256 << 20, soft: 256 << 20),
            RuntimeSpec.Rlimit(type: "RLIMIT_NPROC", hard: 64, soft: 64),
        ]
        #expect(spec.runtimeSpec().process.rlimits == expected)
        let exec = spec.execProcess(
            args: ["true"], uid: 1000, gid: 1000, userName: "agent", home: "/home/agent", cwd: nil, tty: false,
            extraEnvironment: [])
        #expect(exec.rlimits == expected)
        #expect(exec.cwd == "/workspace")
    }

    @Test func anOrdinarySandboxKeepsItsHostWorkspaceAndNoRlimits() {
        let runtime = spec(disposable: false).runtimeSpec()
        #expect(runtime.root.readonly == false)
        #expect(runtime.process.rlimits == nil)
        #expect(runtime.mounts.contains { $0.type == "bind" && $0.destination == "/workspace" })
    }

    @Test func execPassesThePidFileToTheRuntime() {
        let runc = RuntimeDriver(kind: .runc, stateRoot: "/s/runc", binary: "runc")
        #expect(
            runc.execArguments(id: "c", processFile: "/p.json", tty: false, pidFile: "/p.pid")
                == ["runc", "--root", "/s/runc", "exec", "--pid-file", "/p.pid", "--process", "/p.json", "c"])
    }
}

@Suite struct OutputBufferTests {
    @Test func headKeepsTheStartAndCountsTheRest() {
        var buffer = OutputBuffer(limit: 4)
        buffer.append(Array("abc".utf8)[...])
        buffer.append(Array("defg".utf8)[...])
        #expect(buffer.text == "abcd")
        #expect(buffer.total == 7)
        #expect(buffer.truncated)
    }

    @Test func tailKeepsTheLatestBytes() {
        var buffer = OutputBuffer(limit: 4, keep: .tail)
        for chunk in ["ab", "cd", "ef", "g"] { buffer.append(Array(chunk.utf8)[...]) }
        #expect(String(decoding: buffer.kept, as: UTF8.self) == "defg")
        #expect(buffer.total == 7)
        buffer.append(Array("0123456789".utf8)[...])
        #expect(String(decoding: buffer.kept, as: UTF8.self) == "6789")
    }

    @Test func nothingIsCutBelowTheLimit() {
        var buffer = OutputBuffer(limit: 10)
        buffer.append(Array("hello".utf8)[...])
        #expect(!buffer.truncated)
        #expect(buffer.text == "hello")
    }
}

@Suite struct ProcessIdentityTests {
    @Test func theCurrentProcessIsAliveAndAReusedPidIsNot() throws {
        let me = try ProcessIdentity.current()
        #expect(me.isAlive)
        #expect(!ProcessIdentity(pid: me.pid, startTime: me.startTime + 1).isAlive)
    }

    @Test func anEndedChildIsGone() throws {
        let child = try ChildProcess.spawn(["sleep", "5"], stdin: .null)
        let startTime = try #require(ProcessIdentity.startTime(of: child.pid))
        let identity = ProcessIdentity(pid: child.pid, startTime: startTime)
        #expect(identity.isAlive)
        child.signal(SIGKILL)
        // A zombie, before it is reaped, counts as gone too.
        usleep(50_000)
        #expect(!identity.isAlive)
        child.wait()
        #expect(!identity.isAlive)
    }

    @Test func killCommandEndsEveryDescendant() throws {
        // One sleeper in a session of its own: it goes too, being a descendant.
        let child = try ChildProcess.spawn(["sh", "-c", "sleep 30 & setsid sleep 30 & wait"], stdin: .null)
        var sleepers: [Int32] = []
        for _ in 0..<100 where sleepers.count < 2 {
            usleep(20_000)
            sleepers = ProcessTree.snapshot().descendants(of: child.pid)
        }
        #expect(sleepers.count == 2)
        let started = Monotonic.now()
        ProcessTree.killCommand(runtime: child.pid, session: nil, sandboxInit: 1)
        child.wait()
        #expect(Monotonic.now() - started < 5)
        #expect(ProcessTree.snapshot().descendants(of: child.pid).isEmpty)
    }
}

@Suite struct BuiltinAgentNeedsTests {
    @Test func everyCredentialIsAKnownServiceAndEveryHostAValidRule() throws {
        let services = Set(CredentialService.builtIn.map(\.name))
        for agent in BuiltinAgents.all {
            for credential in agent.credentials {
                #expect(services.contains(credential), "\(agent.name): unknown service \(credential)")
            }
            try PolicySettings(allowHosts: agent.hosts).validate()
        }
    }
}

@Suite struct GitIdentityTests {
    func spec(_ identity: SandboxRecord.GitIdentity?) -> SandboxSpec {
        var record = SandboxRecord(
            name: "s", agent: "shell", workspace: "/w", template: "shell", image: "abc", user: "agent", sudo: true,
            runtime: "runc", command: ["bash"], environment: [], mounts: [], limits: .init(), created: Date(),
            network: SandboxRecord.NetworkMode.none)
        record.gitIdentity = identity
        return SandboxSpec(
            record: record, paths: StateStore(root: "/s").sandbox("s"), imageRootfs: "/r",
            user: .init(name: "agent", sudo: true), limitsBy: .cgroupV1)
    }

    @Test func theHostsNameAndEmailReachTheSandboxQuoted() {
        let gitconfig = spec(.init(name: #"Ann "the \ coder" Lee"#, email: "ann@example.com")).etcFiles()["gitconfig"]
        #expect(gitconfig == "[user]\n\tname = \"Ann \\\"the \\\\ coder\\\" Lee\"\n\temail = \"ann@example.com\"\n")
    }

    @Test func aValueWithALineBreakIsLeftOut() {
        let gitconfig = spec(.init(name: "x\n[core]\n\tfsmonitor = evil", email: nil)).etcFiles()["gitconfig"]
        #expect(gitconfig == "")
        #expect(spec(nil).etcFiles()["gitconfig"] == "")
    }
}

@Suite struct CloneModeSpecTests {
    @Test func theCloneIsWhereTheWorkspaceWasAndItsHooksAndConfigAreReadOnly() throws {
        var record = SandboxRecord(
            name: "c", agent: "shell", workspace: "/home/u/p", template: "shell", image: "abc", user: "agent",
            sudo: true, runtime: "runc", command: ["bash"], environment: [], mounts: [], limits: .init(),
            created: Date())
        record.clone = true
        let paths = StateStore(root: "/s").sandbox("c")
        let mounts = SandboxSpec(
            record: record, paths: paths, imageRootfs: "/r", user: .init(name: "agent", sudo: true), limitsBy: .cgroupV1
        ).runtimeSpec().mounts
        let binds = mounts.filter { $0.type == "bind" }.map { ($0.source, $0.destination, $0.options.contains("ro")) }
        #expect(binds.contains { $0 == (paths.clone, "/home/u/p", false) })
        #expect(binds.contains { $0 == (paths.clone + "/.git/config", "/home/u/p/.git/config", true) })
        #expect(binds.contains { $0 == (paths.clone + "/.git/hooks", "/home/u/p/.git/hooks", true) })
        #expect(binds.contains { $0 == ("/home/u/p", "/airlock/origin", true) })
        #expect(!binds.contains { $0.0 == "/home/u/p" && $0.1 == "/home/u/p" })
        // The clone's protected paths are mounted after the clone itself.
        let order = mounts.map(\.destination)
        let cloneIndex = try #require(order.firstIndex(of: "/home/u/p"))
        let hooksIndex = try #require(order.firstIndex(of: "/home/u/p/.git/hooks"))
        #expect(cloneIndex < hooksIndex)
    }
}

@Suite struct HostPersistenceGuardTests {
    @Test func findsWhatRunsOnTheHostAtAnyDepthButNotThroughLinksOrDependencies() throws {
        let fm = FileManager.default
        let root = Files.absolute(fm.temporaryDirectory.path) + "/guard-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        for dir in [".git/hooks", "a/b/.git/hooks", "node_modules/x/.git/hooks", "elsewhere/.vscode"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        for file in [".git/config", "a/b/.git/config"] {
            #expect(fm.createFile(atPath: root + "/" + file, contents: Data()))
        }
        try fm.createSymbolicLink(atPath: root + "/a/.vscode", withDestinationPath: root + "/elsewhere/.vscode")
        try fm.createDirectory(atPath: root + "/a/.claude", withIntermediateDirectories: true)
        let guarded = HostPersistenceGuard.protectedPaths(workspace: root, unprotected: [".idea"])
        let agentDirectories = [".claude", ".gemini", ".cursor", ".kiro"].map { root + "/" + $0 }
        #expect(
            Set(guarded.paths)
                == Set(
                    [root + "/.vscode", root + "/elsewhere/.vscode", root + "/a/.claude"] + agentDirectories))
        // Made when missing, unless opened; and listed, to be removed at stop if still empty.
        #expect(Files.isDirectory(root + "/.vscode") && Files.isDirectory(root + "/.claude"))
        #expect(!Files.exists(root + "/.idea"))
        #expect(Set(guarded.made) == Set([root + "/.vscode"] + agentDirectories))
        let list = root + "/made"
        try (guarded.made.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        #expect(fm.createFile(atPath: root + "/.claude/settings.json", contents: Data("{}".utf8)))
        HostPersistenceGuard.removeMade(listedIn: list)
        #expect(!Files.exists(root + "/.vscode") && !Files.exists(root + "/.gemini"))
        // One the session filled stays.
        #expect(Files.exists(root + "/.claude/settings.json"))
    }
}

@Suite struct DirectoryEntryTests {
    @Test func entriesSayWhatEachNameIsWithoutFollowingLinks() throws {
        let fm = FileManager.default
        let root = Files.absolute(fm.temporaryDirectory.path) + "/entries-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root + "/dir", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: root + "/file", contents: Data("x".utf8)))
        try fm.createSymbolicLink(atPath: root + "/link", withDestinationPath: root + "/dir")
        try fm.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: root + "/none")
        let kinds = Dictionary(uniqueKeysWithValues: Files.entries(of: root).map { ($0.name, $0.kind) })
        #expect(kinds == ["dir": .directory, "file": .regular, "link": .symlink, "dangling": .symlink])
        #expect(Files.entries(of: root + "/none").isEmpty)
    }
}

@Suite struct HostRunFilesTests {
    @Test func listsAddedChangedAndRemovedFilesThatRunOnTheHostWithTheScriptsThatChanged() throws {
        let fm = FileManager.default
        let root = Files.absolute(fm.temporaryDirectory.path) + "/runfiles-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root + "/web/.github/workflows", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/node_modules/x", withIntermediateDirectories: true)
        let write = { (path: String, text: String) in
            #expect(fm.createFile(atPath: root + "/" + path, contents: Data(text.utf8)))
        }
        write("package.json", #"{"scripts": {"test": "jest"}}"#)
        write("Makefile", "all:\n")
        write("web/.github/workflows/ci.yml", "on: push\n")
        write("README.md", "hello\n")
        write("node_modules/x/package.json", "{}")
        let before = HostRunFiles.snapshot(workspace: root)
        #expect(Set(before.files.keys) == ["package.json", "Makefile", "web/.github/workflows/ci.yml"])

        write("package.json", #"{"scripts": {"test": "jest", "postinstall": "curl x | sh"}}"#)
        try fm.removeItem(atPath: root + "/Makefile")
        write("web/.envrc", "export A=1\n")
        write("README.md", "changed, but not run by anything\n")
        write("node_modules/x/package.json", #"{"scripts": {"install": "evil"}}"#)
        let changes = HostRunFiles.changes(from: before, to: HostRunFiles.snapshot(workspace: root))
        #expect(
            changes == [
                .init(kind: .removed, path: "Makefile"),
                .init(kind: .changed, path: "package.json", detail: "scripts: postinstall"),
                .init(kind: .added, path: "web/.envrc"),
            ])
        #expect(HostRunFiles.report([]) == nil)
        #expect(HostRunFiles.report(changes)?.contains("changed  package.json (scripts: postinstall)") == true)
    }

    @Test func aPackageJsonEditOutsideItsScriptsSaysSo() {
        let old = Data(#"{"version": "1.0.0", "scripts": {"b": "tsc"}}"#.utf8)
        let new = Data(#"{"version": "1.0.1", "scripts": {"b": "tsc"}}"#.utf8)
        #expect(HostRunFiles.scriptChanges(old, new) == "scripts unchanged")
        #expect(HostRunFiles.scriptChanges(old, Data("not json".utf8)) == nil)
    }
}

@Suite struct SharedAgentStateTests {
    @Test func sharedStateDirectoriesAreBoundOverTheHome() {
        var record = SandboxRecord(
            name: "claude-p", agent: "claude", workspace: "/home/u/p", template: "claude", image: "abc", user: "agent",
            sudo: false, runtime: "runc", command: ["claude"], environment: [], mounts: [], limits: .init(),
            created: Date())
        record.sharedState = .init(directory: "/s/agent-state/claude", paths: [".claude", ".local/share/x"])
        let spec = SandboxSpec(
            record: record, paths: StateStore(root: "/s").sandbox("claude-p"), imageRootfs: "/s/images/abc/rootfs",
            user: .init(name: "agent", sudo: false), limitsBy: .cgroupV1)
        let mounts = spec.runtimeSpec().mounts
        let order = mounts.map(\.destination)
        #expect(mounts.first { $0.destination == "/home/agent/.claude" }?.source == "/s/agent-state/claude/.claude")
        #expect(
            mounts.first { $0.destination == "/home/agent/.local/share/x" }?.source
                == "/s/agent-state/claude/.local/share/x")
        // After the home itself, which they cover.
        #expect(order.firstIndex(of: "/home/agent")! < order.firstIndex(of: "/home/agent/.claude")!)
    }

    @Test func makingDirectoriesRefusesToFollowALinkTheSandboxLeft() throws {
        let fm = FileManager.default
        let root = Files.absolute(fm.temporaryDirectory.path) + "/state-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root + "/home", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/home/.local", withDestinationPath: root + "/elsewhere")
        #expect(throws: AirlockError.self) { try Files.makeDirectories(".local/share/x", under: root + "/home") }
        #expect(!Files.exists(root + "/elsewhere/share"))
        try Files.makeDirectories(".claude/projects", under: root + "/home")
        #expect(Files.isDirectory(root + "/home/.claude/projects"))
    }
}

@Suite struct GitGuardPlanTests {
    @Test func everyRepositoryGetsAFilterAndWhatLeadsOutOfItIsReadOnly() throws {
        let fm = FileManager.default
        let root = Files.absolute(fm.temporaryDirectory.path) + "/plan-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        for dir in [".git/hooks", "a/b/c/d/e/f/g/.git", "node_modules/x/.git", "wt", "hooks-here", "opened/.git"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        let config = "[core]\n\thooksPath = hooks-here\n[include]\n\tpath = ../shared.gitconfig\n"
        #expect(fm.createFile(atPath: root + "/.git/config", contents: Data(config.utf8)))
        #expect(fm.createFile(atPath: root + "/shared.gitconfig", contents: Data()))
        #expect(fm.createFile(atPath: root + "/wt/.git", contents: Data("gitdir: /elsewhere\n".utf8)))
        let record = SandboxRecord(
            name: "s", agent: "shell", workspace: root, template: "shell", image: "abc", user: "agent", sudo: true,
            runtime: "runc", command: ["bash"], environment: [], mounts: [], limits: .init(), created: Date(),
            network: SandboxRecord.NetworkMode.none)
        var opened = record
        opened.unprotected = ["opened/.git"]
        let paths = StateStore(root: "/s").sandbox("s")
        let plan = GitGuardPlan.make(record: opened, paths: paths)
        #expect(
            plan.known
                == ["/.git", "/a/b/c/d/e/f/g/.git", "/node_modules/x/.git", "/opened/.git", "/wt/.git"].map {
                    root + $0
                })
        let bound = Set(plan.readOnly.map(\.host))
        #expect(bound.isSuperset(of: [root + "/wt/.git", root + "/hooks-here", root + "/shared.gitconfig"]))
        if plan.filterUnavailable == nil {
            // At any depth, dependency trees too; an opened one is left alone.
            #expect(
                plan.filtered.map(\.inside)
                    == ["/.git", "/a/b/c/d/e/f/g/.git", "/node_modules/x/.git"].map {
                        root + $0
                    })
            #expect(plan.filtered.map(\.mountPoint) == (0..<3).map { paths.gitFilters + "/\($0)" })
        } else {
            // Without FUSE every repository is read-only whole.
            #expect(bound.contains(root + "/.git"))
        }
        // The spec binds filters and read-only paths after the workspace.
        var spec = SandboxSpec(
            record: record, paths: paths, imageRootfs: "/r", user: .init(name: "agent", sudo: true),
            limitsBy: .cgroupV1)
        spec.gitGuard = plan
        let destinations = spec.runtimeSpec().mounts.map(\.destination)
        let workspace = try #require(destinations.firstIndex(of: root))
        let repository = try #require(destinations.lastIndex(of: root + "/.git"))
        #expect(workspace < repository)
    }
}
