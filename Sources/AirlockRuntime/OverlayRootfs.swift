import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The sandbox's root filesystem: the read-only image below, the sandbox's own layer above.
///
/// Mounted by the sandbox init as root of the sandbox's user namespace. Two details make it
/// behave like a normal Debian root for dpkg, pip and `rm -rf`:
/// - `userxattr`: in a user namespace overlayfs may not write `trusted.overlay.*`; without
///   this option it cannot mark a directory opaque, so removing or replacing a directory of
///   the image fails (EIO, EXDEV). With it the markers are `user.overlay.*` xattrs.
/// - the upper layer's top directory is the merged `/`: it must belong to root with the
///   image's mode, not to the host user who created it (who is the agent inside), or the agent
///   could rename `/etc` away without sudo.
public struct OverlayRootfs: Sendable, Equatable {
    public var lower: String
    public var upper: String
    public var work: String
    public var target: String

    public init(lower: String, upper: String, work: String, target: String) {
        self.lower = lower
        self.upper = upper
        self.work = work
        self.target = target
    }

    /// The overlay mount options.
    public var options: String {
        "lowerdir=\(lower),upperdir=\(upper),workdir=\(work),userxattr"
    }

    /// The mode `/` gets when the image's own root does not say (Debian's).
    static let rootMode: mode_t = 0o755

    /// Makes the directories, gives the merged root to root, and mounts.
    public func mount() throws {
        for dir in [upper, work, target] { try Files.makeDirectory(dir) }
        var image = stat()
        // The image's root keeps its mode; its owner is root (an image unpacked before images
        // were unpacked as root has the host user there, which is nobody's choice).
        let mode = lstat(lower, &image) == 0 && image.st_uid == 0 ? image.st_mode & 0o7777 : Self.rootMode
        guard chown(upper, 0, 0) == 0 else {
            throw AirlockError(
                .failed, "cannot give the sandbox root to root", cause: SystemCallError("chown \(upper)", errno: errno))
        }
        guard chmod(upper, mode) == 0 else {
            throw AirlockError(
                .failed, "cannot set the sandbox root's mode", cause: SystemCallError("chmod", errno: errno))
        }
        guard Glibc.mount("overlay", target, "overlay", 0, options) == 0 else {
            throw AirlockError(
                .failed, "cannot mount the sandbox root filesystem (overlay)",
                cause: SystemCallError("mount", errno: errno))
        }
    }
}
