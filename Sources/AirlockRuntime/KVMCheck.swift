import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this user could run microVMs here: the planned third tier (`docs/isolation.md`).
///
/// It needs `/dev/kvm` that the user may open read-write, answering KVM's API, backed by the
/// CPU's virtualisation extensions. A host that offers KVM through PVM (KVM in software, as
/// nested cloud machines may) boots only guest kernels built for it, so the check says so
/// rather than promise a tier that would not start.
public enum KVMCheck {
    static let device = "/dev/kvm"
    /// `KVM_GET_API_VERSION`, `_IO(0xAE, 0x00)`; every KVM answers 12.
    static let getAPIVersion: UInt = 0xAE00

    public static func run() -> HostCheck {
        let name = "kvm (microVM tier, planned)"
        var info = stat()
        guard stat(device, &info) == 0 else {
            return HostCheck(
                name: name, level: .ok,
                detail:
                    "no \(device): this host gives no hardware virtualisation, so no microVM tier (gvisor is the stronger tier here)",
                fix: nil)
        }
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            let group = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) } ?? String(info.st_gid)
            let mode = String(info.st_mode & 0o777, radix: 8)
            let pvm =
                isPVM ? "; and it is KVM's PVM backend, which boots only guest kernels built with CONFIG_PVM_GUEST" : ""
            return HostCheck(
                name: name, level: .ok,
                detail:
                    "\(device) is not usable by this user (\(reason); mode \(mode), group \(group))\(pvm): no microVM tier here",
                fix: group == "root" ? nil : "sudo usermod -aG \(group) \(userName), then log in again")
        }
        let version = ioctl(fd, getAPIVersion)
        close(fd)
        guard version == 12 else {
            return HostCheck(
                name: name, level: .ok, detail: "\(device) opens but does not answer KVM's API (\(version))", fix: nil)
        }
        if isPVM {
            return HostCheck(
                name: name, level: .ok,
                detail:
                    "\(device) is usable, through KVM's PVM backend (no vmx/svm): it boots only guest kernels built with CONFIG_PVM_GUEST, not a distribution's",
                fix: nil)
        }
        return HostCheck(
            name: name, level: .ok,
            detail: "\(device) is usable by this user (KVM API 12): a microVM tier could run here (docs/isolation.md)",
            fix: nil)
    }

    static var userName: String {
        getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? String(getuid())
    }

    /// KVM through PVM: its module is loaded and the CPU shows no virtualisation extensions.
    static var isPVM: Bool {
        guard Files.exists("/sys/module/kvm_pvm") else { return false }
        let flags = ((try? Files.read("/proc/cpuinfo")) ?? "").split(whereSeparator: \.isWhitespace)
        return !flags.contains("vmx") && !flags.contains("svm")
    }
}
