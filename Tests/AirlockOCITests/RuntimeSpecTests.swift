import Foundation
import Testing

@testable import AirlockOCI

@Suite struct RuntimeSpecTests {
    static func sample() -> RuntimeSpec {
        RuntimeSpec(
            process: RuntimeSpec.Process(
                terminal: false, user: RuntimeSpec.User(uid: 1000, gid: 1000),
                args: ["/usr/bin/tini", "--", "sleep", "infinity"],
                env: ["PATH=/usr/bin:/bin"], cwd: "/", capabilities: .agent, rlimits: nil, noNewPrivileges: true),
            root: RuntimeSpec.Root(path: "/state/rootfs", readonly: false),
            hostname: "shell-demo",
            mounts: [
                RuntimeSpec.Mount(
                    destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
                .bind("/home/u/demo", at: "/home/u/demo", readOnly: false),
            ],
            linux: RuntimeSpec.Linux(
                namespaces: [RuntimeSpec.Namespace(type: "pid"), RuntimeSpec.Namespace(type: "network")],
                resources: RuntimeSpec.Resources(
                    memory: RuntimeSpec.Resources.Memory(limit: 1 << 30, swap: nil),
                    cpu: RuntimeSpec.Resources.CPU(quota: 150_000, period: 100_000),
                    pids: RuntimeSpec.Resources.Pids(limit: 512)),
                cgroupsPath: nil, seccomp: nil, maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"]))
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    static func golden(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Golden/" + name, withExtension: "json"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func encodesLikeTheGoldenFile() throws {
        #expect(try Self.encode(Self.sample()) == Self.golden("config"))
    }

    @Test func decodesTheGoldenFileBack() throws {
        let decoded = try JSONDecoder().decode(RuntimeSpec.self, from: Data(try Self.golden("config").utf8))
        #expect(decoded == Self.sample())
    }

    @Test func leavesOutNilFields() throws {
        let json = try Self.encode(Self.sample())
        #expect(!json.contains("cgroupsPath"))
        #expect(!json.contains("rlimits"))
        #expect(!json.contains("seccomp"))
    }

    @Test func agentCapabilitiesAreEmptyButBounded() {
        let caps = RuntimeSpec.Capabilities.agent
        #expect(caps.effective.isEmpty && caps.permitted.isEmpty && caps.ambient.isEmpty && caps.inheritable.isEmpty)
        #expect(caps.bounding.contains("CAP_SETUID"))
        #expect(!caps.bounding.contains("CAP_SYS_ADMIN"))
        #expect(!caps.bounding.contains("CAP_SYS_PTRACE"))
    }
}

@Suite struct SeccompTests {
    let profile = Seccomp.airlockDefault

    func deniedNames() -> Set<String> {
        Set(profile.syscalls.filter { $0.action == "SCMP_ACT_ERRNO" && $0.args == nil }.flatMap(\.names))
    }

    @Test(arguments: [
        "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "keyctl", "add_key", "bpf",
        "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "ptrace",
        "process_vm_readv", "process_vm_writev", "pidfd_getfd", "open_by_handle_at",
    ])
    func deniesInvariantFiveSyscalls(name: String) {
        #expect(deniedNames().contains(name))
    }

    @Test func coversTheCompatABIs() {
        #if arch(x86_64)
            // Without X86 a 32-bit int 0x80 syscall would not be filtered at all.
            #expect(profile.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #endif
        #expect(!profile.architectures.isEmpty)
    }

    @Test func allowsByDefault() {
        #expect(profile.defaultAction == "SCMP_ACT_ALLOW")
        #expect(!deniedNames().contains("read"))
    }

    @Test(arguments: [(UInt64(40), "AF_VSOCK"), (38, "AF_ALG"), (17, "AF_PACKET")])
    func deniesSocketFamily(family: UInt64, label: String) {
        let rule = profile.syscalls.first { $0.names.contains("socket") && $0.args?.first?.valueTwo == family }
        #expect(rule?.args?.first?.op == "SCMP_CMP_MASKED_EQ", "\(label)")
        #expect(rule?.args?.first?.value == 0xffff_ffff, "\(label): only the low 32 bits count")
    }

    @Test(arguments: [UInt64(0x5412), 0x541C])
    func deniesTerminalInjection(request: UInt64) {
        let rule = profile.syscalls.first { $0.names == ["ioctl"] && $0.args?.first?.valueTwo == request }
        #expect(rule?.args?.first?.index == 1)
        #expect(rule?.args?.first?.op == "SCMP_CMP_MASKED_EQ")
    }

    @Test func masksNewUserNamespacesInClone() {
        let rule = profile.syscalls.first { $0.names == ["clone"] }
        #expect(rule?.args?.first?.op == "SCMP_CMP_MASKED_EQ")
        #expect(rule?.args?.first?.value == 0x1000_0000)
        #expect(profile.syscalls.contains { $0.names == ["clone3"] && $0.errnoRet == 38 })
    }
}
