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
    ],
    targets: [
        .executableTarget(
            name: "airlock",
            dependencies: ["AirlockCommands"],
            swiftSettings: strict
        ),
        .target(name: "AirlockSystem", swiftSettings: strict),
        .target(name: "AirlockOCI", swiftSettings: strict),
        .target(name: "AirlockPolicy", swiftSettings: strict),
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
            dependencies: ["AirlockSystem", "AirlockOCI", "AirlockState", "AirlockImages"],
            swiftSettings: strict
        ),
        .target(
            name: "AirlockCommands",
            dependencies: [
                "AirlockSystem", "AirlockOCI", "AirlockState", "AirlockImages", "AirlockRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "AirlockOCITests", dependencies: ["AirlockOCI"], resources: [.copy("Golden")]),
        .testTarget(name: "AirlockImagesTests", dependencies: ["AirlockImages"]),
        .testTarget(name: "AirlockPolicyTests", dependencies: ["AirlockPolicy"]),
        .testTarget(name: "AirlockRuntimeTests", dependencies: ["AirlockRuntime", "AirlockOCI"]),
        .testTarget(name: "AirlockStateTests", dependencies: ["AirlockState", "AirlockSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
