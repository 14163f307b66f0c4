// swift-tools-version:6.0
// Herald: LoadBalancer IPs and BGP announcements for small bare-metal clusters.
// Module map and dependency rules: docs/architecture.md.
import PackageDescription

// CI sets HERALD_WERROR=1 so that a warning fails the build; locally warnings stay warnings.
let warningsAsErrors: [SwiftSetting] = Context.environment["HERALD_WERROR"] == "1" ? [.unsafeFlags(["-warnings-as-errors"])] : []

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
] + warningsAsErrors

let package = Package(
    name: "Herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        // Libraries so that side packages (scripts/bench) can depend on the root by path.
        .library(name: "Sockets", targets: ["Sockets"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // YAML for `herald apply` and `herald export` (the client only).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: - C shims
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "CSystem"),
        // dqlite (cluster mode), opened with dlopen so that the default build needs no libdqlite.
        .target(name: "CDqlite"),

        // MARK: - Pure modules (no sockets, clocks or files)
        .target(name: "IP", swiftSettings: strict),
        .target(name: "BGP", dependencies: ["IP"], swiftSettings: strict),
        .target(name: "IPAM", dependencies: ["IP"], swiftSettings: strict),
        .target(name: "BFD", swiftSettings: strict),
        .target(name: "JSON", swiftSettings: strict),
        .target(name: "DqliteWire", swiftSettings: strict),

        // MARK: - I/O modules
        .target(name: "Store", dependencies: ["CSQLite", "CDqlite", "DqliteWire", "IP", "Sockets"], swiftSettings: strict),
        .target(name: "Sockets", dependencies: ["CSystem", "IP"], swiftSettings: strict),
        .target(
            name: "BGPSpeaker",
            dependencies: ["BGP", "BFD", "Sockets", "IP", "CSystem", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "HTTPServer",
            dependencies: ["JSON", "Sockets", "IP", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        // MARK: - Domain
        .target(
            name: "HeraldCore",
            dependencies: [
                "BGP", "BGPSpeaker", "CSystem", "HTTPServer", "IP", "IPAM", "JSON", "Sockets", "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: - The binary
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldCore", "HTTPServer", "IP", "JSON", "Sockets", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Tests
        // The process-wide gate that keeps load tests and timing-sensitive tests apart (every test
        // target links into one test process): Tests/TestSupport/LoadGate.swift.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "IPTests", dependencies: ["IP", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StoreTests", dependencies: ["Store"], swiftSettings: strict),
        .testTarget(name: "BFDTests", dependencies: ["BFD"], swiftSettings: strict),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: strict),
        .testTarget(name: "DqliteWireTests", dependencies: ["DqliteWire", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "IP"], swiftSettings: strict),
        .testTarget(
            name: "HeraldCoreTests",
            dependencies: ["BGPSpeaker", "HeraldCore", "HTTPServer", "IP", "IPAM", "Sockets", "Store", "herald", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(name: "BGPTests", dependencies: ["BGP", "IP", "TestSupport"], resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(
            name: "BGPSpeakerTests",
            dependencies: ["BGPSpeaker", "BGP", "BFD", "Sockets", "IP", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(name: "SocketsTests", dependencies: ["Sockets", "CSystem", "IP"], swiftSettings: strict),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["HTTPServer", "JSON", "Sockets", "IP", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Real BGP daemons (BIRD 2, GoBGP, FRR) in test-created network namespaces: docs/interop.md.
        .testTarget(
            name: "InteropTests",
            dependencies: ["IP", "BGP", "BGPSpeaker", "Sockets", "herald", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
