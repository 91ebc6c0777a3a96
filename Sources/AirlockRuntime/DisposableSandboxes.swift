import AirlockEgress
import AirlockImages
import AirlockPolicy
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a program asks for when it makes a sandbox for itself.
public struct DisposableRequest: Sendable {
    /// Shown as the sandbox's agent by `ls`; the name is this plus a random suffix.
    public var label: String
    public var template: String
    /// A container image to start from instead of `template` (pulled if missing): its
    /// program runs as `docker run` runs it (``ImageProcess``).
    public var image: String?
    /// In place of the image's `User` (`docker run -u`).
    public var imageUser: String?
    public var network: SandboxRecord.NetworkMode
    public var limits: SandboxRecord.Limits
    public var diskBytes: Int64
    public var owner: ProcessIdentity
    /// The sandbox's own policy layer (with `.policy` networking).
    public var policy = PolicySettings()
    /// `policy` alone says what the sandbox may reach (the user's layer only narrows it).
    public var ownPolicyOnly = false
    /// Secrets its proxy injects (the sandbox holds only the sentinel): the only ones it gets.
    public var credentials: [Credential] = []
    /// Host paths mounted in (none by default: nothing of the host is inside).
    public var mounts: [SandboxRecord.MountRequest] = []
    /// The root is writable (its own layer on disk): a build's, whose changes become an image.
    public var writableRoot = false
    /// What runs commands through a shell, for the error when the image has none (a code
    /// sandbox, a build); nil for a program that runs on its own (an MCP server).
    public var shellNeededBy: String?
    /// The tier (a gateway's `--isolation`, a catalog entry's `isolation`); nil: the user's
    /// default, as for `airlock run`.
    public var isolation: Isolation?

    public init(
        label: String, template: String, network: SandboxRecord.NetworkMode, limits: SandboxRecord.Limits,
        diskBytes: Int64, owner: ProcessIdentity
    ) {
        self.label = label
        self.template = template
        self.network = network
        self.limits = limits
        self.diskBytes = diskBytes
        self.owner = owner
    }
}

extension Sandboxes {
    /// Where a disposable sandbox's commands start, and where its files go.
    public static let disposableWorkspace = "/workspace"

    /// Creates a sandbox with no host workspace that lives until its owner process ends. From
    /// an image, `command` (as `docker run`'s arguments) follows its Entrypoint in place of
    /// its Cmd; the result is the record's `command`.
    public func createDisposable(_ request: DisposableRequest, command: [String] = []) throws -> SandboxRecord {
        let identity = try SandboxIdentity.current()
        let runtime = try RuntimeChoice(store: store).choose(runtime: nil, isolation: request.isolation)
        let image: Image
        let templateName: String
        let user: Template.UserSetup
        var process: ImageProcess?
        if let reference = request.image {
            let (prepared, pulled, _) = try Self.prepareImage(reference, store: store, identity: identity, log: log)
            if let what = request.shellNeededBy {
                try Self.checkShell(prepared, reference: reference, for: what, store: store)
            }
            let run = try ImageProcess(config: pulled.run, rootfs: prepared.rootfs(in: store), user: request.imageUser)
            (image, templateName, process) = (prepared, "image " + reference, run)
            user = Template.UserSetup(name: run.userName, sudo: false)
        } else {
            let template = try templates.find(request.template).template
            let built = try TemplateImages(sandboxes: self).ensure(template, log: log)
            (image, templateName, user) = (built.image, template.name, built.user)
            if let pulled = built.pulled {
                process = try ImageProcess(config: pulled.run, rootfs: image.rootfs(in: store), user: user.name)
            }
        }
        try store.prepare()
        try Files.makeDirectory(store.sandboxesDirectory)
        var paths: SandboxPaths
        var name: String
        repeat {
            name = request.label + "-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
            paths = store.sandbox(name)
        } while mkdir(paths.directory, 0o700) != 0 && errno == EEXIST
        guard Files.isDirectory(paths.directory) else {
            throw AirlockError(
                .failed, "cannot create \(paths.directory)", cause: SystemCallError("mkdir", errno: errno))
        }
        do {
            for dir in [paths.upper, paths.work, paths.bundle, paths.etc] { try Files.makeDirectory(dir) }
            try Files.makeDirectory(paths.runtimeRoot, mode: 0o700)
            var record = SandboxRecord(
                name: name, agent: request.label, workspace: Self.disposableWorkspace, template: templateName,
                image: image.digest, user: user.name, sudo: user.sudo,
                runtime: runtime.runtime.rawValue,
                command: ["bash"], environment: [], mounts: request.mounts, limits: request.limits, created: Date(),
                network: request.network,
                disposable: SandboxRecord.Disposable(
                    owner: request.owner, diskBytes: request.diskBytes, writableRoot: request.writableRoot ? true : nil)
            )
            if let process {
                record.account = process.account
                // A template's programs start in the workspace, whatever the image it is from says.
                record.workingDir = request.image == nil ? nil : process.workingDir
                record.environment = process.environment
                if request.image != nil { record.command = (try? process.argv(command: command)) ?? [] }
            }
            record.gvisorPlatform = runtime.gvisorPlatform?.rawValue
            // A program's sandbox uses none of the keys the user stored for agents: only its own.
            record.credentialServices = request.credentials.map(\.service.name)
            if !request.credentials.isEmpty { try SecretStore.saveSandboxCredentials(request.credentials, to: paths) }
            if request.ownPolicyOnly { record.ownPolicyOnly = true }
            try Self.savePolicy(request.policy, to: paths)
            try paths.save(record)
            if process != nil { try Self.confirmImage(image, of: record, store: store, identity: identity, log: log) }
            return record
        } catch {
            Files.remove(paths.directory)
            throw error
        }
    }

    /// Makes a disposable sandbox, starts it, and starts `command` in it (in its workspace, or
    /// as the image's program in its WorkingDir) with standard input and output as pipes
    /// (``BackgroundProcess/stdio``): a program's own server or script to talk to. Nothing is
    /// left behind when a step fails. Blocks.
    public func startDisposableStdio(
        _ request: DisposableRequest, command: [String], environment: [String] = [], outputLimit: Int
    ) throws -> (sandbox: String, process: BackgroundProcess) {
        let record = try createDisposable(request, command: command)
        let name = record.name
        do {
            if request.image != nil && record.command.isEmpty {
                throw AirlockError(
                    .invalidArgument, "image \(request.image ?? "") has no Entrypoint or Cmd, and no command was given")
            }
            try start(name)
            var exec = ExecRequest(command: request.image == nil ? command : record.command)
            exec.environment = environment
            exec.workdir = record.workingDir ?? Self.disposableWorkspace
            return (name, try startBackground(name, exec, outputLimit: outputLimit, stdio: true))
        } catch {
            try? remove(name, force: true)
            throw error
        }
    }

    /// Removes disposable sandboxes whose owner is gone, and the remains of interrupted
    /// removals; returns the names removed. Their supervisors remove them on their own when the
    /// owner dies, so this finds only what a killed supervisor or a crash left.
    @discardableResult
    public func sweepAbandoned() -> [String] {
        var removed: [String] = []
        for record in store.records() {
            guard let disposable = record.disposable, !disposable.owner.isAlive else { continue }
            if (try? remove(record.name, force: true)) != nil { removed.append(record.name) }
        }
        let leftovers = abandonedRemovals()
        if !leftovers.isEmpty, let namespace = try? UserNamespace(identity: try SandboxIdentity.current()) {
            try? namespace.removeTree(leftovers)
            namespace.close()
        }
        return removed
    }
}
