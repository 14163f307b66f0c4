import Foundation
import HTTPServer
import IP
import Sockets

// Usage: herald-http-bench PORT
let port = UInt16(CommandLine.arguments.dropFirst().first ?? "18179") ?? 18179

struct Status: Encodable, Sendable {
    let status: String
    let version: String
}

let loop = try EventLoop()
let router = Router()
router.get("/v1/status") { _, _ in try .json(Status(status: "ok", version: "bench")) }
let server = HTTPServer(
    loop: loop,
    configuration: .init(address: .v4(IPv4Address(127, 0, 0, 1)), port: port, accessLog: false),
    router: router)
try await server.start()
FileHandle.standardError.write(Data("herald-http-bench listening on \(server.localAddress!)\n".utf8))
while true { try await Task.sleep(for: .seconds(3600)) }
