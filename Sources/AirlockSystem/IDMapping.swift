#if canImport(Glibc)
    import Glibc
#endif

/// One line of a user-namespace id map: `size` ids from `containerID` map to `hostID` onwards.
public struct IDMapping: Codable, Sendable, Equatable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32

    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }
}

/// A range of subordinate ids from `/etc/subuid` or `/etc/subgid`.
public struct SubordinateRange: Sendable, Equatable {
    public var start: UInt32
    public var count: UInt32

    public init(start: UInt32, count: UInt32) {
        self.start = start
        self.count = count
    }

    /// The ids root uses when it has no entry of its own: far above any real account.
    public static let rootDefault = SubordinateRange(start: 1_000_000_000, count: 65536)

    /// Parses `name:start:count` lines and returns the first range for `user` (by name or id).
    public static func parse(_ text: String, user: String, id: UInt32) -> SubordinateRange? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == user || fields[0] == String(id),
                let start = UInt32(fields[1]), let count = UInt32(fields[2])
            else { continue }
            return SubordinateRange(start: start, count: count)
        }
        return nil
    }
}

/// How a sandbox's user namespace lines up with the host.
///
/// The agent's id inside (1000) is the invoking user outside, so workspace files keep their
/// owner; every other id inside, root included, is one of the user's subordinate ids.
public struct SandboxIdentity: Sendable, Equatable {
    public static let agentID: UInt32 = 1000
    /// Subordinate ids needed so that `nobody` (65534) exists inside.
    public static let minimumRange: UInt32 = 65536 - 1

    public var hostUID: UInt32
    public var hostGID: UInt32
    public var uidRange: SubordinateRange
    public var gidRange: SubordinateRange

    public init(hostUID: UInt32, hostGID: UInt32, uidRange: SubordinateRange, gidRange: SubordinateRange) {
        self.hostUID = hostUID
        self.hostGID = hostGID
        self.uidRange = uidRange
        self.gidRange = gidRange
    }

    public var uidMappings: [IDMapping] { Self.mappings(host: hostUID, range: uidRange) }
    public var gidMappings: [IDMapping] { Self.mappings(host: hostGID, range: gidRange) }

    /// The host id that root inside the sandbox is.
    public var hostRootUID: UInt32 { uidRange.start }

    static func mappings(host: UInt32, range: SubordinateRange) -> [IDMapping] {
        let agent = agentID
        let above = min(range.count, 65536) - agent
        return [
            IDMapping(containerID: 0, hostID: range.start, size: agent),
            IDMapping(containerID: agent, hostID: host, size: 1),
            IDMapping(containerID: agent + 1, hostID: range.start + agent, size: above),
        ]
    }

    /// The identity for the user running this process, from `/etc/subuid` and `/etc/subgid`.
    public static func current() throws -> SandboxIdentity {
        let uid = getuid()
        let gid = getgid()
        let name = userName(uid) ?? String(uid)
        let subuid = (try? Files.read("/etc/subuid")) ?? ""
        let subgid = (try? Files.read("/etc/subgid")) ?? ""
        var uidRange = SubordinateRange.parse(subuid, user: name, id: uid)
        var gidRange = SubordinateRange.parse(subgid, user: name, id: uid)
        if uid == 0 {
            uidRange = uidRange ?? .rootDefault
            gidRange = gidRange ?? .rootDefault
        }
        guard let uidRange, let gidRange else {
            throw AirlockError(
                .unsupported,
                "user \(name) has no subordinate ids in /etc/subuid and /etc/subgid "
                    + "(fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(name))")
        }
        guard uidRange.count >= minimumRange, gidRange.count >= minimumRange else {
            throw AirlockError(
                .unsupported,
                "user \(name) has fewer than 65535 subordinate ids (fix: give it a range of 65536 in /etc/subuid and /etc/subgid)"
            )
        }
        return SandboxIdentity(hostUID: uid, hostGID: gid, uidRange: uidRange, gidRange: gidRange)
    }

    public static func userName(_ uid: uid_t) -> String? {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}
