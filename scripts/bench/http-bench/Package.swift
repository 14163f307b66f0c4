// swift-tools-version:6.0
// Benchmark server: Herald's HTTPServer serving GET /v1/status. Built only by scripts/bench/http.sh.
// `herald-root` is a symlink to the repository root, so the dependency's identity is stable
// whatever the checkout folder is called.
import PackageDescription

let package = Package(
    name: "http-bench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "herald-root")],
    targets: [
        .executableTarget(
            name: "herald-http-bench",
            dependencies: [
                .product(name: "HTTPServer", package: "herald-root"),
                .product(name: "Sockets", package: "herald-root"),
            ]
        ),
    ]
)
