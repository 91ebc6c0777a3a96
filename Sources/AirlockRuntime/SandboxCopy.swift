import AirlockImages
import AirlockState
import AirlockSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `airlock cp`: files and directories into and out of a sandbox, as `docker cp` copies them.
///
/// The sandbox's side runs inside it (`tar` through `exec`, as root there), so its paths
/// resolve in its own view and a link it holds can lead only to its own files. What comes out
/// is unpacked on the host by ``LayerUnpacker``: every parent resolved inside the destination,
/// no link followed, no device made, every file the user's. What goes in belongs to the
/// sandbox's agent. A stopped sandbox is started for the copy and stopped again.
public struct SandboxCopy {
    let sandboxes: Sandboxes

    public init(sandboxes: Sandboxes) {
        self.sandboxes = sandboxes
    }

    /// One side of a copy: `NAME:PATH` in a sandbox, a host path, or `-` for a tar stream on
    /// standard input or output.
    public enum Endpoint: Equatable, Sendable {
        case sandbox(name: String, path: String)
        case host(String)
        case stream

        /// As `docker cp` reads it: `NAME:PATH` when what precedes the first colon could be a
        /// sandbox name (a host path with a colon is written `./a:b`).
        public init(_ text: String) {
            if text == "-" {
                self = .stream
                return
            }
            if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"),
                (try? Sandboxes.validate(name: String(text[..<colon]))) != nil
            {
                self = .sandbox(name: String(text[..<colon]), path: String(text[text.index(after: colon)...]))
                return
            }
            self = .host(text)
        }
    }

    public func copy(from source: Endpoint, to destination: Endpoint) throws {
        switch (source, destination) {
        case (.host(let path), .sandbox(let name, let target)):
            try copyIn(.host(path), name: name, target: target)
        case (.stream, .sandbox(let name, let target)):
            try copyIn(.stream, name: name, target: target)
        case (.sandbox(let name, let path), .host(let target)):
            try copyOut(name: name, path: path, to: target)
        case (.sandbox(let name, let path), .stream):
            try copyOut(name: name, path: path, to: nil)
        case (.sandbox, .sandbox):
            throw AirlockError(
                .invalidArgument, "copy between two sandboxes through the host: cp A:PATH DIR, then cp DIR B:PATH")
        default:
            throw AirlockError(.invalidArgument, "name a sandbox on one side: cp SRC NAME:DST or cp NAME:SRC DST")
        }
    }

    // MARK: into the sandbox

    private func copyIn(_ source: Endpoint, name: String, target: String) throws {
        let record = try sandboxes.record(name)
        guard target.hasPrefix("/") else {
            throw AirlockError(.invalidArgument, "give the path inside as an absolute path: \(name):/PATH")
        }
        var hostSource: (parent: String, base: String)?
        if case .host(let path) = source {
            var info = stat()
            guard lstat(path, &info) == 0 else {
                throw AirlockError(.notFound, "\(path): \(String(cString: strerror(errno)))")
            }
            hostSource = Self.split(path)
        }
        let owner =
            "\(record.account?.uid ?? SandboxIdentityIDs.agent):\(record.account?.gid ?? SandboxIdentityIDs.agent)"
        try whileRunning(name) {
            var archive: ChildProcess?
            var input: ChildProcess.Stdio = .inherit
            if let hostSource {
                let pipe = try Pipe2()
                // GNU tar on the host: links are archived as links, never followed.
                archive = try ChildProcess.spawn(
                    ["tar", "-c", "-f", "-", "--numeric-owner", "-C", hostSource.parent, "--", hostSource.base],
                    stdin: .null, stdout: .fd(pipe.write), stderr: .file(errorsFile("host")))
                pipe.closeWrite()
                input = .fd(pipe.takeRead())
            }
            let status: Int32
            do {
                status = try inside(
                    name, script: Self.extractScript, arguments: [target, hostSource?.base ?? ".", owner],
                    stdin: input, stdout: .null)
            } catch {
                archive?.signal(SIGKILL)
                _ = archive?.wait()
                throw error
            }
            // The sandbox's side first: when it fails, the host's tar dies of a closed pipe.
            guard status == 0 else {
                archive?.signal(SIGKILL)
                _ = archive?.wait()
                throw AirlockError(.failed, "cannot copy into \(name):\(target): \(reason(errorsFile("inside")))")
            }
            if let archive, archive.wait() != 0 {
                throw AirlockError(.failed, "cannot read \(source): \(reason(errorsFile("host")))")
            }
        }
    }

    /// Unpacks a tar stream (standard input) at `$1`, as `docker cp` places things, owned by
    /// `$3`: `$2` is the archive's one top entry (`.` for a stream of a directory's contents).
    /// Unpacked beside the target first, so a failure leaves nothing half-copied.
    static let extractScript = #"""
        set -eu
        target=$1 base=$2 owner=$3
        fail() { echo "$*" >&2; exit 1; }
        case "$target" in */) [ -d "$target" ] || fail "no directory $target in the sandbox";; esac
        if [ -d "$target" ]; then parent=$target; else parent=$(dirname "$target"); fi
        [ -d "$parent" ] || fail "no directory $parent in the sandbox"
        tmp=$(mktemp -d "$parent/.airlock-cp.XXXXXX") || fail "cannot write in $parent"
        trap 'rm -rf "$tmp"' EXIT
        tar -x -f - -C "$tmp" --no-same-owner 2>"$tmp.err" || fail "$(tail -n 1 "$tmp.err"; rm -f "$tmp.err")"
        rm -f "$tmp.err"
        chown -R -h "$owner" "$tmp"
        # An existing directory keeps its owner and mode (not those of the staging directory).
        merge() { (cd "$1" && tar -c -f - .) | tar -x -f - -C "$2" --no-overwrite-dir || fail "cannot write in $2"; }
        if [ "$base" = . ]; then
            [ -e "$target" ] || { mkdir "$target" && chown "$owner" "$target"; } || fail "cannot make $target"
            [ -d "$target" ] || fail "$target is not a directory"
            merge "$tmp" "$target"
        elif [ -d "$target" ] && [ -d "$target/$base" ] && [ -d "$tmp/$base" ] && [ ! -L "$target/$base" ]; then
            merge "$tmp/$base" "$target/$base"
        elif [ -d "$target" ] && [ ! -L "$target" ]; then
            [ -d "$target/$base" ] && [ ! -L "$target/$base" ] && fail "cannot put a file over the directory $target/$base"
            mv -f -T "$tmp/$base" "$target/$base" || fail "cannot write $target/$base"
        else
            [ -d "$tmp/$base" ] && [ -e "$target" ] && fail "cannot put a directory over the file $target"
            mv -f -T "$tmp/$base" "$target" || fail "cannot write $target"
        fi
        """#

    // MARK: out of the sandbox

    private func copyOut(name: String, path: String, to target: String?) throws {
        let record = try sandboxes.record(name)
        guard path.hasPrefix("/") else {
            throw AirlockError(.invalidArgument, "give the path inside as an absolute path: \(name):/PATH")
        }
        let (parent, base) = Self.split(path)
        guard let target else {
            try whileRunning(name) {
                let status = try inside(
                    name, script: Self.archiveScript, arguments: [parent, base, path], stdin: .null, stdout: .inherit)
                guard status == 0 else {
                    throw AirlockError(.failed, "cannot copy \(name):\(path): \(reason(errorsFile("inside")))")
                }
            }
            return
        }
        let destination = try Placement(target: target, base: base, sandboxWrites: Self.writablePlaces(record))
        try whileRunning(name) {
            let pipe = try Pipe2()
            let child = try ChildProcess.spawn(
                [
                    Executables.current, "exec", "-u", "root", name, "--", "sh", "-c", Self.archiveScript, "airlock-cp",
                    parent, base, path,
                ],
                stdin: .null, stdout: .fd(pipe.write), stderr: .file(errorsFile("inside")))
            pipe.closeWrite()
            let read = pipe.takeRead()
            defer { close(read) }
            do {
                try destination.unpack(from: read)
            } catch {
                child.signal(SIGKILL)
                _ = child.wait()
                throw error
            }
            guard child.wait() == 0 else {
                throw AirlockError(.failed, "cannot copy \(name):\(path): \(reason(errorsFile("inside")))")
            }
            try destination.place()
        }
    }

    /// Writes a tar stream of `$1/$2` (its contents when `$2` is `.`) to standard output; `$3`
    /// is the path as the user gave it.
    static let archiveScript = #"""
        set -eu
        [ -e "$1/$2" ] || [ -L "$1/$2" ] || { echo "no such file or directory: $3" >&2; exit 1; }
        exec tar -c -f - --numeric-owner -C "$1" -- "$2"
        """#

    /// Where a copy out lands on the host, as `docker cp` places it: into an existing
    /// directory, or as a new name in one. Unpacked first into a directory of its own beside
    /// the target, then moved into place, all by descriptor: the destination may be in the
    /// workspace, which the sandbox writes while the copy runs, so no name is looked up twice
    /// and no link under a place the sandbox writes is followed. What comes out loses set-id
    /// bits and writes for others.
    final class Placement {
        let receiving: Int32
        /// The name of the result in `receiving`; nil: the entry keeps its name there.
        let newName: String?
        let base: String
        let stagingName: String
        let staging: Int32

        init(target: String, base: String, sandboxWrites roots: [String]) throws {
            self.base = base
            var existing: Int32?
            do {
                existing = try DirectoryMoves.openDirectory(target, refusingLinksUnder: roots)
            } catch let error as AirlockError {
                throw error
            } catch {
                existing = nil
            }
            if let existing {
                receiving = existing
                newName = nil
            } else {
                if target.hasSuffix("/") { throw AirlockError(.notFound, "no directory \(target) on the host") }
                let (parent, name) = SandboxCopy.split(target)
                do {
                    receiving = try DirectoryMoves.openDirectory(parent, refusingLinksUnder: roots)
                } catch let error as AirlockError {
                    throw error
                } catch {
                    throw AirlockError(.notFound, "no directory \(parent) on the host")
                }
                newName = name
            }
            stagingName = ".airlock-cp-" + randomToken().prefix(12)
            guard mkdirat(receiving, stagingName, 0o700) == 0 else {
                let code = errno
                close(receiving)
                throw SystemCallError("make a directory beside \(target)", errno: code)
            }
            staging = openat(receiving, stagingName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard staging >= 0 else {
                let code = errno
                close(receiving)
                throw SystemCallError("open a directory beside \(target)", errno: code)
            }
        }

        deinit {
            try? DirectoryMoves.remove(stagingName, in: receiving)
            close(staging)
            close(receiving)
        }

        func unpack(from fd: Int32) throws {
            do {
                _ = try LayerUnpacker.unpack(
                    from: fd, intoDirectory: staging, setOwners: false, layerMarkers: false,
                    modeMask: S_ISUID | S_ISGID | S_IWOTH)
            } catch {
                throw AirlockError(.failed, "cannot unpack what the sandbox sent: \(error)")
            }
        }

        /// Moves what was unpacked into place: a directory into an existing one is merged, a
        /// file replaces a file.
        func place() throws {
            switch (newName, base) {
            case (let name?, "."):
                if mkdirat(receiving, name, 0o755) != 0 && errno != EEXIST {
                    throw SystemCallError("make \(name)", errno: errno)
                }
                let made = try DirectoryMoves.openDirectory(name, inDirectory: receiving)
                defer { close(made) }
                for entry in try DirectoryMoves.names(in: staging) {
                    try DirectoryMoves.move(entry, from: staging, to: entry, in: made)
                }
            case (let name?, _):
                try DirectoryMoves.move(base, from: staging, to: name, in: receiving)
            case (nil, "."):
                for entry in try DirectoryMoves.names(in: staging) {
                    try DirectoryMoves.move(entry, from: staging, to: entry, in: receiving)
                }
            case (nil, _):
                try DirectoryMoves.move(base, from: staging, to: base, in: receiving)
            }
        }
    }

    // MARK: helpers

    /// The host places the sandbox writes: its workspace and its writable mounts.
    static func writablePlaces(_ record: SandboxRecord) -> [String] {
        [record.workspace] + record.mounts.filter { !$0.readOnly }.map(\.source)
    }

    /// Runs `script` as root inside the sandbox; its errors go to a file of this copy.
    private func inside(
        _ name: String, script: String, arguments: [String], stdin: ChildProcess.Stdio, stdout: ChildProcess.Stdio
    ) throws -> Int32 {
        let child = try ChildProcess.spawn(
            [Executables.current, "exec", "-i", "-u", "root", name, "--", "sh", "-c", script, "airlock-cp"] + arguments,
            stdin: stdin, stdout: stdout, stderr: .file(errorsFile("inside")))
        if case .fd(let fd) = stdin { close(fd) }
        return child.wait()
    }

    /// Starts a stopped sandbox for the length of `body`, then stops it again.
    private func whileRunning(_ name: String, _ body: () throws -> Void) throws {
        let paths = sandboxes.store.sandbox(name)
        let wasRunning = paths.isRunning
        if !wasRunning { try sandboxes.start(name) }
        defer {
            if !wasRunning { try? sandboxes.stop(name) }
            for side in ["host", "inside"] { Files.remove(errorsFile(side)) }
        }
        try body()
    }

    private func errorsFile(_ side: String) -> String {
        NSTemporaryDirectory() + "/airlock-cp-\(getpid())-\(side).err"
    }

    /// The first line the failing side wrote: the reason (what follows, such as the guard's
    /// report of what it kept from the workspace, is about it).
    private func reason(_ file: String) -> String {
        let text = (try? Files.read(file)) ?? ""
        let line =
            text.split(separator: "\n").first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init)
            ?? "it failed"
        return line.hasPrefix("airlock: ") ? String(line.dropFirst(9)) : line
    }

    /// `/a/b/c` → (`/a/b`, `c`); `/a/b/.` → (`/a/b`, `.`); `/` → (`/`, `.`).
    static func split(_ path: String) -> (parent: String, base: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", trimmed == "." ? "." : String(trimmed)) }
        let parent = trimmed[..<slash].isEmpty ? "/" : String(trimmed[..<slash])
        let base = String(trimmed[trimmed.index(after: slash)...])
        return (parent, base.isEmpty ? "." : base)
    }
}
