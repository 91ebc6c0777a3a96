/// `/proc/PID/stat`, read as the host's pid namespace numbers it.
enum ProcessStat {
    /// The fields after `(comm)`, which may itself hold spaces and parentheses: the state
    /// (field 3 of proc(5)) first, then the parent, process group, session, ...
    static func fields(of pid: Int32) -> [Substring]? {
        guard let text = try? Files.read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}
