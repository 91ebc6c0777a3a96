import AirlockImages
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// What the server's sandboxes get unless a call asks otherwise, and the server's own limits.
public struct CodeSandboxSettings: Sendable {
    public var shape = SandboxShape()
    /// Sandboxes of the default shape kept started, ready to hand out.
    public var poolSize = 2
    /// A sandbox no call touched for this long is removed.
    public var idleTimeout: Double = 600
    /// Sandboxes one client may hold at once.
    public var maxSandboxes = 16
    /// Bytes kept of each output stream of one call (and of a background process's log).
    public var maxOutput = 1 << 20
    public var defaultTimeout: Double = 30
    public var maxTimeout: Double = 3600
    /// Whether `sandbox_initialize {image}` may pull a registry image that is not pulled yet.
    /// Off by default: the reference comes from the client (an agent), and a pull runs on the
    /// host, outside any sandbox's policy.
    public var pullImages = false

    public init() {}
}

/// The settings a sandbox is made with; the pool holds sandboxes of the default shape only.
public struct SandboxShape: Sendable, Hashable {
    public var template = "code"
    /// A container image in place of the template (pulled if missing): commands run as its
    /// `User`, with its `Env`.
    public var image: String?
    public var network: SandboxRecord.NetworkMode = .none
    public var memoryBytes: Int64 = 512 << 20
    public var cpus: Double? = 1
    public var pids: Int64 = 256
    public var diskBytes: Int64 = 256 << 20
    /// `--isolation`; nil: the user's default tier.
    public var isolation: Isolation?

    public init() {}

    var limits: SandboxRecord.Limits {
        SandboxRecord.Limits(memoryBytes: memoryBytes, cpus: cpus, pids: pids)
    }
}

/// The sandboxes of one client: made on request or taken from the warm pool, each removed
/// when the client lets go of it, goes idle, or disconnects.
public actor CodeSandboxService {
    public let sandboxes: Sandboxes
    public let settings: CodeSandboxSettings
    let owner: ProcessIdentity
    let log: @Sendable (String) -> Void

    struct Active {
        var shape: SandboxShape
        var lastUsed = Monotonic.now()
        var calls = 0
        var processes: [String: BackgroundProcess] = [:]
        var nextProcess = 1
        /// Calls running now, and those waiting for one of them to end.
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []

        /// Calls that may run at once: each costs a few processes (the runtime's helper,
        /// `timeout`, a shell), and a burst past the sandbox's process limit would fail
        /// commands that would have run a moment later.
        var slots: Int { max(2, Int(shape.pids / 16)) }
    }

    private var active: [String: Active] = [:]
    private var pool: [String] = []
    private var filling = 0
    /// Sandboxes being made for `initialize` calls: they count against the client's maximum.
    private var creating = 0
    private var closed = false
    private var reaper: Task<Void, Never>?

    public init(sandboxes: Sandboxes, settings: CodeSandboxSettings, log: @escaping @Sendable (String) -> Void)
        throws
    {
        self.sandboxes = sandboxes
        self.settings = settings
        self.owner = try ProcessIdentity.current()
        self.log = log
    }

    /// Sweeps what earlier servers left, builds the image if needed, fills the pool and starts
    /// the idle reaper.
    public func start() {
        let sandboxes = self.sandboxes
        Task.detached {
            let swept = sandboxes.sweepAbandoned()
            if !swept.isEmpty { self.log("removed \(swept.count) sandboxes left by a server that died") }
        }
        if settings.poolSize == 0 {
            // With no pool to fill, build the image now all the same: the first
            // sandbox_initialize should not wait for mmdebstrap.
            let template = settings.shape.template
            let log = self.log
            Task.detached {
                do {
                    let recipe = try sandboxes.templates.find(template).template
                    _ = try TemplateImages(sandboxes: sandboxes).ensure(recipe, log: log)
                } catch {
                    log("cannot prepare the image of template \(template): \(error)")
                }
            }
        }
        refill()
        let interval = max(0.5, min(settings.idleTimeout / 4, 30))
        reaper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(interval))
                await self?.removeIdle()
            }
        }
    }

    // MARK: sandboxes

    /// A started sandbox of `shape`, from the pool when it has one; the flag says which.
    public func initialize(_ shape: SandboxShape) async throws -> (name: String, pooled: Bool) {
        guard !closed else { throw AirlockError(.conflict, "the server is shutting down") }
        guard active.count + creating < settings.maxSandboxes else {
            throw AirlockError(
                .busy,
                "this client already holds \(active.count + creating) sandboxes, the most it may (stop one with sandbox_stop)"
            )
        }
        if shape == settings.shape, !pool.isEmpty {
            let name = pool.removeFirst()
            active[name] = Active(shape: shape)
            refill(after: Self.refillDelay)
            return (name, true)
        }
        // Counted before the wait, so concurrent calls cannot all pass the check above.
        creating += 1
        defer { creating -= 1 }
        let name = try await make(shape)
        if closed {
            await remove([name])
            throw AirlockError(.conflict, "the server is shutting down")
        }
        active[name] = Active(shape: shape)
        if shape == settings.shape { refill(after: Self.refillDelay) }
        return (name, false)
    }

    /// Runs `body` on a sandbox of this client's, counted as a call so the reaper leaves it be.
    public func using<T: Sendable>(
        _ name: String, _ body: @Sendable (Sandboxes) async throws -> T
    ) async throws -> T {
        try begin(name)
        defer { end(name) }
        await takeSlot(name)
        defer { releaseSlot(name) }
        return try await body(sandboxes)
    }

    /// Waits, in order of arrival, for one of the sandbox's call slots.
    private func takeSlot(_ name: String) async {
        guard var entry = active[name] else { return }
        if entry.running < entry.slots {
            entry.running += 1
            active[name] = entry
            return
        }
        await withCheckedContinuation { continuation in active[name]?.waiting.append(continuation) }
    }

    /// Hands the slot to the next waiting call, or frees it.
    private func releaseSlot(_ name: String) {
        guard var entry = active[name] else { return }
        if entry.waiting.isEmpty {
            entry.running -= 1
            active[name] = entry
        } else {
            let next = entry.waiting.removeFirst()
            active[name] = entry
            next.resume()
        }
    }

    /// Lets go of a sandbox's entry; calls still waiting for a slot go on (and find it gone).
    private func forget(_ name: String) -> Active? {
        let entry = active.removeValue(forKey: name)
        for waiting in entry?.waiting ?? [] { waiting.resume() }
        return entry
    }

    private func begin(_ name: String) throws {
        guard var entry = active[name] else {
            throw AirlockError(
                .notFound, "no sandbox '\(name)' (it was stopped, timed out after idling, or never existed)")
        }
        entry.calls += 1
        entry.lastUsed = Monotonic.now()
        active[name] = entry
    }

    private func end(_ name: String) {
        active[name]?.calls -= 1
        active[name]?.lastUsed = Monotonic.now()
    }

    public func shape(of name: String) -> SandboxShape? { active[name]?.shape }

    /// Removes one of this client's sandboxes.
    public func stop(_ name: String) async throws {
        guard let entry = forget(name) else {
            throw AirlockError(.notFound, "no sandbox '\(name)'")
        }
        await remove([name], processes: Array(entry.processes.values))
    }

    public struct Listing: Sendable {
        public var name: String
        public var shape: SandboxShape
        public var idle: Double
        public var processes: Int
    }

    public func list() -> [Listing] {
        let now = Monotonic.now()
        return active.keys.sorted().compactMap { name in
            guard let entry = active[name] else { return nil }
            return Listing(
                name: name, shape: entry.shape, idle: entry.calls > 0 ? 0 : now - entry.lastUsed,
                processes: entry.processes.values.filter { $0.status == nil }.count)
        }
    }

    // MARK: background processes

    /// Background processes one sandbox may have running at once.
    public static let maxProcesses = 32

    /// Fails when the sandbox already runs as many background processes as it may.
    public func checkProcessRoom(in name: String) throws {
        let running = active[name]?.processes.values.filter { $0.status == nil }.count ?? 0
        guard running < Self.maxProcesses else {
            throw AirlockError(
                .busy, "sandbox \(name) already runs \(running) background processes (kill one with process_kill)")
        }
    }

    public func addProcess(_ process: BackgroundProcess, to name: String) throws -> String {
        guard var entry = active[name] else { throw AirlockError(.notFound, "no sandbox '\(name)'") }
        // Ended processes keep only their last output; the oldest ended ones go first.
        let ended = entry.processes.filter { $0.value.status != nil }.sorted { $0.value.started < $1.value.started }
        for (id, _) in ended.dropLast(Self.maxProcesses) { entry.processes.removeValue(forKey: id) }
        let id = "p\(entry.nextProcess)"
        entry.nextProcess += 1
        entry.processes[id] = process
        active[name] = entry
        return id
    }

    public func process(_ id: String, in name: String) throws -> BackgroundProcess {
        try begin(name)
        end(name)
        guard let process = active[name]?.processes[id] else {
            throw AirlockError(.notFound, "no process '\(id)' in sandbox \(name)")
        }
        return process
    }

    // MARK: lifecycle

    /// Removes every sandbox of this client and the pool; the server calls it on its way out.
    public func shutdown() async {
        closed = true
        reaper?.cancel()
        let names = Array(active.keys) + pool
        let processes = active.values.flatMap { $0.processes.values }
        for name in Array(active.keys) { _ = forget(name) }
        pool.removeAll()
        await remove(names, processes: processes)
        // Sandboxes still being made remove themselves once made (`closed`): wait for them.
        let deadline = Monotonic.now() + 60
        while filling + creating > 0 && Monotonic.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func removeIdle() async {
        let now = Monotonic.now()
        let idle = active.filter { $0.value.calls == 0 && now - $0.value.lastUsed > settings.idleTimeout }
        guard !idle.isEmpty else { return }
        for name in idle.keys { _ = forget(name) }
        log("removing \(idle.count) sandboxes idle for more than \(Int(settings.idleTimeout)) s")
        await remove(Array(idle.keys), processes: idle.values.flatMap { $0.processes.values })
    }

    /// How long a refill waits after a sandbox was handed out: the client's first commands in
    /// it (typically at once) get the machine, not the next sandbox's start beside them.
    static let refillDelay: Duration = .milliseconds(300)

    private func refill(after delay: Duration = .zero) {
        guard !closed else { return }
        let missing = settings.poolSize - pool.count - filling
        guard missing > 0 else { return }
        filling += missing
        for _ in 0..<missing {
            Task {
                if delay > .zero { try? await Task.sleep(for: delay) }
                let made = self.closed ? nil : try? await self.make(self.settings.shape)
                await self.filled(made)
            }
        }
    }

    private func filled(_ name: String?) async {
        filling -= 1
        guard let name else { return }
        if closed {
            await remove([name])
        } else {
            pool.append(name)
        }
    }

    private func make(_ shape: SandboxShape) async throws -> String {
        var request = DisposableRequest(
            label: "code", template: shape.template, network: shape.network, limits: shape.limits,
            diskBytes: shape.diskBytes, owner: owner)
        request.image = shape.image
        request.isolation = shape.isolation
        request.shellNeededBy = "a code sandbox"
        let sandboxes = self.sandboxes
        let made = request
        return try await blocking {
            let record = try sandboxes.createDisposable(made)
            do {
                try sandboxes.start(record.name)
            } catch {
                try? sandboxes.remove(record.name, force: true)
                throw error
            }
            return record.name
        }
    }

    private func remove(_ names: [String], processes: [BackgroundProcess] = []) async {
        let sandboxes = self.sandboxes
        await withTaskGroup(of: Void.self) { group in
            for process in processes where process.status == nil {
                group.addTask { _ = try? await blocking { process.kill() } }
            }
            for name in names {
                group.addTask {
                    do {
                        try await blocking { try sandboxes.remove(name, force: true) }
                    } catch {
                        self.log("cannot remove sandbox \(name): \(error)")
                    }
                }
            }
        }
    }
}

/// Runs blocking work (spawning, waiting on processes, file I/O) on a thread of its own, off
/// Swift's cooperative threads: a command may hold one for as long as its timeout, and a shared
/// pool would make every other call wait behind it.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
