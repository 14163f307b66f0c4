import Foundation
import Glibc
@testable import HTTPServer
import IP
import Sockets
import Synchronization
import Testing

func testRouter() -> Router {
    let router = Router()
    router.get("/healthz") { _, _ in try .json(["status": "ok"]) }
    router.get("/v1/status") { _, _ in try .json(["status": "ok", "version": "test"]) }
    router.get("/echo/{name}", query: ["q"]) { request, context in
        try .json(["name": try context.parameter("name"), "q": request.query["q"] ?? ""])
    }
    router.post("/upload") { request, _ in .text("got \(request.body.count)") }
    router.get("/slow") { _, _ in
        try await Task.sleep(for: .milliseconds(500))
        return .text("slow done")
    }
    return router
}

@Suite("HTTP server over sockets", .serialized)
struct ServerTests {
    @Test func getJSONWithDateLengthAndRequestID() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                let r = try client.request("GET", "/v1/status")
                #expect(r.status == 200)
                #expect(r.header("Content-Type") == "application/json")
                #expect(r.header("Content-Length") == String(r.body.count))
                #expect(r.header("Date")?.hasSuffix(" GMT") == true)
                #expect(r.header("X-Request-Id")?.count == 16)
                #expect(r.text == #"{"status":"ok","version":"test"}"#)
                let echoed = try client.request("GET", "/echo/a%20b?q=x+y%21", headers: ["X-Request-Id": "req-42"])
                #expect(echoed.header("X-Request-Id") == "req-42")
                #expect(echoed.json?["name"] as? String == "a b")
                #expect(echoed.json?["q"] as? String == "x y!")
                let missing = try client.request("GET", "/nope")
                #expect(missing.status == 404)
                #expect(missing.header("Content-Type") == "application/problem+json")
                let wrong = try client.request("DELETE", "/v1/status")
                #expect(wrong.status == 405)
                #expect(wrong.header("Allow") == "GET, HEAD")
                let head = try client.request("HEAD", "/v1/status")
                #expect(head.status == 200)
                #expect(head.header("Content-Length") == "32")
                #expect(head.body.isEmpty)
                // The connection is still usable after HEAD (no stray body bytes).
                #expect(try client.request("GET", "/healthz").status == 200)
            }
        }
    }

    @Test func ipv6Loopback() async throws {
        try await withServer(testRouter(), host: .v6(.loopback)) { _, port in
            try await onThread {
                let client = try TestClient(port: port, host: .v6(.loopback))
                #expect(try client.request("GET", "/healthz").status == 200)
            }
        }
    }

    @Test func keepAliveServesOneHundredRequestsOnOneConnection() async throws {
        try await withServer(testRouter()) { server, port in
            try await onThread {
                let client = try TestClient(port: port)
                for i in 0..<100 {
                    let r = try client.request("GET", "/echo/n\(i)")
                    #expect(r.status == 200)
                    #expect(r.json?["name"] as? String == "n\(i)")
                    #expect(r.header("Connection") == nil)
                }
            }
            #expect(await server.connectionCount() <= 1)
        }
    }

    @Test func pipelinedRequestsInOneWriteAnswerInOrder() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                var batch = ""
                for i in 0..<10 {
                    // Mix a slow handler in: responses must still come back in request order.
                    let path = i == 3 ? "/slow" : "/echo/p\(i)"
                    batch += "GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n"
                }
                try client.send(batch)
                for i in 0..<10 {
                    let r = try #require(try client.readResponse())
                    #expect(r.status == 200)
                    if i == 3 { #expect(r.text == "slow done") } else { #expect(r.json?["name"] as? String == "p\(i)") }
                }
            }
        }
    }

    @Test func connectionCloseAndHTTP10() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let a = try TestClient(port: port)
                let r = try a.request("GET", "/healthz", headers: ["Connection": "close"])
                #expect(r.header("Connection") == "close")
                #expect(try a.readUntilClosed().isEmpty)
                let b = try TestClient(port: port)
                try b.send("GET /healthz HTTP/1.0\r\n\r\n")
                let r10 = try #require(try b.readResponse())
                #expect(r10.status == 200)
                #expect(r10.header("Connection") == "close")
                #expect(try b.readUntilClosed().isEmpty)
                let c = try TestClient(port: port)
                try c.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                #expect(try c.readResponse()?.header("Connection") == "keep-alive")
                try c.send("GET /healthz HTTP/1.0\r\n\r\n")
                #expect(try c.readResponse()?.status == 200)
            }
        }
    }

    @Test func chunkedBodyAndExpectContinue() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
                #expect(try client.readResponse()?.text == "got 8")
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
                let interim = try #require(try client.readResponse())
                #expect(interim.status == 100)
                try client.send("data")
                #expect(try client.readResponse()?.text == "got 4")
            }
        }
    }

    @Test func malformedRequestGets400AndClose() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                try client.send("GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
                let r = try #require(try client.readResponse())
                #expect(r.status == 400)
                #expect(r.header("Connection") == "close")
                #expect(r.header("Content-Type") == "application/problem+json")
                #expect(try client.readUntilClosed().isEmpty)
                let v = try TestClient(port: port)
                try v.send("GET / HTTP/2.0\r\nHost: t\r\n\r\n")
                #expect(try v.readResponse()?.status == 505)
                let m = try TestClient(port: port)
                try m.send("BREW / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try m.readResponse()?.status == 501)
            }
        }
    }

    @Test func twoMebibyteBodyGets413AndTheConnectionCloses() async throws {
        try await withServer(testRouter()) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                let body = [UInt8](repeating: 0x78, count: 2 * 1024 * 1024)
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n")
                // The server answers as soon as it sees the head; keep sending anyway, as a naive
                // client would, and tolerate the server cutting us off.
                try? client.send(body)
                let r = try #require(try client.readResponse())
                #expect(r.status == 413)
                #expect(r.header("Connection") == "close")
                #expect(try client.readUntilClosed().isEmpty)
            }
            // Chunked: the limit hits mid-body.
            try await onThread {
                let client = try TestClient(port: port)
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
                let chunk = Array("100000\r\n".utf8) + [UInt8](repeating: 0x79, count: 0x100000) + [13, 10]
                try? client.send(chunk)
                try? client.send(chunk)
                let r = try #require(try client.readResponse())
                #expect(r.status == 413)
                #expect(try client.readUntilClosed().isEmpty)
            }
        }
    }
}
