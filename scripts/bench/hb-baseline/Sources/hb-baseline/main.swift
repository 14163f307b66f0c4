import Hummingbird

// Usage: hb-baseline PORT
let port = Int(CommandLine.arguments.dropFirst().first ?? "18180") ?? 18180

struct Status: ResponseEncodable {
    let status: String
    let version: String
}

let router = Router()
router.get("/v1/status") { _, _ in Status(status: "ok", version: "bench") }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
