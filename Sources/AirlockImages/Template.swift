import AirlockSystem
import Crypto
import Foundation
import Yams

/// An image recipe: a Debian suite, packages, extra install steps and the user setup.
///
/// ```yaml
/// name: python-tools
/// description: Python with ruff and pytest
/// suite: bookworm
/// packages: [python3, python3-pip, git]
/// steps:
///   - pip install --break-system-packages ruff pytest
/// user: {name: agent, sudo: true}
/// ```
///
/// Or a container image with packages and steps on top (`from`), as a Dockerfile's `FROM` and
/// `RUN` make one; the agent's account is then the image's (``ImageAccount``):
///
/// ```yaml
/// name: node-tools
/// from: node:22
/// packages: [ripgrep]                # with the image's apt-get
/// steps: [npm install -g typescript]
/// ```
public struct Template: Codable, Sendable, Equatable, CatalogItem {
    public static let kind = "template"

    public var name: String
    public var description: String?
    public var suite: String
    public var mirror: String?
    public var packages: [String]
    public var steps: [String]
    public var user: UserSetup
    /// A container image to start from instead of a Debian suite.
    public var from: String?
    /// Whether its sandboxes get a private Docker engine (`--docker`): its packages join the
    /// image (``dockerPackages``). Nil, not false, when not asked, so older digests stay.
    public var docker: Bool?

    /// What a sandbox's Docker engine needs in its image: Debian's Docker (dockerd,
    /// containerd, runc, tini, the CLI), a compose tool, crun (which runs inner containers
    /// where runc cannot, without cgroups of their own) and iptables for their networks.
    public static let dockerPackages = ["docker.io", "docker-compose", "crun", "iptables"]

    /// This recipe with a Docker engine's packages.
    public func withDocker() -> Template {
        var result = self
        result.docker = true
        return result
    }

    public init(
        name: String, description: String? = nil, suite: String = "bookworm", mirror: String? = nil,
        packages: [String], steps: [String] = [], user: UserSetup = UserSetup()
    ) {
        self.name = name
        self.description = description
        self.suite = suite
        self.mirror = mirror
        self.packages = packages
        self.steps = steps
        self.user = user
    }

    /// The unprivileged account the agent runs as.
    public struct UserSetup: Codable, Sendable, Equatable {
        public var name: String
        public var shell: String
        /// Whether the user may run `sudo` (password-less) to install system packages.
        public var sudo: Bool
        /// Its home inside when it is not `/home/NAME` (an image's own account may live
        /// elsewhere); never set by a template.
        public var home: String?

        /// Where its home is inside: `home`, or `/home/NAME`.
        public var homeDirectory: String { home ?? "/home/" + name }

        public init(name: String = "agent", shell: String = "/bin/bash", sudo: Bool = true, home: String? = nil) {
            self.name = name
            self.shell = shell
            self.sudo = sudo
            self.home = home
        }

        enum CodingKeys: String, CodingKey { case name, shell, sudo, home }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decodeIfPresent(String.self, forKey: .name) ?? "agent"
            shell = try container.decodeIfPresent(String.self, forKey: .shell) ?? "/bin/bash"
            sudo = try container.decodeIfPresent(Bool.self, forKey: .sudo) ?? true
            home = try container.decodeIfPresent(String.self, forKey: .home)
        }
    }

    enum CodingKeys: String, CodingKey { case name, description, suite, mirror, packages, steps, user, from, docker }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        suite = try container.decodeIfPresent(String.self, forKey: .suite) ?? "bookworm"
        mirror = try container.decodeIfPresent(String.self, forKey: .mirror)
        packages = try container.decodeIfPresent([String].self, forKey: .packages) ?? []
        steps = try container.decodeIfPresent([String].self, forKey: .steps) ?? []
        user = try container.decodeIfPresent(UserSetup.self, forKey: .user) ?? UserSetup()
        from = try container.decodeIfPresent(String.self, forKey: .from)
        docker = try container.decodeIfPresent(Bool.self, forKey: .docker).flatMap { $0 ? true : nil }
        if from != nil && (container.contains(.suite) || container.contains(.mirror)) {
            throw DecodingError.dataCorruptedError(
                forKey: .from, in: container,
                debugDescription: "a template is `from` an image or of a Debian `suite`, not both")
        }
    }

    public func validate(source: String) throws {
        let namePattern = /[a-z0-9][a-z0-9._-]*/
        guard name.wholeMatch(of: namePattern) != nil else {
            throw AirlockError(
                .invalidArgument,
                "template \(source): name '\(name)' must be lower-case letters, digits, '.', '_' or '-'")
        }
        for package in packages where package.wholeMatch(of: /[a-z0-9][a-z0-9+.:=~-]*/) == nil {
            throw AirlockError(.invalidArgument, "template \(source): '\(package)' is not a Debian package name")
        }
        guard suite.wholeMatch(of: /[a-z0-9-]+/) != nil else {
            throw AirlockError(.invalidArgument, "template \(source): suite '\(suite)' is not a Debian suite name")
        }
        guard user.name.wholeMatch(of: /[a-z_][a-z0-9_-]*/) != nil else {
            throw AirlockError(.invalidArgument, "template \(source): user name '\(user.name)' is not valid")
        }
        if let from {
            do {
                _ = try ImageSource(parsing: from)
            } catch {
                throw AirlockError(.invalidArgument, "template \(source): from: \(error)")
            }
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            (context.codingPath.map(\.stringValue).joined(separator: ".") + " " + context.debugDescription)
                .trimmingCharacters(in: .whitespaces)
        @unknown default: "\(error)"
        }
    }

    /// Packages the image gets whatever the recipe says: Airlock's init and, for sudo users, sudo.
    public var allPackages: [String] {
        var result = packages
        let docker = self.docker == true ? Self.dockerPackages : []
        for required in ["tini"] + (user.sudo ? ["sudo"] : []) + docker where !result.contains(required) {
            result.append(required)
        }
        return result
    }

    /// What a build `from` an image installs with the image's `apt-get`: the recipe's packages,
    /// and Docker's when asked (the image brings its own init and sudo, or not).
    public var packagesOverImage: [String] {
        packages + (docker == true ? Self.dockerPackages.filter { !packages.contains($0) } : [])
    }

    /// Content address of the image this recipe builds: changes whenever the build would.
    public var digest: String {
        var canonical = self
        canonical.description = nil
        canonical.name = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(canonical)) ?? Data()
        let hash = SHA256.hash(data: Data("airlock-image-v\(ImageBuilder.formatVersion)\n".utf8) + data)
        return hex(hash)
    }

    /// The recipe as YAML, for `template show`.
    public func yaml() throws -> String {
        try YAMLEncoder().encode(self)
    }
}
