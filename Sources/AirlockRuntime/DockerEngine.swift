import AirlockEgress
import AirlockExecAgent
import AirlockOCI
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A sandbox's private Docker engine (`--docker`): Debian's dockerd, in a second container
/// beside the agent's, started by the same sandbox init.
///
/// The engine shares the agent's root filesystem (the image with Docker's packages, see
/// ``Template/dockerPackages``) and network namespace, so that what it publishes is at the
/// agent's `localhost` and what its containers send meets the sandbox's capture, DNS stub and
/// proxy like the agent's own traffic. It runs in a user namespace of its own, a child of the
/// sandbox's with the same ids, which owns that network namespace: its capabilities (all of
/// them, with a filter that lets it mount and join namespaces) reach the network and its own
/// mounts, and nothing the sandbox's user namespace owns, such as the agent's mount namespace
/// with the git guard's binds. Its images and containers live in the sandbox's directory
/// (`docker/`), kept by `stop` and removed by `rm`. The agent reaches it only through its
/// socket, in a directory both containers bind.
public struct DockerEngine: Sendable {
    public let spec: SandboxSpec

    public init(spec: SandboxSpec) {
        self.spec = spec
    }

    /// The socket's directory inside both containers, and the socket.
    public static let socketDirectory = "/run/airlock-docker"
    public static let socket = socketDirectory + "/docker.sock"
    /// What tools that do not look for the usual socket read; under the policy, the engine's
    /// container addresses are not the proxy's business (the agent reaches them directly).
    public static func agentEnvironment(proxied: Bool) -> [String] {
        ["DOCKER_HOST=unix://" + socket]
            + (proxied
                ? [
                    "NO_PROXY=localhost,127.0.0.1,::1,\(addressPool)",
                    "no_proxy=localhost,127.0.0.1,::1,\(addressPool)",
                ]
                : [])
    }

    /// The addresses of the engine's networks: the default bridge's /24, and one /24 for each
    /// network made. Inside the sandbox every other address is captured.
    public static let addressPool = "172.17.0.0/16"
    /// The address inner containers resolve names at (``EgressListener/engineDNSUDP``).
    public static let dnsAddress = EgressListener.engineDNSAddress

    /// The runtime's id of the engine's container.
    public static func containerID(_ name: String) -> String { name + "-engine" }

    /// Refuses what the engine cannot run on.
    static func checkRequest(runtime: RuntimeDriver.Kind) throws {
        if runtime == .runsc {
            throw AirlockError(
                .invalidArgument,
                "--docker needs the container isolation tier (crun or runc): gVisor cannot host a Docker engine (give --isolation container)"
            )
        }
    }

    /// The engine's container, described for the runtime.
    public func runtimeSpec() -> RuntimeSpec {
        let all = RuntimeSpec.Capabilities.allInUserNamespace
        let process = RuntimeSpec.Process(
            terminal: false, user: RuntimeSpec.User(uid: 0, gid: 0),
            // tini reaps the shims that dockerd's containerd leaves to pid 1.
            args: [
                "/usr/bin/tini", "-s", "-g", "--", "/usr/sbin/dockerd", "--config-file", Self.daemonConfigInside,
                "--host", "unix://" + Self.socket, "--host", "unix:///run/docker.sock", "--group",
                "\(SandboxIdentityIDs.agent)",
            ],
            env: environment,
            cwd: "/",
            capabilities: RuntimeSpec.Capabilities(
                bounding: all, effective: all, inheritable: [], permitted: all, ambient: []),
            rlimits: spec.rlimits, noNewPrivileges: false, oomScoreAdj: SandboxSpec.oomScoreAdjustment)
        var runtime = RuntimeSpec(
            process: process,
            root: RuntimeSpec.Root(path: spec.paths.rootfs, readonly: false),
            hostname: spec.record.name,
            mounts: mounts(),
            linux: RuntimeSpec.Linux(
                namespaces: [RuntimeSpec.Namespace(type: "user", path: Self.userNamespaceFile(spec.paths))]
                    + ["pid", "ipc", "uts", "mount"].map { RuntimeSpec.Namespace(type: $0) }
                    + [SandboxSpec.networkNamespace],
                // /proc/sys stays writable: the runtime sets its containers' network sysctls there.
                resources: nil, cgroupsPath: nil, seccomp: .engine, maskedPaths: SandboxSpec.maskedPaths,
                readonlyPaths: SandboxSpec.readonlyPaths.filter { $0 != "/proc/sys" }))
        // The sandbox's ids, unchanged: files the engine writes have the owners the agent sees.
        let identity = [IDMapping(containerID: 0, hostID: 0, size: Self.idCount)]
        runtime.linux.uidMappings = identity
        runtime.linux.gidMappings = identity
        return runtime
    }

    /// The ids of the sandbox's user namespace (``SandboxIdentity``: 0 to 65535).
    static let idCount: UInt32 = 65536

    /// Where the init binds the engine's user namespace for the runtime to join.
    public static func userNamespaceFile(_ paths: SandboxPaths) -> String { bundle(paths) + "/userns" }

    /// The engine's environment: its pulls and builds' downloads go through the proxy.
    var environment: [String] {
        var env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"]
        if spec.record.networkMode == .policy {
            env += SandboxSpec.proxyEnvironment + SandboxSpec.trustEnvironment
        }
        return env
    }

    static let daemonConfigInside = "/etc/airlock/docker-daemon.json"

    /// dockerd's settings: overlay2 on the sandbox's own disk, crun without cgroups of its own
    /// (its containers stay in the sandbox's, under its limits), names resolved by the stub.
    struct DaemonConfig: Encodable {
        struct Runtime: Encodable {
            var path: String
            var runtimeArgs: [String]
        }
        var dataRoot = "/var/lib/docker"
        var execRoot = "/run/docker"
        var pidfile = "/run/docker.pid"
        var storageDriver = "overlay2"
        var defaultRuntime = "crun"
        var runtimes = ["crun": Runtime(path: "/usr/bin/crun", runtimeArgs: ["--cgroup-manager=disabled"])]
        var shutdownTimeout = 5
        /// Fixed, so the agent's NO_PROXY can name them (``addressPool``).
        var bip = "172.17.0.1/24"
        var defaultAddressPools = [AddressPool(base: DockerEngine.addressPool, size: 24)]
        var dns: [String]?

        struct AddressPool: Encodable {
            var base: String
            var size: Int
        }

        enum CodingKeys: String, CodingKey {
            case dataRoot = "data-root", execRoot = "exec-root", pidfile, storageDriver = "storage-driver"
            case defaultRuntime = "default-runtime", runtimes, shutdownTimeout = "shutdown-timeout", dns, bip
            case defaultAddressPools = "default-address-pools"
        }
    }

    public var daemonConfig: String {
        get throws {
            var config = DaemonConfig()
            if spec.record.networkMode == .policy { config.dns = [Self.dnsAddress] }
            return try JSONText.pretty(config)
        }
    }

    func mounts() -> [RuntimeSpec.Mount] {
        typealias Mount = RuntimeSpec.Mount
        let paths = spec.paths
        // /sys read-only as the agent's; a privileged container of its own gets a writable one,
        // as the sandbox init keeps sysfs writable beneath (``SandboxInit``).
        var mounts =
            SandboxSpec.kernelMounts + [
                // No cgroup of the host's: crun runs the engine's containers without cgroups of
                // their own, inside the sandbox's.
                Mount(
                    destination: "/sys/fs/cgroup", type: "tmpfs", source: "tmpfs",
                    options: ["nosuid", "noexec", "nodev", "mode=755", "size=64k"]),
                Mount(destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"]),
                Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]),
                // The engine's images, layers and containers: the sandbox's own disk, where overlay2
                // works (never the sandbox's overlay root), with set-id programs and whiteouts.
                Mount(
                    destination: "/var/lib/docker", type: "bind", source: Self.dataRoot(paths),
                    options: ["rbind", "rw"]),
                Mount.bind(Self.socketHostDirectory(paths), at: Self.socketDirectory, readOnly: false),
                Mount.bind(paths.etc + "/docker-daemon.json", at: Self.daemonConfigInside, readOnly: true),
                Mount.bind(paths.etc + "/hosts", at: "/etc/hosts", readOnly: true),
                Mount.bind(paths.etc + "/hostname", at: "/etc/hostname", readOnly: true),
                Mount.bind(paths.etc + "/resolv.conf", at: "/etc/resolv.conf", readOnly: true),
            ]
        if spec.record.networkMode == .policy {
            mounts.append(Mount.bind(paths.caBundle, at: SandboxSpec.trustBundle, readOnly: true))
            mounts.append(Mount.bind(paths.etc + "/airlock-ca.crt", at: SandboxSpec.trustAnchor, readOnly: true))
        }
        // Last: the workspace and the -v mounts go over the home they may lie in.
        return mounts + sharedMounts()
            + Self.shares(record: spec.record, paths: paths).map { .bind($0.staged, at: $0.inside, readOnly: true) }
    }

    /// What the engine shares with the agent writable: the home and its shared state, so that
    /// `docker run -v ~/data:/data` sees the agent's files and can write there. They are the
    /// sandbox's own; the host's directories come read-only (``shares(record:paths:)``).
    func sharedMounts() -> [RuntimeSpec.Mount] {
        var mounts = [RuntimeSpec.Mount.bind(spec.paths.home, at: spec.homeDirectory, readOnly: false)]
        if let shared = spec.record.sharedState {
            for path in shared.paths {
                mounts.append(
                    .bind(shared.directory + "/" + path, at: spec.homeDirectory + "/" + path, readOnly: false))
            }
        }
        return mounts
    }

    /// What the agent's container gets: the socket's directory, and `docker compose`.
    public static func agentMounts(_ paths: SandboxPaths) -> [RuntimeSpec.Mount] {
        [
            RuntimeSpec.Mount.bind(socketHostDirectory(paths), at: socketDirectory, readOnly: false),
            RuntimeSpec.Mount.bind(composePluginFile(paths), at: composePluginInside, readOnly: true),
        ]
    }

    /// `docker compose`, the command today's documentation and agents type, as a CLI plugin
    /// that runs Debian 12's `docker-compose` (1.29; its Compose v2 is not packaged there).
    static let composePlugin = """
        #!/bin/sh
        # Airlock: `docker compose` runs Debian's docker-compose.
        if [ "$1" = docker-cli-plugin-metadata ]; then
            echo '{"SchemaVersion":"0.1.0","Vendor":"Airlock","Version":"1.29","ShortDescription":"Docker Compose (docker-compose 1.29)"}'
            exit 0
        fi
        shift
        exec docker-compose "$@"

        """
    static let composePluginInside = "/usr/local/lib/docker/cli-plugins/docker-compose"
    static func composePluginFile(_ paths: SandboxPaths) -> String { paths.etc + "/docker-compose-plugin" }

    /// A host directory (or file) of the agent's that the engine sees read-only at the agent's
    /// path: the workspace (the clone, in clone mode) and every `-v` mount.
    ///
    /// Read-only because the git guard cannot hold in the engine's view otherwise: an overlay
    /// file system whose upper directory is the workspace writes to it beneath every mount on
    /// it (the guard's `.git` filters), and the engine can mount one, itself (a `local` volume)
    /// or in a privileged container. The init binds each at `staged`, in its own mount
    /// namespace, read-only; the engine's mount namespace, owned by its own user namespace, gets
    /// those mounts locked, so no container of it can make them writable or take them apart.
    public struct Share: Sendable, Equatable {
        public var source: String
        public var staged: String
        public var inside: String
    }

    public static func shares(record: SandboxRecord, paths: SandboxPaths) -> [Share] {
        var shared: [(String, String)] = []
        if record.disposable == nil {
            shared.append((record.clone == true ? paths.clone : record.workspace, record.workspace))
        }
        shared += record.mounts.map { ($0.source, $0.destination) }
        return shared.enumerated().map { index, pair in
            Share(source: pair.0, staged: paths.directory + "/engine-shares/\(index)", inside: pair.1)
        }
    }

    public static func dataRoot(_ paths: SandboxPaths) -> String { paths.directory + "/docker" }
    public static func socketHostDirectory(_ paths: SandboxPaths) -> String { paths.directory + "/docker-run" }
    public static func bundle(_ paths: SandboxPaths) -> String { paths.directory + "/engine" }
    public static func log(_ paths: SandboxPaths) -> String { paths.directory + "/docker.log" }

    /// What `inspect` says of a sandbox's engine: where it is, and what it may do that the
    /// agent may not.
    public struct Report: Codable, Sendable {
        public var socket: String
        public var storage: String
        public var log: String
        public var grants: [String]

        public init(paths: SandboxPaths) {
            socket = DockerEngine.socket
            storage = DockerEngine.dataRoot(paths)
            log = DockerEngine.log(paths)
            grants = DockerEngine.grants
        }
    }

    /// What the engine gets beyond the agent, in words (`inspect`, the README).
    public static let grants = [
        "every capability, in a user namespace of its own (a child of the sandbox's, the same ids): they reach the sandbox's network namespace and the engine's own mounts, never the agent's mounts or the host",
        "mount, umount2, pivot_root and setns (denied to the agent); new namespaces other than user namespaces",
        "keyring calls answer ENOSYS instead of EPERM; the rest of the agent's seccomp filter stays",
        "/proc/sys writable (the sandbox's network settings); a privileged container of its own gets a writable /sys",
        "the agent's home, writable; the workspace and -v mounts, read-only and locked so (the git guard cannot hold in a view the engine could write)",
        "through the socket, the agent is root of the sandbox, with or without sudo (as the docker group on a host)",
        "its containers run without cgroups of their own, inside the sandbox's: they count against its limits",
    ]

    /// How long the engine may take to answer before the start is given up.
    static let startTimeout: Double = 60

    /// Whether dockerd answers `GET /_ping` on the socket.
    /// The socket is the engine's; it is reached without following a link it may have made.
    static func answers(socket: String) -> Bool {
        let path = open(socket, 0o10_000_000 | O_NOFOLLOW | O_CLOEXEC)  // O_PATH, not exported to Swift
        guard path >= 0 else { return false }
        defer { close(path) }
        var info = stat()
        guard fstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK,
            let fd = try? UnixSocket.connect(to: "/proc/self/fd/\(path)")
        else { return false }
        defer { close(fd) }
        guard UnixSocket.writeLine(fd, "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r") else { return false }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return UnixSocket.readLine(fd)?.contains(" 200 ") == true
    }

    /// The last thing dockerd said at level error or fatal (its log is logrus text), else
    /// its last line.
    static func lastError(inLog path: String) -> String {
        let lines = (Files.readRegularFile(path, limit: 1 << 20) ?? "").split(separator: "\n").map(String.init)
        let line = lines.last { $0.contains("level=fatal") || $0.contains("level=error") } ?? lines.last ?? "no output"
        var said = line
        if let range = line.range(of: "msg=\"") {
            said = String(line[range.upperBound...]).replacingOccurrences(of: "\"", with: "")
        }
        return shown(said) + hint(for: said)
    }

    /// What to do about the failures a host can cause.
    static func hint(for error: String) -> String {
        let lower = error.lowercased()
        if lower.contains("overlay") || lower.contains("driver not supported") {
            return
                "; fix: the engine needs overlayfs in a user namespace (Linux 5.11 or later) on the disk of AIRLOCK_HOME"
        }
        if lower.contains("iptables") || lower.contains("nf_tables") || lower.contains("bridge") {
            return
                "; fix: the engine's networks need the kernel's bridge and nf_tables modules (sudo modprobe bridge nf_tables)"
        }
        if lower.contains("operation not permitted") || lower.contains("user namespace") {
            return "; fix: check that unprivileged user namespaces are allowed and deep enough (airlock doctor)"
        }
        return ""
    }

    /// Writes what the engine's start needs: its bundle, its settings and its directories.
    public func prepare() throws {
        let paths = spec.paths
        try Files.makeDirectory(Self.dataRoot(paths), mode: 0o700)
        try Files.makeDirectory(Self.bundle(paths), mode: 0o700)
        // The agent (uid 1000 inside) goes through it to the socket, which is root's and its group's.
        try Files.makeDirectory(Self.socketHostDirectory(paths), mode: 0o755)
        try Files.writeAtomically(paths.etc + "/docker-daemon.json", try daemonConfig)
        try Files.writeAtomically(Self.composePluginFile(paths), Self.composePlugin, mode: 0o755)
        // What the init binds the engine's user namespace over.
        if !Files.exists(Self.userNamespaceFile(paths)) { try Files.writeAtomically(Self.userNamespaceFile(paths), "") }
        // What the init binds the workspace and the -v mounts over: of their kind, for a bind.
        // Only ever mounted in the init's mount namespace: here, plain directories and files.
        let staging = paths.directory + "/engine-shares"
        if Files.exists(staging) { try FileManager.default.removeItem(atPath: staging) }
        try Files.makeDirectory(staging, mode: 0o700)
        for share in Self.shares(record: spec.record, paths: paths) {
            if Files.isDirectory(share.source) {
                try Files.makeDirectory(share.staged, mode: 0o700)
            } else {
                try Files.writeAtomically(share.staged, "")
            }
        }
        try Files.writeAtomically(Self.bundle(paths) + "/config.json", try JSONText.pretty(runtimeSpec()))
    }
}

extension DockerEngine {
    /// Starts a sandbox's engine, from inside its init (root of its user namespace, in its
    /// network namespace, after the agent's container).
    struct Launcher {
        let paths: SandboxPaths
        let name: String
        let driver: RuntimeDriver
        let shares: [Share]

        /// Makes the engine's user namespace, a child of the sandbox's with the same ids, and a
        /// network namespace it owns, and moves this process (the init, still single-threaded)
        /// there: the agent's container joins it as before. The engine's capabilities then
        /// reach that network namespace and the engine's own mounts, and nothing the sandbox's
        /// user namespace owns: not the agent's mount namespace and its guarded mounts, whose
        /// descriptor the agent could hand to a privileged container. Returns the process that
        /// holds the namespaces (it ends with the sandbox's pid namespace).
        func enterOwnNetworkNamespace() throws -> ChildProcess {
            let holder = try ChildProcess.spawn(
                ["unshare", "--user", "--net", "--", "sleep", "infinity"], stdin: .null, stdout: .null, stderr: .null)
            let proc = "/proc/\(holder.pid)"
            do {
                let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
                let deadline = Monotonic.now() + 10
                while (try? FileManager.default.destinationOfSymbolicLink(atPath: proc + "/ns/user")) == own {
                    guard Monotonic.now() < deadline, holder.poll() == nil else {
                        throw AirlockError(.failed, "the Docker engine's user namespace was not made")
                    }
                    usleep(1000)
                }
                for map in ["uid_map", "gid_map"] {
                    // The same ids, extent by extent: a child's extent must lie in one of its
                    // parent's, and the sandbox's are split around the agent's id.
                    guard let own = try? String(contentsOfFile: "/proc/self/" + map, encoding: .utf8),
                        Self.write(Self.identity(of: own), to: proc + "/" + map)
                    else {
                        throw SystemCallError("write the engine's \(map)", errno: errno)
                    }
                }
                let network = open(proc + "/ns/net", O_RDONLY | O_CLOEXEC)
                guard network >= 0 else { throw SystemCallError("open the engine's network namespace", errno: errno) }
                defer { close(network) }
                guard LinuxCalls.setns(network, 0x4000_0000) == 0 else {  // CLONE_NEWNET
                    throw SystemCallError("join the engine's network namespace", errno: errno)
                }
                let file = DockerEngine.userNamespaceFile(paths)
                guard Glibc.mount(proc + "/ns/user", file, nil, UInt(MS_BIND), nil) == 0 else {
                    throw SystemCallError("bind the engine's user namespace at \(file)", errno: errno)
                }
                return holder
            } catch {
                holder.signal(SIGKILL)
                _ = holder.wait()
                throw AirlockError(.failed, "cannot prepare the Docker engine's namespaces: \(error)")
            }
        }

        /// An id map that gives every id of `map` (a `uid_map`'s text) to itself.
        static func identity(of map: String) -> String {
            map.split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count == 3 else { return nil }
                return "\(fields[0]) \(fields[0]) \(fields[2])\n"
            }.joined()
        }

        private static func write(_ text: String, to path: String) -> Bool {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return text.withCString { Glibc.write(fd, $0, strlen($0)) } == text.utf8.count
        }

        /// A writable sysfs of the sandbox's network namespace, mounted here before any container's:
        /// every sysfs mount of one network namespace shares one superblock, whose first mount
        /// decides whether it is writable. The agent's `/sys` stays read-only (its mount's own
        /// flag); a privileged container of the Docker engine can then have a writable one.
        func mountWritableSysfs() throws {
            let directory = paths.directory + "/sysfs"
            try Files.makeDirectory(directory, mode: 0o700)
            guard Glibc.mount("sysfs", directory, "sysfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil) == 0 else {
                throw SystemCallError("mount sysfs for the Docker engine", errno: errno)
            }
        }

        /// Binds the workspace and the `-v` mounts at their staging places, in the init's mount
        /// namespace, read-only, not set-id, not devices and private, with every mount below
        /// them: copied into the engine's, which its own user namespace owns, they are locked so
        /// (see ``Share``). Before any container starts.
        func stageShares() throws {
            for share in shares where Files.exists(share.source) && Files.exists(share.staged) {
                guard Glibc.mount(share.source, share.staged, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
                    throw SystemCallError("bind \(share.source) for the Docker engine", errno: errno)
                }
                var attributes = MountAttributes(
                    set: MountAttributes.readOnly | MountAttributes.noSetID | MountAttributes.noDevices,
                    propagation: UInt64(MS_PRIVATE))
                let size = MemoryLayout<MountAttributes>.size
                // AT_FDCWD, AT_RECURSIVE
                guard let setAttributes = Self.mountSetAttributes,
                    withUnsafeMutableBytes(
                        of: &attributes, { setAttributes(-100, share.staged, 0x8000, $0.baseAddress, size) })
                        == 0
                else {
                    let saved = errno
                    _ = umount2(share.staged, Int32(MNT_DETACH))
                    throw SystemCallError("make \(share.source) read-only for the Docker engine", errno: saved)
                }
            }
        }

        /// `struct mount_attr` of `mount_setattr(2)`.
        struct MountAttributes {
            var set: UInt64
            var clear: UInt64 = 0
            var propagation: UInt64
            var userNamespace: UInt64 = 0
            static let readOnly: UInt64 = 0x1
            static let noSetID: UInt64 = 0x2
            static let noDevices: UInt64 = 0x4
        }

        /// `mount_setattr(2)` (glibc 2.36), which Swift's Glibc module does not export.
        private typealias MountSetAttributes =
            @convention(c) (Int32, UnsafePointer<CChar>, UInt32, UnsafeMutableRawPointer?, Int) -> Int32
        private static let mountSetAttributes: MountSetAttributes? = {
            guard let symbol = dlsym(nil, "mount_setattr") else { return nil }
            return unsafeBitCast(symbol, to: MountSetAttributes.self)
        }()

        /// Starts the Docker engine's container and waits until its socket answers; returns the
        /// engine's pid. Its output goes to `docker.log` in the sandbox's directory.
        func start() throws -> pid_t {
            let started = Monotonic.now()
            try linkDockerSocket()
            let logFile = DockerEngine.log(paths)
            let runtimeLog = paths.directory + "/engine-runtime.log"
            Files.remove(runtimeLog)
            // Root's inside (the agent cannot put anything there), and the last socket unlinked,
            // never followed nor removed as a tree.
            let directory = DockerEngine.socketHostDirectory(paths)
            guard chown(directory, 0, 0) == 0, chmod(directory, 0o755) == 0 else {
                throw SystemCallError("prepare \(directory)", errno: errno)
            }
            let socket = directory + "/docker.sock"
            if unlink(socket) != 0 && errno != ENOENT {
                throw SystemCallError("remove the engine's last socket \(socket)", errno: errno)
            }
            let pid = try SandboxInit.runContainer(
                driver: driver, bundle: DockerEngine.bundle(paths), id: DockerEngine.containerID(name),
                runtimeRoot: paths.runtimeRoot, logFile: runtimeLog, stdout: .file(logFile), stderr: .file(logFile),
                what: "the Docker engine")
            let deadline = Monotonic.now() + DockerEngine.startTimeout
            while !DockerEngine.answers(socket: socket) {
                guard kill(pid, 0) == 0 || errno != ESRCH, Monotonic.now() < deadline else {
                    let said = DockerEngine.lastError(inLog: logFile)
                    throw AirlockError(
                        .failed, "the Docker engine did not start: \(said) (its log: \(logFile))")
                }
                // Reaped here if it died: a zombie would look alive until the timeout.
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { continue }
                usleep(20_000)
            }
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "the Docker engine answered %.1f ms after its start\n",
                        (Monotonic.now() - started) * 1000
                    ).utf8))
            return pid
        }

        /// `/run/docker.sock` in the sandbox leads to the engine's socket, for tools that look
        /// only there. Made without following any link the sandbox may have put on the way.
        private func linkDockerSocket() throws {
            let root = open(paths.rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard root >= 0 else { throw SystemCallError("open \(paths.rootfs)", errno: errno) }
            defer { close(root) }
            let run = openat(root, "run", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard run >= 0 else { return }  // no /run of its own: DOCKER_HOST still leads there
            defer { close(run) }
            var info = stat()
            if fstatat(run, "docker.sock", &info, AT_SYMLINK_NOFOLLOW) == 0 { return }
            _ = symlinkat(DockerEngine.socket, run, "docker.sock")
        }
    }
}
