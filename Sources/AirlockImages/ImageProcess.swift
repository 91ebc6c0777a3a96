import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How a program of an image runs, as `docker run IMAGE [COMMAND...]` runs it: as the config's
/// `User` (looked up in the image's own `/etc/passwd` and `/etc/group`), in its `WorkingDir`,
/// with its `Env`, and with `Entrypoint` followed by the given command or else `Cmd`.
///
/// For an MCP server or a code sandbox made from an image. (An agent's sandbox runs the agent
/// as the image's uid-1000 account instead: ``ImageAccount``.)
public struct ImageProcess: Sendable, Equatable {
    /// The account's name as the image knows it (or the number `User` gave).
    public var userName: String
    public var account: SandboxRecord.Account
    public var workingDir: String
    public var environment: [String]
    public var entrypoint: [String]
    public var cmd: [String]

    /// Reads what `rootfs` (a flattened image) says about `config`'s user. `user` in place of
    /// the config's `User` (a catalog entry's `user`, as `docker run -u`).
    public init(config: OCIDocuments.RunConfig, rootfs: String, user: String? = nil) throws {
        let spec = (user ?? config.user ?? "").trimmingCharacters(in: .whitespaces)
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw SystemCallError("open \(rootfs)", errno: errno) }
        defer { close(root) }
        let etc = LayerUnpacker.openInRoot(root, "etc")
        defer { if etc >= 0 { close(etc) } }
        let passwd = etc >= 0 ? ImageAccount.read(etc, "passwd") ?? "" : ""
        let group = etc >= 0 ? ImageAccount.read(etc, "group") ?? "" : ""
        (userName, account) = try Self.resolve(spec.isEmpty ? "0" : spec, passwd: passwd, group: group) {
            ImageAccount.isHome($0, in: root)
        }
        let directory = config.workingDir ?? ""
        guard directory.isEmpty || ImageAccount.isPlainPath(directory) || directory == "/" else {
            throw AirlockError(
                .unsupported, "the image's WorkingDir '\(shown(directory, limit: 80))' is not a plain absolute path")
        }
        let top = ImageAccount.bytewiseComponents(directory).first
        guard top != "proc" && top != "sys" && top != "dev" else {
            throw AirlockError(
                .unsupported, "the image's WorkingDir '\(shown(directory, limit: 80))' is in the kernel's files")
        }
        workingDir = directory.isEmpty ? "/" : directory
        // `KEY=VALUE` entries only, as `docker run` passes them.
        environment = (config.env ?? []).filter { entry in
            guard let equals = entry.utf8.firstIndex(of: UInt8(ascii: "=")) else { return false }
            return equals != entry.utf8.startIndex && !entry.utf8.contains(0)
        }
        entrypoint = config.entrypoint ?? []
        cmd = config.cmd ?? []
    }

    /// The argv: `Entrypoint`, then `command` (a catalog's `command`, as `docker run`'s
    /// arguments) or else `Cmd`.
    public func argv(command: [String] = []) throws -> [String] {
        let argv = entrypoint + (command.isEmpty ? cmd : command)
        guard !argv.isEmpty else {
            throw AirlockError(.invalidArgument, "the image has no Entrypoint or Cmd, and no command was given")
        }
        return argv
    }

    /// `NAME`, `UID`, `NAME:GROUP` or `UID:GID`, as runc reads `User`: a name must be in the
    /// image's passwd; a number need not be (its group is then 0 and its home `/`).
    static func resolve(
        _ spec: String, passwd: String, group: String,
        isHome: (String) -> Bool = ImageAccount.isHomeLocation
    ) throws -> (String, SandboxRecord.Account) {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts[0]
        let entries = passwd.split(separator: "\n").map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }.filter { $0.count >= 7 && UInt32($0[2]) != nil && UInt32($0[3]) != nil }
        var name = userPart
        var uid: UInt32
        var gid: UInt32 = 0
        var home = "/"
        // Names compared by bytes: Swift's String equality would take "é" and "e\u{301}" for one.
        if let entry = entries.first(where: { $0[0].utf8.elementsEqual(userPart.utf8) })
            ?? UInt32(userPart).flatMap({ number in
                entries.first { UInt32($0[2]) == number }
            })
        {
            name = entry[0]
            uid = UInt32(entry[2]) ?? 0
            gid = UInt32(entry[3]) ?? 0
            home = entry[5]
        } else if let number = UInt32(userPart) {
            uid = number
        } else {
            throw AirlockError(
                .notFound,
                "the image's user '\(shown(userPart, limit: 40))' is not in its /etc/passwd (give a uid instead)")
        }
        if parts.count == 2 {
            let groupPart = parts[1]
            if let number = UInt32(groupPart) {
                gid = number
            } else if let entry = group.split(separator: "\n").map({
                $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            }).first(where: { $0.count >= 3 && $0[0].utf8.elementsEqual(groupPart.utf8) }),
                let number = UInt32(entry[2])
            {
                gid = number
            } else {
                throw AirlockError(
                    .notFound, "the image's group '\(shown(groupPart, limit: 40))' is not in its /etc/group")
            }
        }
        guard uid < SandboxIdentity.minimumRange, gid < SandboxIdentity.minimumRange else {
            throw AirlockError(
                .unsupported,
                "the image's user \(uid):\(gid) is outside the ids a sandbox has (0 to \(SandboxIdentity.minimumRange - 1))"
            )
        }
        // A home of its own to write in, as the image's writable layer would give it: the
        // passwd's where a home belongs (``ImageAccount/isHome(_:in:)``), else one under /home.
        if !isHome(home) {
            home = "/home/" + (ImageAccount.isUserName(name) ? name : String(uid))
        }
        if !ImageAccount.isUserName(name) { name = String(uid) }
        return (name, SandboxRecord.Account(uid: uid, gid: gid, home: home))
    }
}
