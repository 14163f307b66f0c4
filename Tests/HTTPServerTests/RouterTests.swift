import Foundation
@testable import HTTPServer
import Logging
import Synchronization
import Testing

struct PeerInput: Codable, Sendable, Equatable {
    var name: String
    var peerASN: UInt32
    var holdTime: Int?
    var address: String
    var families: [String]
    var timers: Timers?

    struct Timers: Codable, Sendable, Equatable {
        var connectRetry: Int
    }
}

func json(_ response: HTTPResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.bodyBytes))) as? [String: Any] ?? [:]
}

func postJSON(_ path: String, _ body: String, contentType: String = "application/json") throws -> HTTPRequest {
    try HTTPRequest(.POST, path, headers: ["Content-Type": contentType], body: Array(body.utf8))
}

@Suite("Router, handlers and errors (in-process)")
struct RouterTests {
    let router: Router = {
        let router = Router()
        router.get("/v1/peers", query: ["limit", "x"]) { request, _ in try .json(["limit": request.query["limit"] ?? "none"]) }
        router.get("/v1/peers/{name}", query: ["token"]) { _, context in try .json(["name": try context.parameter("name")]) }
        router.delete("/v1/peers/{name}") { _, _ in .noContent }
        router.get("/v1/pools/{pool}/allocations/{address}") { _, context in
            try .json(["pool": context.parameters["pool"]!, "address": context.parameters["address"]!])
        }
        router.post("/v1/peers") { request, _ in
            let input = try request.decode(PeerInput.self)
            guard input.peerASN != 0 else { throw ValidationError(field: "peer_asn", "must not be 0") }
            return try .json(input, status: .created)
        }
        router.get("/teapot") { _, _ in throw HTTPError(.conflict, title: "Busy", detail: "try later", type: "https://herald.example/problems/busy") }
        router.get("/crash") { _, _ in
            struct Secret: Error { let password = "hunter2" }
            throw Secret()
        }
        return router
    }()

    @Test func parametersAndLiteralRoutes() async throws {
        let r = await router.respond(to: try HTTPRequest(.GET, "/v1/peers/edge%2D1"))
        #expect(r.status == .ok)
        #expect(json(r)["name"] as? String == "edge-1")
        let two = await router.respond(to: try HTTPRequest(.GET, "/v1/pools/blue/allocations/192.0.2.1"))
        #expect(json(two)["pool"] as? String == "blue")
        #expect(json(two)["address"] as? String == "192.0.2.1")
        let list = await router.respond(to: try HTTPRequest(.GET, "/v1/peers?limit=10&x=%E2%9C%93"))
        #expect(json(list)["limit"] as? String == "10")
    }

    @Test func queryParsingDecodesPercentAndPlus() throws {
        let q = try QueryParameters(parsing: "a=1&b=two+words&c=%2B%26%3D&flag&a=2&empty=")
        #expect(q["a"] == "1")
        #expect(q.values("a") == ["1", "2"])
        #expect(q["b"] == "two words")
        #expect(q["c"] == "+&=")
        #expect(q["flag"] == "")
        #expect(q["empty"] == "")
        #expect(q["missing"] == nil)
        #expect(throws: HTTPError.self) { try QueryParameters(parsing: "a=%zz") }
        #expect(throws: HTTPError.self) { try QueryParameters(parsing: "a=%C3") }  // not UTF-8
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        let missing = await router.respond(to: try HTTPRequest(.GET, "/v1/nothing"))
        #expect(missing.status == .notFound)
        #expect(missing.headers["Content-Type"] == "application/problem+json")
        #expect(json(missing)["status"] as? Int == 404)
        let trailing = await router.respond(to: try HTTPRequest(.GET, "/v1/peers/"))
        #expect(trailing.status == .notFound)
        let wrong = await router.respond(to: try HTTPRequest(.PUT, "/v1/peers/x"))
        #expect(wrong.status == .methodNotAllowed)
        #expect(wrong.headers["Allow"] == "DELETE, GET, HEAD")
        let badEscape = await router.respond(to: try HTTPRequest(.GET, "/v1/peers/%zz"))
        #expect(badEscape.status == .badRequest)
    }

    @Test func headUsesTheGetHandlerWithoutBody() async throws {
        let r = await router.respond(to: try HTTPRequest(.HEAD, "/v1/peers/a"))
        #expect(r.status == .ok)
        #expect(r.bodyBytes.isEmpty)
        #expect(r.headers["Content-Length"] == "12")
    }

    @Test func thrownHTTPErrorBecomesProblemJSON() async throws {
        let r = await router.respond(to: try HTTPRequest(.GET, "/teapot"))
        #expect(r.status.code == 409)
        #expect(r.headers["Content-Type"] == "application/problem+json")
        let body = json(r)
        #expect(body["type"] as? String == "https://herald.example/problems/busy")
        #expect(body["title"] as? String == "Busy")
        #expect(body["status"] as? Int == 409)
        #expect(body["detail"] as? String == "try later")
    }

    @Test func unexpectedErrorsBecomeA500WithoutDetails() async throws {
        let r = await router.respond(to: try HTTPRequest(.GET, "/crash"))
        #expect(r.status.code == 500)
        let text = String(decoding: r.bodyBytes, as: UTF8.self)
        #expect(!text.contains("hunter2"))
        #expect(json(r)["title"] as? String == "Internal Server Error")
    }

    // MARK: - JSON bodies

    @Test func jsonBodyDecodesSnakeCase() async throws {
        let body = #"{"name":"edge","peer_asn":65001,"address":"192.0.2.1","families":["ipv4"],"timers":{"connect_retry":30}}"#
        let r = await router.respond(to: try postJSON("/v1/peers", body, contentType: "application/json; charset=utf-8"))
        #expect(r.status == .created)
        #expect(json(r)["peer_asn"] as? Int == 65001)
        #expect((json(r)["timers"] as? [String: Any])?["connect_retry"] as? Int == 30)
    }

    @Test func jsonBodyRejectsWrongContentTypeWith415() async throws {
        let r = await router.respond(to: try postJSON("/v1/peers", "{}", contentType: "text/plain"))
        #expect(r.status.code == 415)
        let none = await router.respond(to: try HTTPRequest(.POST, "/v1/peers", body: Array("{}".utf8)))
        #expect(none.status.code == 415)
    }

    @Test func jsonBodyRejectsUnknownFieldsByName() async throws {
        let body = #"{"name":"edge","peer_asn":65001,"address":"192.0.2.1","families":[],"colour":"red","timers":{"connect_retry":1,"jitter":2}}"#
        let r = await router.respond(to: try postJSON("/v1/peers", body))
        #expect(r.status == .badRequest)
        let errors = json(r)["errors"] as? [[String: String]]
        #expect(errors?.map { $0["field"] ?? "" } == ["colour", "timers.jitter"])
        #expect(errors?.first?["message"] == "unknown field")
    }

    @Test func jsonBodyReportsMissingAndMistypedFields() async throws {
        let missing = await router.respond(to: try postJSON("/v1/peers", #"{"name":"edge","address":"x","families":[]}"#))
        #expect(missing.status == .badRequest)
        #expect((json(missing)["errors"] as? [[String: String]])?.first?["field"] == "peer_asn")
        let mistyped = await router.respond(to: try postJSON("/v1/peers", #"{"name":"e","peer_asn":"65001","address":"x","families":[1]}"#))
        #expect(mistyped.status == .badRequest)
        #expect((json(mistyped)["errors"] as? [[String: String]])?.first?["field"] == "peer_asn")
        let range = await router.respond(to: try postJSON("/v1/peers", #"{"name":"e","peer_asn":4294967296,"address":"x","families":[]}"#))
        #expect(range.status == .badRequest)
        let nested = await router.respond(to: try postJSON("/v1/peers", #"{"name":"e","peer_asn":1,"address":"x","families":["a",2]}"#))
        #expect((json(nested)["errors"] as? [[String: String]])?.first?["field"] == "families[1]")
    }

    @Test func validationErrorIs422WithErrors() async throws {
        let r = await router.respond(to: try postJSON("/v1/peers", #"{"name":"e","peer_asn":0,"address":"x","families":[]}"#))
        #expect(r.status.code == 422)
        let body = json(r)
        #expect(body["status"] as? Int == 422)
        #expect((body["errors"] as? [[String: String]]) == [["field": "peer_asn", "message": "must not be 0"]])
    }

    @Test func malformedOrTooDeepJSONIs400() async throws {
        for text in [#"{"name": }"#, "{", #"{"a":1,"a":2}"#, "[1,]", #"{"a":"\u0000"}"#.replacingOccurrences(of: "\\u0000", with: "\u{1}"), "01", "{} {}", #""\ud800""#] {
            let r = await router.respond(to: try postJSON("/v1/peers", text))
            #expect(r.status == .badRequest, "\(text)")
        }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let r = await router.respond(to: try postJSON("/v1/peers", deep))
        #expect(r.status == .badRequest)
        #expect((json(r)["detail"] as? String)?.contains("nesting") == true)
        let request = try postJSON("/v1/peers", "[" + String(repeating: "1,", count: 600) + "1]")
        #expect(throws: HTTPError.self) { _ = try request.decode([Int].self, maxBytes: 1000) }
    }

    // MARK: - Auth and access log

    @Test func bearerTokensAreRequiredExceptOnPublicPaths() async throws {
        let responder = HTTPResponder(router: router, tokens: ["s3cret-token", "other"], accessLog: false)
        let none = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers"))
        #expect(none.status == .unauthorized)
        #expect(none.headers["WWW-Authenticate"] == #"Bearer realm="herald""#)
        #expect(none.headers["Content-Type"] == "application/problem+json")
        let wrong = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers", headers: ["Authorization": "Bearer s3cret-tokeN"]))
        #expect(wrong.status == .unauthorized)
        #expect(wrong.headers["WWW-Authenticate"]?.contains("invalid_token") == true)
        let prefix = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers", headers: ["Authorization": "Bearer s3cret"]))
        #expect(prefix.status == .unauthorized)
        let basic = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers", headers: ["Authorization": "Basic czNjcmV0LXRva2Vu"]))
        #expect(basic.status == .unauthorized)
        let right = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers", headers: ["Authorization": "bearer s3cret-token"]))
        #expect(right.status == .ok)
        let second = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers", headers: ["Authorization": "Bearer other"]))
        #expect(second.status == .ok)
        let health = await responder.respond(to: try HTTPRequest(.GET, "/healthz"))
        #expect(health.status == .notFound)  // public (no 401), just not routed here
        #expect(HTTPResponder.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!HTTPResponder.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!HTTPResponder.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!HTTPResponder.constantTimeEquals([], Array("a".utf8)))
    }

    @Test func exposureCheckRefusesNonLoopbackWithoutToken() throws {
        #expect(throws: Never.self) { try HTTPServer.Configuration(address: .v4(.init(127, 0, 0, 1))).validateExposure() }
        #expect(throws: Never.self) { try HTTPServer.Configuration(address: .v6(.loopback)).validateExposure() }
        #expect(throws: ExposureError.self) { try HTTPServer.Configuration(address: .v4(.init(0, 0, 0, 0))).validateExposure() }
        #expect(throws: ExposureError.self) { try HTTPServer.Configuration(address: .v4(.init(10, 0, 0, 1)), tokens: [""]).validateExposure() }
        #expect(throws: Never.self) { try HTTPServer.Configuration(address: .v4(.init(0, 0, 0, 0)), tokens: ["t"]).validateExposure() }
    }

    @Test func accessLogHasOneLinePerRequestAndNeverTheToken() async throws {
        let sink = LogSink()
        let logger = Logger(label: "test") { _ in sink }
        let responder = HTTPResponder(router: router, tokens: ["s3cret-token"], logger: logger)
        _ = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers/a?token=s3cret-token", headers: ["Authorization": "Bearer s3cret-token", "X-Request-Id": "rid-1"]))
        _ = await responder.respond(to: try HTTPRequest(.GET, "/v1/peers/b"))
        let lines = sink.lines
        #expect(lines.count == 2)
        #expect(lines[0].contains("GET /v1/peers/a 200"))
        #expect(lines[0].contains("request_id=rid-1"))
        #expect(lines[0].contains("duration_ms="))
        #expect(lines[0].contains("bytes=12"))
        #expect(lines[1].contains("401"))
        #expect(!lines.joined().contains("s3cret"))
    }
}

/// Captures log lines (message plus sorted metadata) for assertions.
final class LogSink: LogHandler, @unchecked Sendable {
    private let storage = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    var lines: [String] { storage.withLock { $0 } }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let text = "\(event.level) \(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        storage.withLock { $0.append(text) }
    }
}
