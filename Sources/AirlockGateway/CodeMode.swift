import AirlockMCP
import AirlockRuntime
import AirlockState
import AirlockSystem
import Foundation
import Synchronization

/// `code-mode`: a tool that runs a Python script in which each tool of chosen servers is a
/// function, so one call can compose many.
///
/// The script runs in a disposable sandbox with no network. A small runner around it speaks
/// JSON-RPC on its standard input and output: it asks the gateway for the script
/// (`script/get`), calls tools (`tools/call`, only those of the chosen servers) and reports the
/// end (`script/done`) with what the script printed, its `result` variable and any traceback.
struct CodeMode: Sendable {
    let name: String
    let servers: [String]

    static let prefix = "code-mode-"
    static let timeout: Double = 120

    var toolName: String { Self.prefix + name }

    /// A tool name as a Python identifier.
    static func pythonName(_ tool: String) -> String {
        var name = String(tool.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
        if name.first?.isNumber ?? true { name = "_" + name }
        return keywords.contains(name) ? name + "_" : name
    }

    static let keywords: Set<String> = [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "print", "result",
    ]

    /// The `tools/list` entry, which names each function and its arguments.
    func listing(tools: [JSONValue]) -> JSONValue {
        let functions = tools.compactMap { tool -> String? in
            guard let name = tool["name"]?.stringValue else { return nil }
            let arguments = (tool["inputSchema"]?["properties"]?.objectValue ?? [:]).keys.sorted()
            let summary = tool["description"]?.stringValue?.split(separator: "\n").first.map(String.init) ?? ""
            return "- \(Self.pythonName(name))(\(arguments.map { "\($0)=..." }.joined(separator: ", "))): \(summary)"
        }
        let description = """
            Run a Python 3 script (no network) in which these tools of \(servers.joined(separator: ", ")) are \
            functions taking keyword arguments and returning the tool's structured result (or its text; a tool \
            error raises ToolError):
            \(functions.joined(separator: "\n"))
            The call returns what the script printed and the value it assigns to `result`.
            """
        return [
            "name": .string(toolName), "description": .string(description),
            "inputSchema": [
                "type": "object",
                "properties": ["script": ["type": "string", "description": "Python 3 source"]],
                "required": ["script"],
            ],
        ]
    }

    /// Runs one script; `call` is the gateway's tool call, restricted to `allowed` here.
    func run(
        script: String, allowed: [String], sandboxes: Sandboxes, owner: ProcessIdentity,
        call: @escaping @Sendable (String, [String: JSONValue]) async -> ToolResult
    ) async -> ToolResult {
        let started: (sandbox: String, process: BackgroundProcess)
        do {
            let request = DisposableRequest(
                label: "code-mode", template: "code", network: .none, limits: .init(memoryBytes: 512 << 20, pids: 128),
                diskBytes: 64 << 20, owner: owner)
            started = try await blocking {
                try sandboxes.startDisposableStdio(
                    request, command: ["python3", "-u", "-c", Self.runner], outputLimit: 64 << 10)
            }
        } catch {
            return .error("code-mode could not start its sandbox: \(error)")
        }
        let process = started.process
        defer {
            let sandbox = started.sandbox
            Thread.detachNewThread {
                process.kill()
                try? sandboxes.remove(sandbox, force: true)
            }
        }
        guard let stdio = process.stdio else { return .error("code-mode has no channel to its script") }
        let functions: [JSONValue] = allowed.map { ["python": .string(Self.pythonName($0)), "tool": .string($0)] }
        let allowedSet = Set(allowed)
        let outcome = Mutex<JSONValue?>(nil)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(Self.timeout))
            process.kill()
        }
        let channel = MCPStdio(input: stdio.output, output: stdio.input)
        await channel.serve { message in
            guard let method = message.method, let id = message.id else { return nil }
            switch method {
            case "script/get":
                return .response(id: id, result: ["script": .string(script), "functions": .array(functions)])
            case "tools/call":
                guard let tool = message.params?["name"]?.stringValue, allowedSet.contains(tool) else {
                    return .failure(id: id, .invalidParams("this script may call only the tools of its servers"))
                }
                let result = await call(tool, message.params?["arguments"]?.objectValue ?? [:])
                return .response(id: id, result: result.json)
            case "script/done":
                outcome.withLock { $0 = message.params ?? [:] }
                return .response(id: id, result: [:])
            default:
                return .failure(id: id, .methodNotFound(method))
            }
        }
        watchdog.cancel()
        close(stdio.output)
        close(stdio.input)
        guard let done = outcome.withLock({ $0 }) else {
            let stderr = process.logs().stderr.text.suffix(600)
            return .error(
                "the script did not finish (killed after \(Int(Self.timeout)) s, or its sandbox ran out of memory or processes)"
                    + (stderr.isEmpty ? "" : ": \(stderr)"))
        }
        let error = done["error"]?.stringValue
        var report: [String: JSONValue] = [
            "output": done["output"] ?? "", "result": done["result"] ?? .null,
        ]
        if let error { report["error"] = .string(error) }
        var result = ToolResult.json(.object(report))
        result.isError = error != nil
        return result
    }

    /// The Python around the user's script.
    static let runner = #"""
        import contextlib, io, json, sys, traceback
        _out, _in, _next = sys.stdout, sys.stdin, [0]
        def _rpc(method, params):
            _next[0] += 1
            _out.write(json.dumps({"jsonrpc": "2.0", "id": _next[0], "method": method, "params": params}) + "\n")
            _out.flush()
            while True:
                line = _in.readline()
                if not line:
                    raise SystemExit("the gateway is gone")
                message = json.loads(line)
                if message.get("id") == _next[0]:
                    break
            if "error" in message:
                raise RuntimeError(message["error"].get("message"))
            return message["result"]
        class ToolError(Exception):
            pass
        def _tool(name):
            def call(**arguments):
                answer = _rpc("tools/call", {"name": name, "arguments": arguments})
                text = "\n".join(b.get("text", "") for b in answer.get("content", []) if b.get("type") == "text")
                if answer.get("isError"):
                    raise ToolError(text)
                if answer.get("structuredContent") is not None:
                    return answer["structuredContent"]
                try:
                    return json.loads(text)
                except ValueError:
                    return text
            call.__name__ = name
            return call
        job = _rpc("script/get", {})
        scope = {"__name__": "__main__", "ToolError": ToolError}
        for function in job["functions"]:
            scope[function["python"]] = _tool(function["tool"])
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(job["script"], "<script>", "exec"), scope)
        except BaseException:
            error = traceback.format_exc(limit=5)
        result = scope.get("result")
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            result = repr(result)
        _rpc("script/done", {"output": printed.getvalue(), "error": error, "result": result})
        """#
}
