import AirlockSystem
import Foundation

/// A container image's name as Docker reads it: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
///
/// A first component with a dot, a colon or `localhost` names the registry; otherwise the image
/// is on Docker Hub (`docker.io`), where a one-word repository is under `library/`. Without a tag
/// or a digest the tag is `latest`. Parsing is strict: what Docker refuses is refused here, with
/// a line that says which part is wrong.
public struct ImageReference: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var registry: String
    public var repository: String
    public var tag: String?
    /// `sha256:` and 64 hex digits: the manifest's digest, which a pull verifies.
    public var digest: String?

    public static let dockerHub = "docker.io"

    public init(registry: String, repository: String, tag: String? = nil, digest: String? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws {
        var rest = Substring(text)
        guard !rest.isEmpty else { throw ImageReferenceError(text, "an image reference is empty") }
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard Self.isDigest(digest) else {
                throw ImageReferenceError(text, "the digest must be sha256: and 64 lowercase hex digits")
            }
            self.digest = digest
            rest = rest[..<at]
        }
        // A colon after the last slash starts the tag (a colon before it is a registry's port).
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let tag = String(rest[rest.index(after: colon)...])
            guard Self.isTag(tag) else {
                throw ImageReferenceError(
                    text, "a tag is 1 to 128 of letters, digits, '_', '.' and '-', not starting with '.' or '-'")
            }
            self.tag = tag
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if components.count > 1, let first = components.first,
            first.contains(".") || first.contains(":") || first == "localhost"
        {
            guard Self.isRegistry(first) else {
                throw ImageReferenceError(text, "'\(first)' is not a registry host[:port]")
            }
            registry = first
            components.removeFirst()
        } else {
            registry = Self.dockerHub
            if components.count == 1 { components.insert("library", at: 0) }
        }
        guard !components.isEmpty, components.allSatisfy(Self.isPathComponent) else {
            throw ImageReferenceError(
                text, "a repository is lowercase letters and digits, separated by '/', '.', '_', '__' or '-'")
        }
        repository = components.joined(separator: "/")
        if tag == nil && digest == nil { tag = "latest" }
        guard repository.count <= 255 else { throw ImageReferenceError(text, "the repository name is too long") }
    }

    /// As Docker prints it: Docker Hub's `library/` and registry left out.
    public var description: String {
        var name = registry == Self.dockerHub ? repository : registry + "/" + repository
        if registry == Self.dockerHub, name.hasPrefix("library/") { name.removeFirst("library/".count) }
        if let tag { name += ":" + tag }
        if let digest { name += "@" + digest }
        return name
    }

    /// The full name, registry and all: what the store keys an image by.
    public var canonical: String {
        registry + "/" + repository + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0 } ?? "")
    }

    /// The host the registry's API answers on (Docker Hub's differs from its name).
    public var apiHost: String { registry == Self.dockerHub ? "registry-1.docker.io" : registry }

    static func isDigest(_ text: String) -> Bool {
        // On bytes: a combining mark after a hex digit is still one Character "in range".
        let bytes = Array(text.utf8)
        guard bytes.count == 71, bytes.starts(with: Array("sha256:".utf8)) else { return false }
        return bytes.dropFirst(7).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func isTag(_ text: String) -> Bool {
        guard let first = text.first, first != ".", first != "-", text.count <= 128 else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }

    static func isRegistry(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else { return false }
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return false }
        }
        return host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-".contains($0)) }
    }

    /// `[a-z0-9]+` runs joined by one separator: `.`, `_`, `__`, or any number of `-`.
    static func isPathComponent(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        var separator = ""
        for character in text {
            if isAlphanumeric(character) {
                guard
                    separator.isEmpty || separator == "." || separator == "_" || separator == "__"
                        || separator.allSatisfy({ $0 == "-" })
                else { return false }
                separator = ""
            } else if ".-_".contains(character) {
                separator.append(character)
            } else {
                return false
            }
        }
        return true
    }

    private static func isAlphanumeric(_ character: Character) -> Bool {
        ("a"..."z").contains(character) || ("0"..."9").contains(character)
    }
}

/// Where an image is taken from: a registry, or a file or directory skopeo reads, or the local
/// Docker or Podman store. Written as skopeo's transports are (`docker-archive:PATH[:REF]`,
/// `oci-archive:PATH[:REF]`, `oci:DIR[:REF]`, `docker-daemon:REF`, `containers-storage:REF`); a
/// bare name is a registry's.
public enum ImageSource: Equatable, Hashable, Sendable, CustomStringConvertible {
    case registry(ImageReference)
    case dockerArchive(path: String, reference: String?)
    case ociArchive(path: String, reference: String?)
    case ociLayout(path: String, reference: String?)
    case dockerDaemon(ImageReference)
    /// The user's own Podman (containers/storage) store, as `podman images` lists it.
    case podmanStore(ImageReference)

    public init(parsing text: String) throws {
        for (prefix, make) in [
            ("docker-archive:", { ImageSource.dockerArchive(path: $0, reference: $1) }),
            ("oci-archive:", { ImageSource.ociArchive(path: $0, reference: $1) }),
            ("oci:", { ImageSource.ociLayout(path: $0, reference: $1) }),
        ] as [(String, (String, String?) -> ImageSource)] where text.hasPrefix(prefix) {
            let rest = String(text.dropFirst(prefix.count))
            // PATH[:REF]: a path may hold colons of its own only if a reference follows.
            var path = rest
            var reference: String?
            if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/") {
                path = String(rest[..<colon])
                reference = String(rest[rest.index(after: colon)...])
                if reference?.isEmpty == true { reference = nil }
            }
            guard !path.isEmpty else { throw ImageReferenceError(text, "\(prefix) needs a path") }
            self = make((path as NSString).expandingTildeInPath, reference)
            return
        }
        if text.hasPrefix("docker-daemon:") {
            self = .dockerDaemon(try ImageReference(parsing: String(text.dropFirst("docker-daemon:".count))))
            return
        }
        if text.hasPrefix("containers-storage:") {
            self = .podmanStore(try ImageReference(parsing: String(text.dropFirst("containers-storage:".count))))
            return
        }
        if text.hasPrefix("docker://") {
            self = .registry(try ImageReference(parsing: String(text.dropFirst("docker://".count))))
            return
        }
        self = .registry(try ImageReference(parsing: text))
    }

    /// ``init(parsing:)`` for a user's input: a malformed reference is the user's error
    /// (`invalidArgument`), in one line.
    public static func userInput(_ text: String) throws -> ImageSource {
        do {
            return try ImageSource(parsing: text)
        } catch {
            throw AirlockError(.invalidArgument, "\(error)")
        }
    }

    public var description: String {
        switch self {
        case .registry(let reference): reference.description
        case .dockerArchive(let path, let reference): "docker-archive:" + path + (reference.map { ":" + $0 } ?? "")
        case .ociArchive(let path, let reference): "oci-archive:" + path + (reference.map { ":" + $0 } ?? "")
        case .ociLayout(let path, let reference): "oci:" + path + (reference.map { ":" + $0 } ?? "")
        case .dockerDaemon(let reference): "docker-daemon:" + reference.description
        case .podmanStore(let reference): "containers-storage:" + reference.description
        }
    }
}

public struct ImageReferenceError: Error, CustomStringConvertible, Equatable {
    public var description: String

    init(_ text: String, _ problem: String) {
        description = "invalid image reference '\(text)': \(problem)"
    }
}
