import AirlockImages
import AirlockMCP
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation

/// The tools of `airlock mcp serve code-sandbox`.
public struct CodeSandboxTools: Sendable {
    public let service: CodeSandboxService

    public init(service: CodeSandboxService) {
        self.service = service
    }

    public var all: [MCPTool] {
        [
            tool(
                "sandbox_initialize",
                "Create a sandbox to run code in: no network at all unless network is \"policy\" (Airlock's egress policy). Returns sandbox_id. Files go under /workspace.",
                properties: [
                    "template": string("Image template (default: code, with Python 3, Node.js and bash)"),
                    "image": string(
                        "A container image instead of a template, e.g. python:3.12 or a reference pinned by digest; commands run as its User"
                    ),
                    "network": ["type": "string", "enum": ["none", "policy"], "description": "default none"],
                    "memory": string("Memory limit, e.g. 256m or 1g (default 512m)"),
                    "cpus": number("CPU limit (default 1)"),
                    "pids": integer("Most processes at once (default 256)"),
                    "disk": string("Size of each writable place: /workspace, the home, /tmp (default 256m)"),
                ], required: [], initialize),
            tool(
                "sandbox_exec", "Run a shell command (bash -c) in a sandbox and return its output and exit code.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"),
                    "command": string("The command line, run by bash -c"),
                    "timeout_s": number("Seconds before the command and all it started are killed (default 30)"),
                    "workdir": string("Working directory (default /workspace)"),
                    "env": ["type": "object", "additionalProperties": ["type": "string"]],
                ], required: ["sandbox_id", "command"], exec),
            tool(
                "run_code",
                "Run a snippet of Python, Node.js or bash. Without sandbox_id, a sandbox is made for this call and removed after it.",
                properties: [
                    "sandbox_id": string("Optional; from sandbox_initialize"),
                    "language": ["type": "string", "enum": ["python", "node", "bash"]],
                    "code": string("The program text"),
                    "timeout_s": number("Seconds before it is killed (default 30)"),
                ], required: ["language", "code"], runCode),
            tool(
                "write_file",
                "Write a text file in a sandbox (relative paths are under /workspace; directories are made).",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "path": string("File path"),
                    "content": string("File content"), "executable": boolean("Make it executable"),
                ], required: ["sandbox_id", "path", "content"], writeFile),
            tool(
                "read_file", "Read a file in a sandbox.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "path": string("File path"),
                    "max_bytes": integer("Most bytes to return (default: the output cap)"),
                ], required: ["sandbox_id", "path"], readFile),
            tool(
                "list_files", "List a directory in a sandbox (default /workspace).",
                properties: ["sandbox_id": string("From sandbox_initialize"), "path": string("Directory")],
                required: ["sandbox_id"], listFiles),
            tool(
                "exec_background",
                "Start a command (bash -c) that keeps running; returns process_id for process_status, process_logs and process_kill.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "command": string("The command line"),
                    "workdir": string("Working directory (default /workspace)"),
                    "env": ["type": "object", "additionalProperties": ["type": "string"]],
                ], required: ["sandbox_id", "command"], execBackground),
            tool(
                "process_status", "Whether a background process still runs, and its exit code once it ended.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "process_id": string("From exec_background"),
                ],
                required: ["sandbox_id", "process_id"], processStatus),
            tool(
                "process_logs", "The latest output of a background process.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "process_id": string("From exec_background"),
                    "max_bytes": integer("Most bytes of each stream to return (the latest)"),
                ], required: ["sandbox_id", "process_id"], processLogs),
            tool(
                "process_kill", "Kill a background process and everything it started.",
                properties: [
                    "sandbox_id": string("From sandbox_initialize"), "process_id": string("From exec_background"),
                ],
                required: ["sandbox_id", "process_id"], processKill),
            tool(
                "sandbox_stop", "Stop a sandbox and remove it with everything in it.",
                properties: ["sandbox_id": string("From sandbox_initialize")], required: ["sandbox_id"], stop),
            tool("sandbox_list", "The sandboxes this client holds.", properties: [:], required: [], list),
        ]
    }

    // MARK: tools

    func initialize(_ arguments: ToolArguments) async throws -> JSONValue {
        let shape = try shape(from: arguments)
        let (name, pooled) = try await service.initialize(shape)
        return [
            "sandbox_id": .string(name), "pooled": .bool(pooled),
            "template": shape.image == nil ? .string(shape.template) : .null,
            "image": shape.image.map { .string($0) } ?? .null,
            "network": .string(shape.network.rawValue), "workdir": .string(Sandboxes.disposableWorkspace),
            "limits": limitsReport(shape),
        ]
    }

    func exec(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        return try await capture(name, try shellRequest(arguments), timeout: try timeout(arguments))
    }

    /// `command` run by bash, with `workdir` and `env`.
    private func shellRequest(_ arguments: ToolArguments) throws -> Sandboxes.ExecRequest {
        var request = Sandboxes.ExecRequest(command: ["bash", "-c", try arguments.requiredString("command")])
        request.workdir = try arguments.string("workdir") ?? Sandboxes.disposableWorkspace
        request.environment = try arguments.stringMap("env").sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return request
    }

    func runCode(_ arguments: ToolArguments) async throws -> JSONValue {
        let language = try arguments.requiredString("language")
        let runners: [String: (suffix: String, program: String)] = [
            "python": (".py", "python3"), "node": (".js", "node"), "bash": (".sh", "bash"),
        ]
        guard let runner = runners[language] else {
            throw ToolArgumentError("'language' must be python, node or bash, not '\(language)'")
        }
        // The code goes in on standard input and into a file, so the program sees a normal
        // script path and its error messages name it.
        let script = "f=$(mktemp /tmp/run-XXXXXX\"$1\") && cat > \"$f\" && exec \"$2\" \"$f\""
        var request = Sandboxes.ExecRequest(command: ["bash", "-c", script, "run", runner.suffix, runner.program])
        request.workdir = Sandboxes.disposableWorkspace
        let code = Array(try arguments.requiredString("code").utf8)
        let timeout = try timeout(arguments)
        if let name = try arguments.string("sandbox_id") {
            var result = try await capture(name, request, input: code, timeout: timeout)
            result = merge(result, ["sandbox_id": .string(name)])
            return result
        }
        let (name, _) = try await service.initialize(service.settings.shape)
        // Removed after the answer goes out: the caller does not wait for the teardown.
        defer { Task { [service] in try? await service.stop(name) } }
        let result = try await capture(name, request, input: code, timeout: timeout)
        return merge(result, ["sandbox_id": .null, "sandbox_removed": true])
    }

    func writeFile(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        let path = try arguments.requiredString("path")
        let content = Array(try arguments.requiredString("content").utf8)
        let executable = try arguments.bool("executable") ?? false
        let script =
            "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && { [ \"$2\" != 1 ] || chmod +x -- \"$1\"; } && realpath -- \"$1\""
        let output = try await run(name, ["sh", "-c", script, "write", path, executable ? "1" : "0"], input: content)
        return [
            "path": .string(output.stdout.text.trimmingCharacters(in: .newlines)), "bytes": .int(Int64(content.count)),
        ]
    }

    func readFile(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        let path = try arguments.requiredString("path")
        let limit = Int(try arguments.integer("max_bytes") ?? Int64(service.settings.maxOutput))
        guard limit > 0 else { throw ToolArgumentError("'max_bytes' must be positive") }
        let output = try await run(
            name, ["sh", "-c", "cat -- \"$1\"", "read", path], limit: min(limit, service.settings.maxOutput))
        let bytes = output.stdout.kept
        var result: [String: JSONValue] = [
            "path": .string(path), "bytes": .int(Int64(output.stdout.total)),
            "truncated": .bool(output.stdout.truncated),
        ]
        if let text = String(validating: bytes, as: UTF8.self) {
            result["content"] = .string(text)
            result["encoding"] = "utf-8"
        } else {
            result["content"] = .string(Data(bytes).base64EncodedString())
            result["encoding"] = "base64"
        }
        return .object(result)
    }

    func listFiles(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        let path = try arguments.string("path") ?? Sandboxes.disposableWorkspace
        let output = try await run(
            name, ["find", path, "-mindepth", "1", "-maxdepth", "1", "-printf", "%y\\t%s\\t%f\\n"])
        let kinds: [Substring: String] = ["f": "file", "d": "directory", "l": "symlink"]
        let entries = output.stdout.text.split(separator: "\n").compactMap { line -> JSONValue? in
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { return nil }
            return [
                "name": .string(String(fields[2])), "type": .string(kinds[fields[0]] ?? "other"),
                "size": .int(Int64(fields[1]) ?? 0),
            ]
        }.sorted { ($0["name"]?.stringValue ?? "") < ($1["name"]?.stringValue ?? "") }
        return ["path": .string(path), "entries": .array(entries), "truncated": .bool(output.stdout.truncated)]
    }

    func execBackground(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        let request = try shellRequest(arguments)
        let limit = service.settings.maxOutput
        try await service.checkProcessRoom(in: name)
        let process = try await service.using(name) { sandboxes in
            try await blocking { try sandboxes.startBackground(name, request, outputLimit: limit) }
        }
        let id = try await service.addProcess(process, to: name)
        return ["process_id": .string(id), "sandbox_id": .string(name)]
    }

    func processStatus(_ arguments: ToolArguments) async throws -> JSONValue {
        let process = try await backgroundProcess(arguments)
        let status = process.status
        return [
            "running": .bool(status == nil), "exit_code": status.map { .int(Int64($0)) } ?? .null,
            "command": .string(process.command.last ?? ""),
        ]
    }

    func processLogs(_ arguments: ToolArguments) async throws -> JSONValue {
        let process = try await backgroundProcess(arguments)
        let limit = Int(try arguments.integer("max_bytes") ?? Int64(service.settings.maxOutput))
        let status = process.status
        let (stdout, stderr) = process.logs()
        let tail = { (buffer: OutputBuffer) -> String in
            String(decoding: buffer.kept.suffix(max(0, limit)), as: UTF8.self)
        }
        return [
            "stdout": .string(tail(stdout)), "stderr": .string(tail(stderr)), "running": .bool(status == nil),
            "exit_code": status.map { .int(Int64($0)) } ?? .null,
            "stdout_bytes": .int(Int64(stdout.total)), "stderr_bytes": .int(Int64(stderr.total)),
            "truncated": .bool(stdout.total > limit || stderr.total > limit),
        ]
    }

    func processKill(_ arguments: ToolArguments) async throws -> JSONValue {
        let process = try await backgroundProcess(arguments)
        let wasRunning = process.status == nil
        let status = try await blocking { process.kill() }
        return ["killed": .bool(wasRunning), "exit_code": .int(Int64(status))]
    }

    func stop(_ arguments: ToolArguments) async throws -> JSONValue {
        let name = try arguments.requiredString("sandbox_id")
        try await service.stop(name)
        return ["stopped": true, "sandbox_id": .string(name)]
    }

    func list(_ arguments: ToolArguments) async throws -> JSONValue {
        let entries = await service.list().map { entry -> JSONValue in
            [
                "sandbox_id": .string(entry.name),
                "template": entry.shape.image == nil ? .string(entry.shape.template) : .null,
                "image": entry.shape.image.map { .string($0) } ?? .null,
                "network": .string(entry.shape.network.rawValue), "idle_s": .int(Int64(entry.idle)),
                "processes": .int(Int64(entry.processes)),
            ]
        }
        return ["sandboxes": .array(entries)]
    }

    // MARK: helpers

    private func backgroundProcess(_ arguments: ToolArguments) async throws -> BackgroundProcess {
        let name = try arguments.requiredString("sandbox_id")
        return try await service.process(try arguments.requiredString("process_id"), in: name)
    }

    /// Runs a helper command (file operations), failing with its error output.
    private func run(_ name: String, _ command: [String], input: [UInt8]? = nil, limit: Int? = nil) async throws
        -> CapturedOutput
    {
        var exec = Sandboxes.ExecRequest(command: command)
        exec.workdir = Sandboxes.disposableWorkspace
        let request = exec
        let outputLimit = limit ?? service.settings.maxOutput
        let output = try await service.using(name) { sandboxes in
            try await blocking {
                try sandboxes.capture(name, request, input: input, timeout: 60, outputLimit: outputLimit)
            }
        }
        guard output.status == 0 else {
            let message = output.stderr.text.trimmingCharacters(in: .whitespacesAndNewlines)
            throw AirlockError(.failed, message.isEmpty ? "exit status \(output.status)" : message)
        }
        return output
    }

    private func capture(
        _ name: String, _ request: Sandboxes.ExecRequest, input: [UInt8]? = nil, timeout: Double
    ) async throws -> JSONValue {
        let limit = service.settings.maxOutput
        let shape = await service.shape(of: name)
        let output = try await service.using(name) { sandboxes in
            try await blocking {
                try sandboxes.capture(name, request, input: input, timeout: timeout, outputLimit: limit)
            }
        }
        var result: [String: JSONValue] = [
            "exit_code": .int(Int64(output.status)), "stdout": .string(output.stdout.text),
            "stderr": .string(output.stderr.text), "timed_out": .bool(output.timedOut),
            "stdout_truncated": .bool(output.stdout.truncated), "stderr_truncated": .bool(output.stderr.truncated),
            "stdout_bytes": .int(Int64(output.stdout.total)), "stderr_bytes": .int(Int64(output.stderr.total)),
            "duration_ms": .int(Int64(output.duration * 1000)),
        ]
        if let note = Self.limitNote(output, timeout: timeout, shape: shape, outputLimit: limit) {
            result["limit_hit"] = .string(note)
        }
        return .object(result)
    }

    /// Says which limit a command ran into, when its result shows one.
    static func limitNote(_ output: CapturedOutput, timeout: Double, shape: SandboxShape?, outputLimit: Int)
        -> String?
    {
        let stderr = output.stderr.text
        if output.timedOut {
            return "timeout: killed after \(Self.seconds(timeout)) s with every process of its session"
        }
        if stderr.contains("Resource temporarily unavailable") || stderr.contains("fork: retry") {
            return "pids: the sandbox may run at most \(shape?.pids ?? 0) processes"
        }
        if stderr.contains("MemoryError") || stderr.contains("Cannot allocate memory")
            || stderr.contains("out of memory") || output.status == 137
        {
            return "memory: the sandbox has at most \(Self.size(shape?.memoryBytes ?? 0))"
        }
        if output.stdout.truncated || output.stderr.truncated {
            return "output: only the first \(outputLimit) bytes of each stream are returned"
        }
        return nil
    }

    private func timeout(_ arguments: ToolArguments) throws -> Double {
        let value = try arguments.number("timeout_s") ?? service.settings.defaultTimeout
        guard value > 0, value <= service.settings.maxTimeout else {
            throw ToolArgumentError(
                "'timeout_s' must be above 0 and at most \(Self.seconds(service.settings.maxTimeout))")
        }
        return value
    }

    private func shape(from arguments: ToolArguments) throws -> SandboxShape {
        var shape = service.settings.shape
        if let template = try arguments.string("template") { shape.template = template }
        if let image = try arguments.string("image") {
            guard try arguments.string("template") == nil else {
                throw ToolArgumentError("'image' and 'template' name two starting points: give one")
            }
            try checkImage(image)
            shape.image = image
        }
        if let network = try arguments.string("network") {
            guard let mode = SandboxRecord.NetworkMode(rawValue: network) else {
                throw ToolArgumentError("'network' must be \"none\" or \"policy\", not '\(network)'")
            }
            shape.network = mode
        }
        if let memory = try arguments.string("memory") { shape.memoryBytes = try Sandboxes.parseBytes(memory) }
        if let cpus = try arguments.number("cpus") {
            guard cpus > 0, cpus <= 1024 else { throw ToolArgumentError("'cpus' must be above 0") }
            shape.cpus = cpus
        }
        if let pids = try arguments.integer("pids") {
            guard pids >= 8 else { throw ToolArgumentError("'pids' must be at least 8") }
            shape.pids = pids
        }
        if let disk = try arguments.string("disk") {
            shape.diskBytes = try Sandboxes.parseSize(disk, what: "disk size", minimum: 1 << 20)
        }
        return shape
    }

    /// An image a client may start from: one the user pulled (by a name it was pulled as, or its
    /// ID), or with `--pull-images` a registry's that the organisation allows. Never a path on
    /// the host (`oci:`, an archive) or the local Docker's store: the client is the agent.
    private func checkImage(_ image: String) throws {
        if ImageStore(store: service.sandboxes.store).find(image) != nil { return }
        let source: ImageSource
        do {
            source = try ImageSource(parsing: image)
        } catch {
            throw ToolArgumentError("'image': \(error)")
        }
        guard case .registry = source else {
            throw ToolArgumentError(
                "'image': only a registry's image or one already pulled (airlock image ls), not \(shown(image, limit: 80))"
            )
        }
        guard service.settings.pullImages else {
            throw ToolArgumentError(
                "'image': \(shown(image, limit: 80)) is not pulled: the user pulls it (airlock image pull), or starts this server with --pull-images"
            )
        }
        do {
            try RegistryAccess.check(source)
        } catch let error as AirlockError {
            throw ToolArgumentError("'image': \(error.message)")
        }
    }

    /// Each limit, and how it holds on this host.
    private func limitsReport(_ shape: SandboxShape) -> JSONValue {
        let by = CgroupSupport.detect().enforcement(disposable: true)
        let memory = by["memory"] ?? "", pids = by["pids"] ?? "", cpus = by["cpus"] ?? ""
        return [
            "memory": ["value": .string(Self.size(shape.memoryBytes)), "enforced_by": .string(memory)],
            "pids": ["value": .int(shape.pids), "enforced_by": .string(pids)],
            "cpus": ["value": shape.cpus.map { .double($0) } ?? .null, "enforced_by": .string(cpus)],
            "disk": ["value": .string(Self.size(shape.diskBytes)), "enforced_by": "tmpfs size of each writable mount"],
            "output": ["value": .int(Int64(service.settings.maxOutput)), "enforced_by": "bytes kept per stream"],
        ]
    }

    static func size(_ bytes: Int64) -> String {
        if bytes % (1 << 30) == 0 { return "\(bytes >> 30)g" }
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)m" }
        return "\(bytes)"
    }

    static func seconds(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(value)
    }

    private func merge(_ value: JSONValue, _ extra: [String: JSONValue]) -> JSONValue {
        guard case .object(var object) = value else { return value }
        for (key, entry) in extra { object[key] = entry }
        return .object(object)
    }

    // MARK: schema

    private func tool(
        _ name: String, _ description: String, properties: [String: JSONValue], required: [String],
        _ body: @escaping @Sendable (ToolArguments) async throws -> JSONValue
    ) -> MCPTool {
        let schema: JSONValue = [
            "type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) }),
        ]
        return MCPTool(name: name, description: description, inputSchema: schema) { arguments in
            do {
                return .json(try await body(arguments))
            } catch {
                return .error("\(name): \(error)")
            }
        }
    }

    private func string(_ description: String) -> JSONValue {
        ["type": "string", "description": .string(description)]
    }
    private func number(_ description: String) -> JSONValue {
        ["type": "number", "description": .string(description)]
    }
    private func integer(_ description: String) -> JSONValue {
        ["type": "integer", "description": .string(description)]
    }
    private func boolean(_ description: String) -> JSONValue {
        ["type": "boolean", "description": .string(description)]
    }
}
