// swift-tools-version:6.0
// Benchmark server: Herald's HTTPServer serving GET /v1/status. Built only by scripts/bench/http.sh.
// The repository root is a path dependency; its explicit name keeps the product references below
// valid whatever the checkout folder is called (a path dependency's identity is its folder name).
import PackageDescription

let package = Package(
    name: "http-bench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Herald", path: "../../..")],
    targets: [
        .executableTarget(
            name: "herald-http-bench",
            dependencies: [
                .product(name: "HTTPServer", package: "Herald"),
                .product(name: "Sockets", package: "Herald"),
            ]
        ),
    ]
)
