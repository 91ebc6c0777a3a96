import AirlockEgress
import AirlockImages
import AirlockOCI
import AirlockState
import AirlockSystem
import Foundation
import Testing

@testable import AirlockRuntime

/// What `--docker` grants, and to whom: the engine's container gets more of the kernel, the
/// agent's gets only the socket.
@Suite struct DockerEngineTests {
    func spec(docker: Bool, protected: [String] = []) -> SandboxSpec {
        var record = SandboxRecord(
            name: "shell-app", agent: "shell", workspace: "/home/u/app", template: "shell", image: "abc",
            user: "agent", sudo: true, runtime: "runc", command: ["bash"], environment: [], mounts: [],
            limits: .init(memoryBytes: 1 << 30, cpus: 1, pids: 512), created: Date())
        record.docker = docker ? true : nil
        var spec = SandboxSpec(
            record: record, paths: StateStore(root: "/s").sandbox("shell-app"), imageRootfs: "/s/images/abc/rootfs",
            user: .init(name: "agent", sudo: true), limitsBy: .cgroupV1)
        spec.protectedPaths = protected
        return spec
    }

    func rule(_ seccomp: Seccomp?, for name: String) -> [Seccomp.Rule] {
        seccomp?.syscalls.filter { $0.names.contains(name) } ?? []
    }

    @Test func theAgentGetsTheSocketAndNothingMore() throws {
        let agent = spec(docker: true).runtimeSpec()
        let socket = try #require(agent.mounts.first { $0.destination == DockerEngine.socketDirectory })
        #expect(socket.source == "/s/sandboxes/shell-app/docker-run")
        #expect(agent.process.env.contains("DOCKER_HOST=unix:///run/airlock-docker/docker.sock"))
        #expect(agent.process.capabilities == .agent)
        #expect(rule(agent.linux.seccomp, for: "mount").first?.action == "SCMP_ACT_ERRNO")
        #expect(rule(agent.linux.seccomp, for: "unshare").first?.args == nil)
        // Without --docker, none of it.
        let plain = spec(docker: false).runtimeSpec()
        #expect(!plain.mounts.contains { $0.destination == DockerEngine.socketDirectory })
        #expect(!plain.process.env.contains { $0.hasPrefix("DOCKER_HOST=") })
    }

    @Test func theEngineMaysMountAndMakeNamespacesButNeverAUserNamespace() throws {
        let engine = DockerEngine(spec: spec(docker: true)).runtimeSpec()
        let seccomp = try #require(engine.linux.seccomp)
        for call in ["mount", "umount2", "pivot_root", "setns"] {
            #expect(rule(seccomp, for: call).isEmpty, "\(call) is denied to the engine")
        }
        // clone with CLONE_NEWUSER is denied, as to the agent.
        #expect(rule(seccomp, for: "clone").contains { $0.args?.first?.value == 0x1000_0000 })
        // The rest of the agent's filter holds.
        for call in [
            "init_module", "bpf", "ptrace", "io_uring_setup", "kexec_load", "open_by_handle_at", "unshare", "open_tree",
            "fsopen",
        ] {
            #expect(rule(seccomp, for: call).first?.errnoRet == 1, "\(call)")
        }
        #expect(rule(seccomp, for: "keyctl").first?.errnoRet == 38)
        #expect(engine.process.user.uid == 0)
        #expect(engine.process.capabilities?.effective.contains("CAP_SYS_ADMIN") == true)
        // Its own pid and mount namespaces, the sandbox's network namespace.
        #expect(engine.linux.namespaces.contains { $0.type == "network" && $0.path == "/proc/1/ns/net" })
        #expect(engine.linux.namespaces.contains { $0.type == "pid" && $0.path == nil })
        // A user namespace of its own, a child of the sandbox's with the same ids: its
        // capabilities reach none of what the sandbox's user namespace owns (the agent's mounts).
        #expect(
            engine.linux.namespaces.contains {
                $0.type == "user" && $0.path == "/s/sandboxes/shell-app/engine/userns"
            })
        #expect(engine.linux.uidMappings == [.init(containerID: 0, hostID: 0, size: 65536)])
        #expect(engine.linux.gidMappings == engine.linux.uidMappings)
        #expect(engine.root.path == "/s/sandboxes/shell-app/rootfs")
    }

    @Test func theEngineSharesTheHomeWritableAndTheHostsDirectoriesReadOnly() throws {
        var spec = spec(docker: true, protected: ["/home/u/app/.git/hooks"])
        spec.record.mounts = [
            .init(source: "/data", destination: "/data", readOnly: false),
            .init(source: "/ref", destination: "/ref", readOnly: true),
        ]
        let engine = DockerEngine(spec: spec).runtimeSpec()
        let home = try #require(engine.mounts.firstIndex { $0.destination == "/home/agent" })
        #expect(
            engine.mounts[home].source == "/s/sandboxes/shell-app/home" && engine.mounts[home].options.contains("rw"))
        // The workspace and -v mounts: what the init staged read-only, after the home they may
        // lie in; never the host's directories themselves, nor the guard's binds.
        for (index, path) in ["/home/u/app", "/data", "/ref"].enumerated() {
            let mount = try #require(engine.mounts.firstIndex { $0.destination == path }, "\(path)")
            #expect(engine.mounts[mount].source == "/s/sandboxes/shell-app/engine-shares/\(index)")
            #expect(engine.mounts[mount].options.contains("ro") && mount > home, "\(path)")
        }
        #expect(!engine.mounts.contains { $0.destination == "/home/u/app/.git/hooks" })
        #expect(!engine.mounts.contains { ["/home/u/app", "/data", "/ref"].contains($0.source) })
        let data = try #require(engine.mounts.first { $0.destination == "/var/lib/docker" })
        #expect(data.source == "/s/sandboxes/shell-app/docker")
        #expect(!engine.mounts.contains { $0.source.hasPrefix("/var/run/docker") || $0.source == "/run/docker.sock" })
    }

    @Test func theDaemonResolvesThroughTheStubAndRunsCrunWithoutCgroups() throws {
        let text = try DockerEngine(spec: spec(docker: true)).daemonConfig
        let config = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(config["dns"] as? [String] == [EgressListener.engineDNSAddress])
        #expect(config["storage-driver"] as? String == "overlay2")
        #expect(config["default-runtime"] as? String == "crun")
        let crun = (config["runtimes"] as? [String: Any])?["crun"] as? [String: Any]
        #expect(crun?["runtimeArgs"] as? [String] == ["--cgroup-manager=disabled"])
        // The stub answers at that address only for sandboxes with an engine.
        #expect(EgressListener.serving(publishing: [], engine: true).contains(.engineDNSUDP))
        #expect(!EgressListener.serving(publishing: []).contains(.engineDNSUDP))
    }

    @Test func templatesAskForDockersPackagesWithoutChangingOthersDigests() throws {
        let plain = Template(name: "t", packages: ["git"])
        let docker = plain.withDocker()
        #expect(docker.allPackages.contains("docker.io") && docker.allPackages.contains("crun"))
        #expect(!plain.allPackages.contains("docker.io"))
        #expect(docker.digest != plain.digest)
        let decoded = try JSONDecoder().decode(Template.self, from: Data(#"{"name": "t", "packages": ["git"]}"#.utf8))
        #expect(decoded.digest == plain.digest)
        #expect(DockerEngineTests.checkRefused(runtime: .runsc))
        #expect(!DockerEngineTests.checkRefused(runtime: .crun))
    }

    @Test func anEngineThatFailsSaysWhyInOneLineWithAFix() throws {
        let log = NSTemporaryDirectory() + "airlock-dockerd-\(UUID().uuidString).log"
        defer { unlink(log) }
        try """
        time="2026-11-30T22:50:50Z" level=info msg="Starting up"
        time="2026-11-30T22:50:51Z" level=error msg="failed to mount overlay: operation not permitted" storage-driver=overlay2
        time="2026-11-30T22:50:51Z" level=fatal msg="Error starting daemon: error initializing graphdriver: driver not supported"
        failed to start daemon
        """.write(toFile: log, atomically: true, encoding: .utf8)
        let said = DockerEngine.lastError(inLog: log)
        #expect(said.hasPrefix("Error starting daemon: error initializing graphdriver: driver not supported"))
        #expect(said.contains("fix: the engine needs overlayfs in a user namespace"))
        #expect(!said.contains("\n"))
        #expect(DockerEngine.hint(for: "something else") == "")
    }

    @Test func theEnginesIdsAreTheSandboxsExtentByExtent() {
        let sandbox =
            "         0     100000       1000\n      1000       1001          1\n"
            + "      1001     101000      64536\n"
        #expect(DockerEngine.Launcher.identity(of: sandbox) == "0 0 1000\n1000 1000 1\n1001 1001 64536\n")
    }

    @Test func theWorkspaceSharedIsTheCloneInCloneModeAndNoneForADisposableSandbox() {
        var clone = spec(docker: true).record
        clone.clone = true
        let paths = StateStore(root: "/s").sandbox("shell-app")
        #expect(DockerEngine.shares(record: clone, paths: paths).map(\.source) == [paths.clone])
        #expect(DockerEngine.shares(record: clone, paths: paths).map(\.inside) == ["/home/u/app"])
        var disposable = spec(docker: true).record
        disposable.disposable = .init(owner: .init(pid: 1, startTime: 1), diskBytes: 1 << 20)
        disposable.mounts = [.init(source: "/data", destination: "/data", readOnly: false)]
        #expect(DockerEngine.shares(record: disposable, paths: paths).map(\.inside) == ["/data"])
    }

    static func checkRefused(runtime: RuntimeDriver.Kind) -> Bool {
        (try? DockerEngine.checkRequest(runtime: runtime)) == nil
    }
}
