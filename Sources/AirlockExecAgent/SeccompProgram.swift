import AirlockOCI
import AirlockSystem

#if canImport(Glibc)
    import Glibc
#endif

/// An OCI seccomp filter compiled once with libseccomp (the library runc and crun compile
/// theirs with), to be loaded into each command the agent starts.
///
/// The translation is runc's: one rule per syscall name the kernel knows (unknown names are
/// skipped), conditions on distinct arguments joined, conditions on the same argument made
/// rules of their own, rules whose action is the default left out. libseccomp is opened at
/// run time, as `libseccomp.so.2` (runc's dependency on Debian), so Airlock builds without
/// its headers.
final class SeccompProgram {
    private let library: Library
    private let context: OpaquePointer

    init(_ filter: Seccomp) throws {
        library = try Library.shared()
        guard let context = library.initialize(try Self.action(filter.defaultAction, errno: nil)) else {
            throw AirlockError(.failed, "libseccomp could not make a filter")
        }
        self.context = context
        // Loading must not set no_new_privs: a sandbox with sudo runs its commands without it.
        guard library.setAttribute(context, 3, 0) == 0 else {  // SCMP_FLTATR_CTL_NNP
            throw AirlockError(.failed, "libseccomp refused to leave no_new_privs alone")
        }
        for name in filter.architectures {
            let token = name.hasPrefix("SCMP_ARCH_") ? String(name.dropFirst(10)).lowercased() : name
            let arch = library.resolveArchitecture(token)
            guard arch != 0 else { continue }
            let added = library.addArchitecture(context, arch)
            guard added == 0 || added == -EEXIST else {
                throw AirlockError(.failed, "libseccomp cannot add the architecture \(name) (error \(added))")
            }
        }
        let defaultAction = try Self.action(filter.defaultAction, errno: nil)
        for rule in filter.syscalls {
            let action = try Self.action(rule.action, errno: rule.errnoRet)
            guard action != defaultAction else { continue }
            let conditions = try (rule.args ?? []).map(Self.condition)
            // libseccomp joins conditions with AND and allows one per argument.
            let indexes = conditions.map(\.argument)
            let groups = Set(indexes).count == indexes.count ? [conditions] : conditions.map { [$0] }
            for name in rule.names {
                let number = library.resolveSyscall(name)
                // Negative numbers name calls of the other ABIs; libseccomp places them.
                guard number != -1 else { continue }  // a call no ABI here has
                for group in groups {
                    let count = UInt32(group.count)
                    let added = group.withUnsafeBytes {
                        library.addRule(context, action, number, count, $0.baseAddress)
                    }
                    guard added == 0 else {
                        throw AirlockError(.failed, "libseccomp refused the rule for \(name) (error \(added))")
                    }
                }
            }
        }
    }

    deinit { library.release(context) }

    /// Loads the filter into the calling process (the command, before its `execve`).
    /// Returns 0 or a negative errno.
    func load() -> Int32 { library.load(context) }

    /// `struct scmp_arg_cmp`.
    struct Condition {
        var argument: UInt32
        var operation: UInt32
        var first: UInt64
        var second: UInt64
    }

    static func condition(_ arg: Seccomp.Arg) throws -> Condition {
        let operations = [
            "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
            "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
        ]
        guard let operation = operations[arg.op] else {
            throw AirlockError(.invalidArgument, "unknown seccomp comparison \(arg.op)")
        }
        return Condition(argument: arg.index, operation: UInt32(operation), first: arg.value, second: arg.valueTwo ?? 0)
    }

    static func action(_ name: String, errno: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        default: throw AirlockError(.invalidArgument, "unknown seccomp action \(name)")
        }
    }

    /// libseccomp's functions, looked up once.
    struct Library: @unchecked Sendable {
        typealias Initialize = @convention(c) (UInt32) -> OpaquePointer?
        typealias SetAttribute = @convention(c) (OpaquePointer, UInt32, UInt32) -> Int32
        typealias ResolveName = @convention(c) (UnsafePointer<CChar>) -> Int32
        typealias ResolveArchitecture = @convention(c) (UnsafePointer<CChar>) -> UInt32
        typealias AddArchitecture = @convention(c) (OpaquePointer, UInt32) -> Int32
        typealias AddRule = @convention(c) (OpaquePointer, UInt32, Int32, UInt32, UnsafeRawPointer?) -> Int32
        typealias Load = @convention(c) (OpaquePointer) -> Int32
        typealias Release = @convention(c) (OpaquePointer) -> Void

        let initialize: Initialize
        let setAttribute: SetAttribute
        let resolveSyscall: ResolveName
        let resolveArchitecture: ResolveArchitecture
        let addArchitecture: AddArchitecture
        let addRule: AddRule
        let load: Load
        let release: Release

        nonisolated(unsafe) private static var loaded: Library?

        static func shared() throws -> Library {
            if let loaded { return loaded }
            guard let handle = dlopen("libseccomp.so.2", RTLD_NOW) else {
                throw AirlockError(
                    .notFound, "libseccomp is not installed (it comes with runc: sudo apt-get install libseccomp2)")
            }
            func symbol<T>(_ name: String, as type: T.Type) throws -> T {
                guard let pointer = dlsym(handle, name) else {
                    throw AirlockError(.unsupported, "libseccomp has no \(name): version 2.5 or newer is needed")
                }
                return unsafeBitCast(pointer, to: type)
            }
            let library = Library(
                initialize: try symbol("seccomp_init", as: Initialize.self),
                setAttribute: try symbol("seccomp_attr_set", as: SetAttribute.self),
                resolveSyscall: try symbol("seccomp_syscall_resolve_name", as: ResolveName.self),
                resolveArchitecture: try symbol("seccomp_arch_resolve_name", as: ResolveArchitecture.self),
                addArchitecture: try symbol("seccomp_arch_add", as: AddArchitecture.self),
                addRule: try symbol("seccomp_rule_add_array", as: AddRule.self),
                load: try symbol("seccomp_load", as: Load.self),
                release: try symbol("seccomp_release", as: Release.self))
            loaded = library
            return library
        }
    }
}
