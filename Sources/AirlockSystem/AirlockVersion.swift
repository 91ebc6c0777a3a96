/// Airlock's version, as `--version` prints it and MCP handshakes give it: the git description
/// of the source it was built from (Plugins/AirlockVersionPlugin writes `GitDescription` before
/// each build), or ``base`` for source that is not a git checkout (a tarball).
///
/// Like `git describe --tags --dirty`, with the tag's `v` dropped: `0.2.0` on a tag,
/// `0.2.0-3-g1a2b3c4` three commits after it, `0.1.0+g1a2b3c4` when no tag precedes the commit,
/// each with `-dirty` when tracked files were changed.
public enum AirlockVersion {
    /// The version before the first tag, and of builds from outside git.
    public static let base = "0.1.0"

    public static let string = describe(
        base: base, tag: GitDescription.tag, distance: GitDescription.distance, commit: GitDescription.commit,
        dirty: GitDescription.dirty)

    static func describe(base: String, tag: String?, distance: Int, commit: String?, dirty: Bool) -> String {
        guard let commit else { return base }
        let changed = dirty ? "-dirty" : ""
        guard let tag else { return "\(base)+g\(commit)\(changed)" }
        let version = tag.hasPrefix("v") ? String(tag.dropFirst()) : tag
        return distance == 0 ? version + changed : "\(version)-\(distance)-g\(commit)\(changed)"
    }
}
