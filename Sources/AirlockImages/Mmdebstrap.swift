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
            // sudo keeps the proxy and trust settings, so that `sudo pip install` and friends
            // reach the network through the sandbox's proxy and trust what it trusts.
            let rules = [
                "\(user.name) ALL=(ALL:ALL) NOPASSWD:ALL",
                "Defaults env_keep += \"\(Self.sudoKeptVariables.joined(separator: " "))\"",
            ]
            hooks.append(
                "printf '%s\\n' \(rules.map(shellQuote).joined(separator: " ")) > \"$1/etc/sudoers.d/airlock\" && chmod 0440 \"$1/etc/sudoers.d/airlock\""
            )
        }
        guard !template.steps.isEmpty else { return hooks }
        // Steps download (pip, npm, installers) and trust what this machine trusts: behind a
        // TLS-inspecting proxy the image's own bundle lacks the proxy's CA. The host's bundle is
        // there for the steps only, and gone from the image.
        let bundle = Self.buildTrustBundle
        hooks.append("cp /etc/ssl/certs/ca-certificates.crt \"$1\(bundle)\" 2>/dev/null || true")
        let trust =
            ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"]
            .map { "\($0)=\(bundle)" }.joined(separator: " ") + " npm_config_cafile=\(bundle)"
        for step in template.steps {
            // Its output goes to stderr, which the build shows as progress and quotes on failure.
            hooks.append(
                "chroot \"$1\" env DEBIAN_FRONTEND=noninteractive HOME=/root \(trust) sh -ec \(shellQuote(step)) >&2")
        }
        hooks.append("rm -f \"$1\(bundle)\"")
        return hooks
    }

    /// The variables sudo passes on inside a sandbox: where the proxy is and what to trust.
    static let sudoKeptVariables = [
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
        "PIP_PROXY", "npm_config_proxy", "npm_config_https_proxy", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY",
        "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "NODE_EXTRA_CA_CERTS",
    ]

    /// Where the host's certificate bundle is while the steps run.
    static let buildTrustBundle = "/tmp/airlock-build-ca.crt"
}

/// Quotes a string for POSIX sh.
public func shellQuote(_ value: String) -> String {
    if !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@,+".contains($0) }) { return value }
    return "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
