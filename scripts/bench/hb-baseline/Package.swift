// swift-tools-version:6.0
// Baseline for scripts/bench/http.sh: a minimal Hummingbird 2 server with the same JSON.
// Never built by CI. (The folder is not called "hummingbird": that would clash with the
// dependency's package identity.)
import PackageDescription

let package = Package(
    name: "hb-baseline",
    platforms: [.macOS(.v15)],
    dependencies: [.package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1")],
    targets: [
        .executableTarget(name: "hb-baseline", dependencies: [.product(name: "Hummingbird", package: "hummingbird")]),
    ]
)
