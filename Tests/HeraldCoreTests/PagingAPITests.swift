import Foundation
import IP
import Testing
@testable import HeraldCore
@testable import HTTPServer

/// Every list pages (issue #16): `limit` and an opaque `cursor`, `next_cursor` and a `Link` to
/// the next page, filters, and the NDJSON export of the routes.
@Suite struct PagingAPITests {
    /// Follows `next_cursor` from `target` and returns every item under `key`, and the pages.
    static func walk(_ api: APIFixture, _ target: String, key: String) async throws -> (items: [[String: Any]], pages: Int) {
        var items: [[String: Any]] = []
        var pages = 0
        var next: String? = target
        while let path = next {
            let reply = try await api.call(.GET, path)
            #expect(reply.status == 200, "\(path): \(reply.text)")
            items += reply[key] as? [[String: Any]] ?? []
            pages += 1
            if let cursor = reply["next_cursor"] as? String {
                // The Link header carries the same page as a URL, with the filters kept.
                let link = reply.headers["Link"] ?? ""
                #expect(link.hasPrefix("<") && link.hasSuffix(#">; rel="next""#) && link.contains("cursor=\(cursor)"), "\(link)")
                next = String(link.dropFirst().prefix { $0 != ">" })
            } else {
                #expect(reply.headers["Link"] == nil)
                next = nil
            }
        }
        return (items, pages)
    }

    @Test func namedListsPageByNameWithTheirFilters() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.64.0.0/24"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/pools/other", #"{"blocks":["100.64.1.0/24"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.9.1"]}"#).status == 201)
        for n in 0..<25 {
            let pool = n % 5 == 0 ? "other" : "lb"
            let body = n % 2 == 0 ? #"{"pool":"\#(pool)","labels":{"app":"web"},"traffic_policy":"local","nodes":["n1"]}"# : #"{"pool":"\#(pool)"}"#
            #expect(try await api.call(.PUT, "/v1/allocations/svc-\(String(format: "%02d", n))", body).status == 201)
        }
        let all = try await Self.walk(api, "/v1/allocations?limit=7", key: "allocations")
        #expect(all.pages == 4)
        #expect(all.items.compactMap { $0["name"] as? String } == (0..<25).map { "svc-\(String(format: "%02d", $0))" })
        let exact = try await Self.walk(api, "/v1/allocations?limit=5&pool=other", key: "allocations")
        #expect(exact.pages == 1 && exact.items.count == 5, "a full last page is known to be the last")
        let web = try await Self.walk(api, "/v1/allocations?limit=4&label=app%3Dweb&pool=lb", key: "allocations")
        #expect(web.items.compactMap { $0["name"] as? String } == [2, 4, 6, 8, 12, 14, 16, 18, 22, 24].map { "svc-\(String(format: "%02d", $0))" })
        let onNode = try await Self.walk(api, "/v1/allocations?node=n1", key: "allocations")
        #expect(onNode.items.count == 13)
        let byAddress = try await api.call(.GET, "/v1/allocations?address=100.64.1.0")
        #expect((byAddress["allocations"] as? [Any])?.count ?? 0 <= 1)
        #expect(try await Self.walk(api, "/v1/pools?limit=1", key: "pools").pages == 2)
        #expect(try await Self.walk(api, "/v1/nodes?limit=1", key: "nodes").items.count == 1)
        #expect(try await Self.walk(api, "/v1/peers", key: "peers").items.isEmpty)

        for (target, field) in [("/v1/allocations?limit=0", "limit"), ("/v1/pools?limit=10001", "limit"), ("/v1/peers?cursor=!!", "cursor"), ("/v1/routes?cursor=bm90IGEgcHJlZml4", "cursor"),
                                ("/v1/routes?prefix=10.0.0.0/33", "prefix"), ("/v1/allocations?order=desc", "order"),
                                // History pages hold at most 1,000 (docs/reliability.md).
                                ("/v1/history?limit=1001", "limit")] {
            let reply = try await api.call(.GET, target)
            #expect(reply.status == 400, "\(target): \(reply.text)")
            #expect(reply.text.contains(#""field":"\#(field)""#), "\(target): \(reply.text)")
        }
    }

    @Test func routesPageInPrefixOrderInsideAPrefixAndExportAsNDJSON() async throws {
        let api = try APIFixture()
        var lines: [String] = []
        for n in 0..<3_000 { lines.append(#"{"prefix":"10.\#(n % 3).\#(n / 256 % 256).\#(n % 256)/32"}"#) }
        lines.append(#"{"prefix":"2001:db8::/64"}"#)
        lines.append(#"{"prefix":"10.1.0.0/16"}"#)
        let loaded = try await api.call(.POST, "/v1/routes:batch", lines.joined(separator: "\n"), contentType: "application/x-ndjson")
        #expect(loaded.status == 200, "\(loaded.text)")
        let expected = api.committer.desiredRoutes.keys.sorted().map(\.description)
        #expect(expected.count == 3_002)

        let walked = try await Self.walk(api, "/v1/routes?limit=1000", key: "routes")
        #expect(walked.pages == 4)
        #expect(walked.items.compactMap { $0["prefix"] as? String } == expected)
        // The hand-written bodies are what JSONEncoder would write for the same route.
        let first = walked.items[0]
        #expect(first["sources"] as? [[String: String]] != nil && first["paths"] as? [[String: Any]] != nil && first["announce"] is [String: Any])

        let inside = try await Self.walk(api, "/v1/routes?prefix=10.1.0.0/16&limit=100", key: "routes")
        #expect(inside.items.compactMap { $0["prefix"] as? String } == expected.filter { IPPrefixText.inside($0, "10.1.0.0/16") })
        let host = try await api.call(.GET, "/v1/routes?prefix=10.2.0.2")
        #expect((host["routes"] as? [[String: Any]])?.compactMap { $0["prefix"] as? String } == ["10.2.0.2/32"])

        // A route added after the cursor while a client pages shows up on the next page.
        let page1 = try await api.call(.GET, "/v1/routes?limit=10")
        #expect((page1["routes"] as? [[String: Any]])?.last?["prefix"] as? String == "10.0.0.27/32")
        let cursor = try #require(page1["next_cursor"] as? String)
        #expect(try await api.call(.PUT, "/v1/routes/late", #"{"prefix":"10.0.0.28/32"}"#).status == 201)
        let page2 = try await api.call(.GET, "/v1/routes?limit=10&cursor=\(cursor)")
        #expect((page2["routes"] as? [[String: Any]])?.first?["prefix"] as? String == "10.0.0.28/32")

        let export = try await Self.export(api, "/v1/routes:export?prefix=10.0.0.0/8")
        #expect(export.contentType == "application/x-ndjson")
        let exported = export.lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["prefix"] as? String
        }
        #expect(exported.count == expected.filter { IPPrefixText.inside($0, "10.0.0.0/8") }.count + 1)
        #expect(exported == exported.sorted { IPPrefixText.less($0, $1) })
    }

    /// The sorted indexes are kept for the tables paged most recently, not for every table ever
    /// paged (a deleted peer's would stay for good); a kept one is not built again.
    @Test func theIndexCacheKeepsOnlyItsMostRecentTables() async {
        let cache = SortedPrefixCache<String, Int>(capacity: 2)
        let builds = Collected()
        func index(_ key: String, version: Int = 1) async -> Int {
            await cache.index(for: key, version: version) { builds.append([1]); return key.count }
        }
        _ = await index("a")
        _ = await index("bb")
        _ = await index("a")      // kept: no build
        _ = await index("ccc")    // evicts "bb", the least recently used
        _ = await index("a")      // still kept
        #expect(builds.bytes.count == 3)
        _ = await index("bb")     // built again
        _ = await index("a", version: 2)  // a new version is built
        #expect(builds.bytes.count == 5)
    }

    static func export(_ api: APIFixture, _ target: String) async throws -> (contentType: String?, lines: [String]) {
        let response = await api.router.respond(to: try HTTPRequest(.GET, target))
        guard case .stream(let stream) = response.body else { Issue.record("not a stream"); return (nil, []) }
        let collected = Collected()
        try await stream.produce(ResponseBodyWriter { bytes throws(ResponseStreamError) in collected.append(bytes) })
        let text = String(decoding: collected.bytes, as: UTF8.self)
        return (response.headers["Content-Type"], text.split(separator: "\n").map(String.init))
    }

    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [UInt8] = []
        func append(_ bytes: [UInt8]) { lock.withLock { storage += bytes } }
        var bytes: [UInt8] { lock.withLock { storage } }
    }
}

/// Prefix text helpers for the expectations.
enum IPPrefixText {
    static func inside(_ text: String, _ within: String) -> Bool {
        guard let p = IPPrefix(text), let w = IPPrefix(within) else { return false }
        return w.contains(p)
    }
    static func less(_ a: String, _ b: String) -> Bool {
        guard let p = IPPrefix(a), let q = IPPrefix(b) else { return false }
        return p < q
    }
}
