import AirlockGitGuard
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How one start guards git's control state in the sandbox's writable host directories (the
/// workspace and `--mount`s that are not read-only).
///
/// Every `.git` directory there gets a ``GitDirFilter`` in front of it: the sandbox init mounts
/// a FUSE file system at a mount point in the sandbox's directory, the runtime binds it over
/// the repository's `.git`, and the supervisor serves it. A `.git` file, a configuration file
/// that a repository includes and a hooks directory that `core.hooksPath` names inside the
/// workspace are bound read-only. A `.git` that appears while the sandbox runs is the
/// ``NewRepositoryWatcher``'s. Without a usable `/dev/fuse`, each `.git` is bound read-only
/// whole: git inside can read but not commit, and nothing it writes reaches the host.
///
/// Written to the sandbox's directory by the start, read by the init and the supervisor.
public struct GitGuardPlan: Codable, Sendable, Equatable {
    /// A git directory behind a filter.
    public struct Filtered: Codable, Sendable, Equatable {
        /// The directory on the host (its real path).
        public var host: String
        /// Where the sandbox sees it.
        public var inside: String
        /// Where the init mounts the filter, for the runtime to bind.
        public var mountPoint: String
    }

    /// A host path bound read-only over its place in the sandbox.
    public struct ReadOnly: Codable, Sendable, Equatable {
        public var host: String
        public var inside: String
    }

    public var filtered: [Filtered] = []
    public var readOnly: [ReadOnly] = []
    /// Every `.git` there was at start (host paths): the user's, which the watcher leaves be.
    public var known: [String] = []
    /// The guarded directory trees.
    public var roots: [ReadOnly] = []
    /// Why filters could not be used, when they could not (every `.git` is then read-only).
    public var filterUnavailable: String?

    /// More filters than this and the rest of the repositories are read-only instead.
    static let maxFilters = 32

    /// Finds the repositories of the sandbox's writable host directories.
    public static func make(record: SandboxRecord, paths: SandboxPaths) -> GitGuardPlan {
        var plan = GitGuardPlan()
        plan.filterUnavailable = fuseProblem()
        // A disposable sandbox's workspace is its own tmpfs; only its mounts are the host's.
        var roots = record.disposable == nil ? [ReadOnly(host: record.workspace, inside: record.workspace)] : []
        for extra in record.mounts where !extra.readOnly && Files.isDirectory(extra.source) {
            roots.append(ReadOnly(host: Files.absolute(extra.source), inside: extra.destination))
        }
        plan.roots = roots
        let opened = Set(
            (record.unprotected ?? []).map { Files.absolute($0.hasPrefix("/") ? $0 : record.workspace + "/" + $0) })
        for root in roots {
            for (path, kind) in gitEntries(under: root.host) {
                plan.known.append(path)
                if opened.contains(path) { continue }
                let inside = root.inside + String(path.dropFirst(root.host.count))
                switch kind {
                case .directory:
                    if plan.filterUnavailable == nil && plan.filtered.count < maxFilters {
                        plan.filtered.append(
                            Filtered(
                                host: Files.absolute(path), inside: inside,
                                mountPoint: paths.gitFilters + "/\(plan.filtered.count)"))
                    } else {
                        plan.readOnly.append(ReadOnly(host: path, inside: inside))
                    }
                    plan.readOnly += hostRunSettings(gitDirectory: path, worktree: root, roots: roots)
                case .regular:
                    // Rewritten, it would send the host's git anywhere.
                    plan.readOnly.append(ReadOnly(host: path, inside: inside))
                default:
                    break
                }
            }
        }
        return plan
    }

    /// Why `/dev/fuse` cannot be used by this user, or nil.
    static func fuseProblem() -> String? {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            return "/dev/fuse is not usable (\(String(cString: strerror(errno)))): fix with "
                + "`sudo chmod 0666 /dev/fuse` (its usual mode) or `sudo modprobe fuse`"
        }
        close(fd)
        return nil
    }

    /// Every `.git` under `top`, at any depth, and every directory git would take for a
    /// repository of its own (a bare one: HEAD, objects/ and refs/); not into git directories
    /// or through symlinks.
    static func gitEntries(under top: String) -> [(String, Files.DirectoryEntry.Kind)] {
        var found: [(String, Files.DirectoryEntry.Kind)] = []
        var queue = [top]
        while let directory = queue.popLast() {
            let entries = Files.entries(of: directory)
            if directory != top, entries.contains(where: { $0.name == "HEAD" && $0.kind != .directory }),
                entries.contains(where: { $0.name == "objects" && $0.kind == .directory }),
                entries.contains(where: { $0.name == "refs" && $0.kind == .directory })
            {
                found.append((directory, .directory))
                continue
            }
            for entry in entries {
                let path = directory + "/" + entry.name
                if entry.name == ".git" {
                    found.append((path, entry.kind))
                } else if entry.kind == .directory {
                    queue.append(path)
                }
            }
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// Files outside `.git` that a repository's configuration makes git run or read as
    /// configuration: included files and a `core.hooksPath` (the repository's own, or the
    /// user's global one) inside a guarded directory.
    static func hostRunSettings(gitDirectory: String, worktree: ReadOnly, roots: [ReadOnly]) -> [ReadOnly] {
        let workTree = (gitDirectory as NSString).deletingLastPathComponent
        var candidates: [String] = []
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        let configs = [
            (gitDirectory + "/config", true), (home + "/.gitconfig", false),
            ((ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"] ?? home + "/.config") + "/git/config", false),
        ]
        for (file, isRepository) in configs {
            guard let text = Files.readRegularFile(file, limit: 1 << 20),
                let config = try? GitConfigFile(parsing: text)
            else { continue }
            for entry in config.entries {
                guard let value = entry.value, !value.isEmpty, !value.hasPrefix("~") else { continue }
                let name = entry.section + "." + entry.name
                if name == "core.hookspath" {
                    candidates.append(value.hasPrefix("/") ? value : workTree + "/" + value)
                } else if isRepository && (name == "include.path" || name == "includeif.path") {
                    candidates.append(value.hasPrefix("/") ? value : gitDirectory + "/" + value)
                }
            }
        }
        return candidates.compactMap { candidate in
            let path = Files.absolute(candidate)
            guard Files.exists(path), !Files.isWithin(path, gitDirectory),
                let root = roots.first(where: { Files.isWithin(path, $0.host) })
            else { return nil }
            return ReadOnly(host: path, inside: root.inside + String(path.dropFirst(root.host.count)))
        }
    }

    /// Makes the filters' mount points and saves the plan for the init and the supervisor.
    public func save(_ paths: SandboxPaths) throws {
        if Files.exists(paths.gitFilters) { try? FileManager.default.removeItem(atPath: paths.gitFilters) }
        for entry in filtered {
            try FileManager.default.createDirectory(atPath: entry.mountPoint, withIntermediateDirectories: true)
        }
        try Files.writeAtomically(paths.gitGuardPlan, try JSONText.pretty(self))
    }

    /// The plan of the current start, or an empty one (a sandbox started by an older version).
    public static func load(_ paths: SandboxPaths) -> GitGuardPlan {
        guard let data = FileManager.default.contents(atPath: paths.gitGuardPlan),
            let plan = try? JSONDecoder().decode(GitGuardPlan.self, from: data)
        else { return GitGuardPlan() }
        return plan
    }

    /// In the init's mount namespace, before the container starts: each guarded directory
    /// becomes a shared mount (the container's bind of it follows it), and each filter's FUSE
    /// file system is mounted at its mount point. Returns the `/dev/fuse` descriptors, in plan
    /// order, for the supervisor to serve.
    public func prepareInInit() throws -> [Int32] {
        // A root inside another (a --mount of a workspace directory) shares its mount already.
        for root in roots where !roots.contains(where: { $0.host != root.host && Files.isWithin(root.host, $0.host) }) {
            guard Glibc.mount(root.host, root.host, nil, UInt(MS_BIND | MS_REC), nil) == 0,
                Glibc.mount(nil, root.host, nil, UInt(MS_SHARED), nil) == 0
            else { throw SystemCallError("share \(root.host) with the sandbox", errno: errno) }
        }
        var devices: [Int32] = []
        do {
            for entry in filtered { devices.append(try Self.mountFilter(at: entry.mountPoint)) }
        } catch {
            for device in devices { close(device) }
            throw error
        }
        return devices
    }

    /// Opens `/dev/fuse` and mounts a filter's file system at `path`; the descriptor serves it.
    /// As root of the sandbox's user namespace, where the mount is allowed.
    public static func mountFilter(at path: String) throws -> Int32 {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open /dev/fuse", errno: errno) }
        let options = "fd=\(fd),rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
        guard Glibc.mount("airlock-git", path, "fuse.airlock-git", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            let saved = errno
            close(fd)
            throw SystemCallError("mount the git filter at \(path)", errno: saved)
        }
        return fd
    }

    /// Serves the filters on the descriptors the init mounted, and starts the watcher, which
    /// puts a filter in front of a new repository too; all run on threads of their own for as
    /// long as the supervisor lives.
    public func serve(devices: [Int32], paths: SandboxPaths) throws {
        let journal = GuardJournal(file: paths.guardJournal)
        let owners = GitDirFilter.Owners(hostUID: getuid(), hostGID: getgid(), agentID: SandboxIdentityIDs.agent)
        let worktreeRoots = roots.map(\.inside)
        for (entry, device) in zip(filtered, devices) {
            try GitDirFilter(
                device: device, root: entry.host, shownAs: entry.inside, worktreeRoots: worktreeRoots,
                owners: owners, journal: journal
            ).start()
        }
        let watcherRoots = roots.map { NewRepositoryWatcher.Root(host: $0.host, inside: $0.inside) }
        // Identities taken now, before the sandbox runs anything: it can move a directory
        // above a repository and put another at its path.
        let filteredHosts = filtered.compactMap { entry in
            NewRepositoryWatcher.FileID(path: entry.host).map { (path: entry.host, id: $0) }
        }
        let known = Set(known.compactMap(NewRepositoryWatcher.FileID.init(path:)))
        let quarantine = paths.quarantine
        let canFilter = filterUnavailable == nil
        let adopt: @Sendable (String, String) -> Bool = { host, inside in
            guard canFilter, let initPID = paths.loadStatus()?.initPID else { return false }
            var info = stat()
            guard stat(host, &info) == 0 else { return false }
            do {
                let device = try Self.mountFilterInSandbox(at: host, initPID: initPID)
                try GitDirFilter(
                    device: device, root: host, shownAs: inside, worktreeRoots: worktreeRoots, owners: owners,
                    journal: journal, adopted: true
                ).start()
                // What was opened before the filter was there bypasses it: a directory (any
                // name can be made under it) or a control file. git's own data files (objects,
                // the index, locks) are harmless, and its directories are let go in a moment.
                let dangerous = { Self.heldPastFilter(inside, device: UInt64(info.st_dev), initPID: initPID) }
                var held = dangerous()
                for _ in 0..<20 where !held.isEmpty {
                    usleep(50_000)
                    held = dangerous()
                }
                if !held.isEmpty {
                    FileHandle.standardError.write(
                        Data(
                            "git guard: \(inside) was held open past its filter (\(held.map(\.description).joined(separator: ", ")))\n"
                                .utf8))
                }
                return held.isEmpty
            } catch {
                FileHandle.standardError.write(Data("git guard: cannot filter \(inside): \(error)\n".utf8))
                return false
            }
        }
        let insideOf: @Sendable (String) -> String = { host in
            guard let root = watcherRoots.first(where: { Files.isWithin(host, $0.host) }) else { return host }
            return root.inside + String(host.dropFirst(root.host.count))
        }
        let isHeld: @Sendable (String) -> Bool = { host in
            var info = stat()
            guard let initPID = paths.loadStatus()?.initPID, stat(host, &info) == 0 else { return false }
            for _ in 0..<10 {
                if SandboxOpenFiles.references(under: insideOf(host), device: UInt64(info.st_dev), initPID: initPID)
                    .isEmpty
                {
                    return false
                }
                usleep(50_000)
            }
            return true
        }
        let heldPastFilter: @Sendable (String) -> String? = { host in
            var info = stat()
            guard let initPID = paths.loadStatus()?.initPID, stat(host, &info) == 0 else { return nil }
            // The supervisor sees the directory itself; the sandbox, through its filter, another device.
            return Self.heldPastFilter(insideOf(host), device: UInt64(info.st_dev), initPID: initPID).first?.description
        }
        // The first walk of a large workspace takes a while: not on the start's path.
        let thread = Thread {
            do {
                try NewRepositoryWatcher(
                    roots: watcherRoots, filtered: filteredHosts, known: known, quarantine: quarantine,
                    journal: journal, adopt: adopt, isHeld: isHeld, heldPastFilter: heldPastFilter
                ).serve()
            } catch {
                FileHandle.standardError.write(Data("git guard: \(error)\n".utf8))
            }
        }
        thread.start()
    }

    /// What the sandbox's processes hold in a git directory (inside path) on its own device,
    /// not through a filter, that writes control state: a directory (any name can be made
    /// under it) or a control file. A file replaced since (``FreshCopy``) reads as
    /// `NAME (deleted)`, which is data.
    static func heldPastFilter(_ inside: String, device: UInt64, initPID: pid_t) -> [SandboxOpenFiles.Reference] {
        SandboxOpenFiles.references(under: inside, device: device, initPID: initPID).filter {
            $0.isDirectory || isControl($0.path, in: inside)
        }
    }

    /// Whether a file of a git directory is anything but data to git.
    static func isControl(_ path: String, in gitDirectory: String) -> Bool {
        let components = path.dropFirst(gitDirectory.count).split(separator: "/").map(String.init)
        return GitControlState.classify(components, isFile: true).kind != .data
    }

    /// Mounts a filter over a repository that appeared while the sandbox runs: a helper enters
    /// the sandbox init's namespaces (where the guarded directories are shared with the
    /// container), mounts it there, and passes `/dev/fuse` back. Its pid namespace too: the
    /// `/proc` there is that namespace's, and Swift reads its arguments from `/proc/self`.
    static func mountFilterInSandbox(at path: String, initPID: pid_t) throws -> Int32 {
        let (here, there) = try DescriptorPassing.socketPair()
        defer { close(here) }
        let helper = try ChildProcess.spawn(
            [
                try Executables.require("nsenter"), "-t", String(initPID), "-U", "-m", "-p", "--", Executables.current,
                "_git-filter-mount", "--state", "-", path,
            ], stdin: .null, stdout: .null, extraDescriptors: [3: there])
        close(there)
        let devices = try? DescriptorPassing.receive(from: here)
        let status = helper.wait()
        guard let device = devices?.first, status == 0 else {
            devices?.forEach { close($0) }
            throw AirlockError(.failed, "the filter helper exited with \(status)")
        }
        return device
    }
}
