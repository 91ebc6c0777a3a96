// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]

let package = Package(
    name: "airlock",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "airlock", targets: ["airlock"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        .executableTarget(
            name: "airlock",
            dependencies: ["AirlockCommands"],
            swiftSettings: strict
        ),
        .target(name: "AirlockSystem", swiftSettings: strict, plugins: ["AirlockVersionPlugin"]),
        .plugin(name: "AirlockVersionPlugin", capability: .buildTool()),
        .target(name: "AirlockOCI", dependencies: ["AirlockSystem"], swiftSettings: strict),
        .target(name: "AirlockGitGuard", dependencies: ["AirlockSystem"], swiftSettings: strict),
        .target(name: "AirlockExecAgent", dependencies: ["AirlockSystem", "AirlockOCI"], swiftSettings: strict),
        .target(name: "AirlockPolicy", swiftSettings: strict),
        .target(name: "AirlockWire", dependencies: ["AirlockPolicy"], swiftSettings: strict),
        .target(
            name: "AirlockTLS",
            dependencies: [
                "AirlockSystem",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockEgress",
            dependencies: [
                "AirlockSystem", "AirlockState", "AirlockPolicy", "AirlockWire", "AirlockTLS",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockState",
            dependencies: ["AirlockSystem"],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockImages",
            dependencies: [
                "AirlockSystem", "AirlockState",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockRuntime",
            dependencies: [
                "AirlockSystem", "AirlockOCI", "AirlockState", "AirlockImages", "AirlockPolicy", "AirlockEgress",
                "AirlockTLS", "AirlockGitGuard", "AirlockExecAgent", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(name: "AirlockMCP", swiftSettings: strict),
        .target(name: "AirlockClientWiring", swiftSettings: strict),
        .target(
            name: "AirlockMCPAuth",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockCodeSandbox",
            dependencies: ["AirlockMCP", "AirlockRuntime", "AirlockState", "AirlockSystem", "AirlockImages"],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockGateway",
            dependencies: [
                "AirlockMCP", "AirlockRuntime", "AirlockState", "AirlockSystem", "AirlockImages", "AirlockPolicy",
                "AirlockEgress", "AirlockMCPAuth",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockCommands",
            dependencies: [
                "AirlockSystem", "AirlockOCI", "AirlockState", "AirlockImages", "AirlockRuntime",
                "AirlockPolicy", "AirlockEgress", "AirlockMCP", "AirlockCodeSandbox", "AirlockGateway",
                "AirlockGitGuard", "AirlockExecAgent", "AirlockClientWiring", "AirlockMCPAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "AirlockOCITests", dependencies: ["AirlockOCI"], resources: [.copy("Golden")]),
        .testTarget(name: "AirlockExecAgentTests", dependencies: ["AirlockExecAgent", "AirlockOCI"]),
        .testTarget(name: "AirlockImagesTests", dependencies: ["AirlockImages"]),
        .testTarget(
            name: "AirlockPolicyTests",
            dependencies: ["AirlockPolicy", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "AirlockWireTests",
            dependencies: ["AirlockWire", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "AirlockTLSTests",
            dependencies: [
                "AirlockTLS", "AirlockSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "AirlockEgressTests",
            dependencies: [
                "AirlockEgress", "AirlockPolicy", "AirlockWire", "AirlockState", "AirlockSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "AirlockRuntimeTests",
            dependencies: ["AirlockRuntime", "AirlockOCI", "AirlockEgress", "AirlockPolicy", "AirlockImages"]
        ),
        .testTarget(name: "AirlockStateTests", dependencies: ["AirlockState", "AirlockSystem"]),
        .testTarget(name: "AirlockSystemTests", dependencies: ["AirlockSystem"]),
        .testTarget(name: "AirlockGitGuardTests", dependencies: ["AirlockGitGuard", "AirlockSystem"]),
        .testTarget(name: "AirlockMCPTests", dependencies: ["AirlockMCP"]),
        .testTarget(name: "AirlockClientWiringTests", dependencies: ["AirlockClientWiring"]),
        .testTarget(name: "AirlockMCPAuthTests", dependencies: ["AirlockMCPAuth"]),
        .testTarget(
            name: "AirlockCommandsTests",
            dependencies: [
                "AirlockCommands", "AirlockRuntime", "AirlockEgress", "AirlockSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "AirlockGatewayTests",
            dependencies: [
                "AirlockGateway", "AirlockMCP", "AirlockMCPAuth", "AirlockSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
