import Foundation

/// The parts of the OCI image format Airlock reads: an image layout's index, a manifest and an
/// image config. Docker's schema 2 media types have the same fields.
public enum OCIDocuments {
    public struct Descriptor: Codable, Equatable, Sendable {
        public var mediaType: String?
        public var digest: String
        public var size: Int64?
        public var annotations: [String: String]?
        public var platform: Platform?
    }

    public struct Platform: Codable, Equatable, Sendable {
        public var architecture: String
        public var os: String
        public var variant: String?
    }

    public struct Index: Codable, Equatable, Sendable {
        public var manifests: [Descriptor]
    }

    public struct Manifest: Codable, Equatable, Sendable {
        public var config: Descriptor
        public var layers: [Descriptor]
    }

    /// An image config: what it runs and how, and the digests of its uncompressed layers.
    public struct ImageConfig: Codable, Equatable, Sendable {
        public var architecture: String?
        public var os: String?
        public var config: RunConfig?
        public var rootfs: RootFS?

        public struct RootFS: Codable, Equatable, Sendable {
            public var type: String?
            public var diffIDs: [String]

            enum CodingKeys: String, CodingKey {
                case type
                case diffIDs = "diff_ids"
            }
        }
    }

    /// `Env`, `WorkingDir`, `User`, `Entrypoint`, `Cmd`: what `docker run` honours.
    public struct RunConfig: Codable, Equatable, Sendable {
        public var env: [String]?
        public var workingDir: String?
        public var user: String?
        public var entrypoint: [String]?
        public var cmd: [String]?

        public init(
            env: [String]? = nil, workingDir: String? = nil, user: String? = nil, entrypoint: [String]? = nil,
            cmd: [String]? = nil
        ) {
            self.env = env
            self.workingDir = workingDir
            self.user = user
            self.entrypoint = entrypoint
            self.cmd = cmd
        }

        enum CodingKeys: String, CodingKey {
            case env = "Env"
            case workingDir = "WorkingDir"
            case user = "User"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
        }
    }

    /// How a layer's blob is compressed, from its media type.
    public enum Compression: Equatable, Sendable {
        case none, gzip, zstd

        public init?(mediaType: String?) {
            let type = mediaType ?? "application/vnd.oci.image.layer.v1.tar+gzip"
            if type.hasSuffix("+gzip") || type.hasSuffix(".tar.gzip")
                || type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
            {
                self = .gzip
            } else if type.hasSuffix("+zstd") {
                self = .zstd
            } else if type.hasSuffix(".tar") {
                self = .none
            } else {
                return nil
            }
        }
    }
}
