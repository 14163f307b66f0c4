import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import Store

@Suite struct MetricsTests {
    func render() async throws -> String {
        let metrics = Metrics()
        let api = try APIFixture(metrics: metrics)
        let observed = HTTPResponder(router: api.router, accessLog: false, observer: { metrics.observe($0) })
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        _ = await observed.respond(to: try HTTPRequest(.PUT, "/v1/pools/lb", headers: headers, body: Array(#"{"blocks":["192.0.2.0/28"]}"#.utf8)))
        _ = await observed.respond(to: try HTTPRequest(.PUT, "/v1/allocations/default.web", headers: headers, body: Array(#"{"pool":"lb"}"#.utf8)))
        _ = await observed.respond(to: try HTTPRequest(.GET, "/v1/allocations/nope"))
        _ = await observed.respond(to: try HTTPRequest(.GET, "/nowhere"))
        metrics.observeCommit(seconds: 0.004)
        let response = await observed.respond(to: try HTTPRequest(.GET, "/metrics"))
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        return String(decoding: response.bodyBytes, as: UTF8.self)
    }

    @Test func exposesPoolsRoutesAndRequestsByPattern() async throws {
        let text = try await render()
        #expect(text.contains(#"herald_pool_addresses{family="ipv4",pool="lb"} 14"#))
        #expect(text.contains(#"herald_pool_allocated_addresses{family="ipv4",pool="lb"} 1"#))
        #expect(text.contains("herald_routes_originated 1"))
        #expect(text.contains(#"herald_http_requests_total{method="GET",route="/v1/allocations/{name}",status="404"} 1"#), "names are not labels")
        #expect(text.contains(#"herald_http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
        #expect(text.contains(#"herald_sqlite_commit_duration_seconds_bucket{le="0.005"} 1"#))
        #expect(text.contains("process_resident_memory_bytes ") && text.contains("process_open_fds "))
    }

    /// `promtool check metrics` (Debian package prometheus) accepts the exposition.
    @Test func promtoolAcceptsTheExposition() async throws {
        let tool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" {
                Issue.record("promtool is missing (Debian package prometheus)")
            } else {
                print("skipping: promtool is not installed")
            }
            return
        }
        let text = try await render()
        let directory = ScratchDirectory()
        try text.write(toFile: directory.file("metrics.txt"), atomically: true, encoding: .utf8)
        let result = try HeraldBinaryTests.run("/bin/sh", ["-c", "\(tool) check metrics < metrics.txt"], in: directory.path, signal: nil)
        #expect(result.status == 0 && result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)\n\(text)")
    }
}
