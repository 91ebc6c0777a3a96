import Foundation
import PackagePlugin

/// Describes the git commit the source is built from, for `airlock --version`: before every
/// build, a shell writes `GitDescription.swift` (commit, nearest tag, distance from it, local
/// changes) into the target, and rewrites it only when that changed, so a build with nothing
/// new compiles nothing. Built from a tarball (or without git), the description is empty and
/// the version is the base one.
@main
struct AirlockVersionPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "GitDescription")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return [
            .prebuildCommand(
                displayName: "Describing the git commit of \(context.package.displayName)",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", Self.script, "describe", context.package.directoryURL.path(), output.path()],
                environment: ["PATH": path],
                outputFilesDirectory: output)
        ]
    }

    /// `$1` is the package directory, `$2` the output directory. Only this package's own
    /// repository counts, not one the source happens to sit in; `--no-optional-locks` keeps
    /// `git status` from writing the index while someone else uses the repository.
    static let script = #"""
        set -u
        source=$1
        out=$2/GitDescription.swift
        mkdir -p "$2"
        commit=nil tag=nil distance=0 dirty=false
        if top=$(git -C "$source" rev-parse --show-toplevel 2>/dev/null) &&
            [ "$(cd "$top" && pwd -P)" = "$(cd "$source" && pwd -P)" ] &&
            hash=$(git -C "$source" rev-parse --short=7 HEAD 2>/dev/null); then
            commit="\"$hash\""
            if name=$(git -C "$source" describe --tags --abbrev=0 2>/dev/null); then
                case $name in
                *[!A-Za-z0-9._+-]*) ;;
                *)
                    tag="\"$name\""
                    distance=$(git -C "$source" rev-list --count "$name..HEAD")
                    ;;
                esac
            fi
            changes=$(git -C "$source" --no-optional-locks status --porcelain --untracked-files=no)
            [ -n "$changes" ] && dirty=true
        fi
        cat >"$out.new" <<SWIFT
        // Written before each build by Plugins/AirlockVersionPlugin; not to be edited.
        enum GitDescription {
            static let commit: String? = $commit
            static let tag: String? = $tag
            static let distance = $distance
            static let dirty = $dirty
        }
        SWIFT
        if cmp -s "$out.new" "$out"; then rm -f "$out.new"; else mv "$out.new" "$out"; fi
        """#
}
