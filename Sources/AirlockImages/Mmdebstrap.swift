/// Arguments for `mmdebstrap`, built without running it so tests can check them.
public struct Mmdebstrap: Sendable, Equatable {
    public static let defaultMirror = "http://deb.debian.org/debian"

    public var template: Template
    /// `unshare` for ordinary users, `root` when running as root.
    public var mode: String
    public var output: String
    public var mirror: String

    public init(template: Template, mode: String, output: String, mirror: String? = nil) {
        self.template = template
        self.mode = mode
        self.output = output
        self.mirror = mirror ?? template.mirror ?? Self.defaultMirror
    }

    public var arguments: [String] {
        var args = [
            "mmdebstrap", "--mode=\(mode)", "--variant=apt", "--format=tar",
            "--include=" + template.allPackages.joined(separator: ","),
            "--aptopt=Acquire::Retries \"3\"",
            "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/man/*",
        ]
        for hook in customizeHooks {
            args.append("--customize-hook=" + hook)
        }
        args += [template.suite, output, mirror]
        return args
    }

    /// Shell snippets mmdebstrap runs with the new root as `$1`.
    public var customizeHooks: [String] {
        let user = template.user
        var hooks = [
            "chroot \"$1\" useradd --create-home --uid 1000 --user-group --shell \(shellQuote(user.shell)) \(user.name)",
            "mkdir -p \"$1/workspace\" && chmod 755 \"$1/workspace\"",
        ]
        if user.sudo {
            hooks.append(
                "echo \(shellQuote("\(user.name) ALL=(ALL:ALL) NOPASSWD:ALL")) > \"$1/etc/sudoers.d/airlock\" && chmod 0440 \"$1/etc/sudoers.d/airlock\""
            )
        }
        for step in template.steps {
            hooks.append("chroot \"$1\" env DEBIAN_FRONTEND=noninteractive HOME=/root sh -ec \(shellQuote(step))")
        }
        return hooks
    }
}

/// Quotes a string for POSIX sh.
public func shellQuote(_ value: String) -> String {
    if !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@,+".contains($0) }) { return value }
    return "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
