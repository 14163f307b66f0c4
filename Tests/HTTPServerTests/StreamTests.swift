import Foundation
import Glibc
@testable import HTTPServer
import IP
import Sockets
import Synchronization
import Testing
import TestSupport

@Suite("Server-Sent Events and graceful shutdown", .serialized, .timingSensitive)
struct StreamTests {
    @Test func eventEncoding() {
        let e = ServerSentEvent(id: "7", event: "allocation", data: "line1\nline2", retry: 3000)
        #expect(String(decoding: e.encoded, as: UTF8.self) == "event: allocation\nid: 7\nretry: 3000\ndata: line1\ndata: line2\n\n")
        let hostile = ServerSentEvent(id: "1\nevent: x", data: "a")
        #expect(String(decoding: hostile.encoded, as: UTF8.self) == "id: 1event: x\ndata: a\n\n")
    }

    @Test func eventsStreamInOrderAndResumeFromLastEventID() async throws {
        let router = Router()
        router.get("/v1/events") { request, _ in
            let start = Int(request.lastEventID ?? "0") ?? 0
            return .eventStream(heartbeat: .seconds(30)) { events in
                for i in (start + 1)...(start + 3) {
                    try await events.send(ServerSentEvent(id: "\(i)", event: "tick", data: "n=\(i)"))
                }
            }
        }
        router.get("/healthz") { _, _ in try .json(["status": "ok"]) }
        try await withServer(router) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                let r = try client.request("GET", "/v1/events")
                #expect(r.status == 200)
                #expect(r.header("Content-Type") == "text/event-stream")
                #expect(r.header("Transfer-Encoding") == "chunked")
                #expect(r.text == "event: tick\nid: 1\ndata: n=1\n\nevent: tick\nid: 2\ndata: n=2\n\nevent: tick\nid: 3\ndata: n=3\n\n")
                // Keep-alive still works after a finished stream.
                #expect(try client.request("GET", "/healthz").status == 200)
                let resumed = try client.request("GET", "/v1/events", headers: ["Last-Event-ID": "3"])
                #expect(resumed.text.hasPrefix("event: tick\nid: 4\n"))
            }
        }
    }

    @Test func heartbeatsFlowWhileTheStreamIsQuiet() async throws {
        let router = Router()
        router.get("/v1/events") { _, _ in
            .eventStream(heartbeat: .milliseconds(100)) { events in
                try await Task.sleep(for: .milliseconds(1000))
                try await events.send(ServerSentEvent(data: "done"))
            }
        }
        try await withServer(router) { _, port in
            try await onThread {
                let client = try TestClient(port: port)
                let r = try client.request("GET", "/v1/events")
                #expect(r.text.components(separatedBy: ": heartbeat\n\n").count >= 3)
                // The event arrives whole; a heartbeat due at the same moment may still follow it
                // before the stream ends (heartbeats are comments, harmless anywhere between events).
                let parts = r.text.components(separatedBy: "data: done\n\n")
                #expect(parts.count == 2, "\(r.text)")
                #expect(parts.last.map { $0.replacingOccurrences(of: ": heartbeat\n\n", with: "").isEmpty } == true, "\(r.text)")
            }
        }
    }

    @Test func slowConsumerIsDroppedAtItsBufferBound() async throws {
        let outcome = Mutex<ResponseStreamError?>(nil)
        let sent = Mutex(0)
        let router = Router()
        router.get("/v1/events") { _, _ in
            .eventStream(heartbeat: .seconds(30), bufferLimit: 256 * 1024) { events in
                let payload = String(repeating: "x", count: 16 * 1024)
                do {
                    for i in 0..<100_000 {
                        try await events.send(ServerSentEvent(id: "\(i)", data: payload))
                        sent.withLock { $0 += 1 }
                    }
                } catch {
                    let e = error as? ResponseStreamError
                    outcome.withLock { $0 = e }
                    throw error
                }
            }
        }
        try await withServer(router) { server, port in
            let client = try await onThread { () -> TestClient in
                let c = try TestClient(port: port)
                try c.send("GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n")
                return c  // and never read
            }
            #expect(await eventually { outcome.withLock { $0 } != nil })
            #expect(outcome.withLock { $0 } == .slowConsumer)
            // Far fewer than all events went out: memory stayed bounded by kernel buffers + limit.
            #expect(sent.withLock { $0 } < 100_000)
            #expect(await eventually { await server.connectionCount() == 0 })
            withExtendedLifetime(client) {}
        }
    }

    @Test func clientDisconnectCancelsTheProducer() async throws {
        let cancelled = Mutex(false)
        let started = Mutex(false)
        let router = Router()
        router.get("/v1/events") { _, _ in
            .eventStream(heartbeat: .seconds(30)) { events in
                started.withLock { $0 = true }
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    cancelled.withLock { $0 = true }
                    throw error
                }
            }
        }
        try await withServer(router) { server, port in
            try await onThread {
                let c = try TestClient(port: port)
                try c.send("GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try c.readSome()
            }
            #expect(await eventually { started.withLock { $0 } })
            #expect(await eventually { cancelled.withLock { $0 } })
            #expect(await eventually { await server.connectionCount() == 0 })
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequestsAndRefusesNewOnes() async throws {
        let router = testRouter()
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let server = HTTPServer(loop: loop, configuration: .init(port: 0, accessLog: false), router: router)
        try await server.start()
        let port = server.localAddress!.port
        let idle = try await onThread { () -> TestClient in
            let c = try TestClient(port: port)
            _ = try c.request("GET", "/healthz")
            return c
        }
        async let slow: TestResponse? = onThread {
            let c = try TestClient(port: port)
            try c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            return try c.readResponse()
        }
        try await Task.sleep(for: .milliseconds(150))
        let started = ContinuousClock.now
        await server.shutdown(gracePeriod: .seconds(10))
        let took = ContinuousClock.now - started
        let response = try await slow
        #expect(response?.status == 200)
        #expect(response?.text == "slow done")
        #expect(response?.header("Connection") == "close")
        #expect(took < .seconds(5))
        #expect(try await onThread { try idle.readUntilClosed().isEmpty })
        await #expect(throws: ClientError.self) { try await onThread { _ = try TestClient(port: port) } }
        #expect(await server.connectionCount() == 0)
    }

    @Test func shutdownGraceIsBounded() async throws {
        let router = Router()
        router.get("/stuck") { _, _ in
            try? await Task.sleep(for: .seconds(30))
            return .text("late")
        }
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let server = HTTPServer(loop: loop, configuration: .init(port: 0, accessLog: false), router: router)
        try await server.start()
        let port = server.localAddress!.port
        async let stuck: [UInt8] = onThread {
            let c = try TestClient(port: port)
            try c.send("GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
            return try c.readUntilClosed()
        }
        try await Task.sleep(for: .milliseconds(150))
        let started = ContinuousClock.now
        await server.shutdown(gracePeriod: .milliseconds(500))
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(try await stuck.isEmpty)  // cut off without a response
        #expect(await server.connectionCount() == 0)
    }
}
