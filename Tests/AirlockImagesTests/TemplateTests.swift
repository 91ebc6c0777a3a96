import AirlockSystem
import Foundation
import Testing

@testable import AirlockImages

@Suite struct TemplateTests {
    let yaml = """
        name: py
        description: Python tools
        packages: [python3, python3-pip]
        steps:
          - pip install --break-system-packages ruff
        user: {name: dev, sudo: false}
        """

    @Test func parsesARecipeWithDefaults() throws {
        let template = try Template.parse(yaml: yaml, source: "py.yaml")
        #expect(template.name == "py")
        #expect(template.suite == "bookworm")
        #expect(template.steps == ["pip install --break-system-packages ruff"])
        #expect(template.user == Template.UserSetup(name: "dev", shell: "/bin/bash", sudo: false))
    }

    @Test func aTemplateFromAnImageKeepsTheDigestsOfOthersAndRefusesASuite() throws {
        let from = try Template.parse(yaml: "name: n\nfrom: node:22\nsteps: [npm i -g tsx]\n", source: "n.yaml")
        #expect(from.from == "node:22")
        let plain = try Template.parse(yaml: yaml, source: "py.yaml")
        // No `from`: nothing of it in what the digest hashes, so every image built before stays.
        #expect(!String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("from"))
        var moved = from
        moved.from = "node:20"
        #expect(moved.digest != from.digest)
        #expect(throws: AirlockError.self) {
            try Template.parse(yaml: "name: n\nfrom: node:22\nsuite: trixie\n", source: "n.yaml")
        }
        #expect(throws: AirlockError.self) {
            try Template.parse(yaml: "name: n\nfrom: \"Not An Image\"\n", source: "n.yaml")
        }
    }

    @Test func alwaysIncludesInitAndSudoForSudoUsers() throws {
        let noSudo = try Template.parse(yaml: yaml, source: "py.yaml")
        #expect(noSudo.allPackages == ["python3", "python3-pip", "tini"])
        #expect(BuiltinTemplates.shell.allPackages.contains("sudo"))
        #expect(BuiltinTemplates.shell.allPackages.contains("tini"))
    }

    @Test func digestFollowsTheRecipeNotItsDescription() throws {
        var template = try Template.parse(yaml: yaml, source: "py.yaml")
        let digest = template.digest
        template.description = "reworded"
        #expect(template.digest == digest)
        template.packages.append("git")
        #expect(template.digest != digest)
        #expect(digest.count == 64)
    }

    @Test(arguments: [
        ("packages: [git]", "missing field 'name'"),
        ("name: Bad Name\npackages: [git]", "must be lower-case"),
        ("name: ok\npackages: ['git; rm -rf /']", "is not a Debian package name"),
        ("name: ok\npackages: git", "packages"),
        ("name: ok\nuser: {name: 'r00t;'}", "user name"),
    ])
    func rejectsBadRecipes(yaml: String, message: String) {
        #expect {
            try Template.parse(yaml: yaml, source: "bad.yaml")
        } throws: { error in
            guard let error = error as? AirlockError else { return false }
            return error.code == .invalidArgument && error.message.contains("bad.yaml")
                && error.message.contains(message)
        }
    }

    @Test func builtinShellHasWhatTheIssueAsks() {
        let packages = Set(BuiltinTemplates.shell.allPackages)
        for needed in [
            "bash", "git", "curl", "ca-certificates", "python3", "python3-pip", "python3-venv", "build-essential",
            "sudo",
        ] {
            #expect(packages.contains(needed), "\(needed)")
        }
    }
}

@Suite struct MmdebstrapTests {
    @Test func buildsTheCommandLine() throws {
        let template = Template(
            name: "t", packages: ["git"], steps: ["echo 'hi'"], user: .init(name: "agent", sudo: true))
        let args = Mmdebstrap(template: template, mode: "unshare", output: "/s/out.tar").arguments
        #expect(args.first == "mmdebstrap")
        #expect(args.contains("--mode=unshare"))
        #expect(args.contains("--include=git,tini,sudo"))
        #expect(Array(args.suffix(3)) == ["bookworm", "/s/out.tar", Mmdebstrap.defaultMirror])
        let hooks = args.filter { $0.hasPrefix("--customize-hook=") }
        #expect(hooks.contains { $0.contains("useradd --create-home --uid 1000") && $0.hasSuffix(" agent") })
        #expect(hooks.contains { $0.contains("sudoers.d/airlock") })
        let trust =
            "SSL_CERT_FILE=/tmp/airlock-build-ca.crt REQUESTS_CA_BUNDLE=/tmp/airlock-build-ca.crt CURL_CA_BUNDLE=/tmp/airlock-build-ca.crt PIP_CERT=/tmp/airlock-build-ca.crt NODE_EXTRA_CA_CERTS=/tmp/airlock-build-ca.crt npm_config_cafile=/tmp/airlock-build-ca.crt"
        #expect(
            Array(hooks.suffix(3)) == [
                "--customize-hook=cp /etc/ssl/certs/ca-certificates.crt \"$1/tmp/airlock-build-ca.crt\" 2>/dev/null || true",
                "--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive HOME=/root \(trust) sh -ec 'echo '\\''hi'\\''' >&2",
                "--customize-hook=rm -f \"$1/tmp/airlock-build-ca.crt\"",
            ])
    }

    @Test func templateMirrorAndOverride() {
        var template = Template(name: "t", packages: [])
        template.mirror = "http://mirror.example/debian"
        #expect(Mmdebstrap(template: template, mode: "root", output: "o").mirror == "http://mirror.example/debian")
        #expect(
            Mmdebstrap(template: template, mode: "root", output: "o", mirror: "http://x/debian").mirror
                == "http://x/debian")
    }

    @Test(arguments: [("plain", "plain"), ("a b", "'a b'"), ("it's", "'it'\\''s'"), ("", "''"), ("$HOME", "'$HOME'")])
    func quotesForSh(input: String, quoted: String) {
        #expect(shellQuote(input) == quoted)
    }
}
