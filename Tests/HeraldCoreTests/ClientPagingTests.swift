import Foundation
import Testing
@testable import HeraldCore
import HTTPServer

/// Every list of the API pages: `limit` (1…10,000, 1,000 by default) and an opaque `cursor`; a
/// page that is not the last carries `next_cursor` and a `Link: <…>; rel="next"` naming the same
/// list with its filters and limit kept. Following the cursors visits every item once, in key
/// order.
@Suite struct ListPagingTests {
    struct Page {
        let status: Int
        let json: [String: Any]
        let link: String?
        let text: String
    }

    static func get(_ api: APIFixture, _ target: String) async throws -> Page {
        let request = try HTTPRequest(.GET, target, headers: HTTPHeaders(), body: [])
        let response = await api.router.respond(to: request, context: RequestContext(requestID: "paging"))
        let bytes = response.bodyBytes
        return Page(status: Int(response.status.code), json: (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:],
                    link: response.headers["Link"], text: String(decoding: bytes, as: UTF8.self))
    }

    /// Walks the list at `path` (its query in the server's escaping) to its last page by
    /// following each page's Link, checking that Link and next_cursor agree.
    static func walk(_ api: APIFixture, _ path: String, key: String) async throws -> (items: [[String: Any]], pages: Int) {
        var items: [[String: Any]] = []
        var target: String? = path
        var pages = 0
        while let current = target {
            let page = try await get(api, current)
            #expect(page.status == 200, "\(current): \(page.text)")
            guard page.status == 200 else { break }
            pages += 1
            items += page.json[key] as? [[String: Any]] ?? []
            if let cursor = page.json["next_cursor"] as? String {
                let next = path + (path.contains("?") ? "&" : "?") + "cursor=\(cursor)"
                #expect(page.link == "<\(next)>; rel=\"next\"", "\(current): Link \(page.link ?? "none")")
                target = next
            } else {
                #expect(page.link == nil, "the last page has no Link: \(page.link ?? "")")
                target = nil
            }
            if pages > 1000 {
                Issue.record("\(path): more than 1000 pages")
                break
            }
        }
        return (items, pages)
    }

    @Test func routesPageByPrefixAndTheCursorsVisitEveryRouteOnce() async throws {
        let api = try APIFixture()
        // 2,500 routes: 10.0.0.0/32 … 10.0.9.195/32.
        let ndjson = (0..<2500).map { #"{"prefix":"10.0.\#($0 / 256).\#($0 % 256)/32"}"# }.joined(separator: "\n")
        let batch = try await api.call(.POST, "/v1/routes:batch", ndjson, contentType: "application/x-ndjson")
        #expect(batch.status == 200 && batch["created"] as? Int == 2500, "\(batch.text)")

        // The default page is 1,000, and says where the next one starts.
        let first = try await Self.get(api, "/v1/routes")
        #expect((first.json["routes"] as? [Any])?.count == 1000)
        let cursor = try #require(first.json["next_cursor"] as? String)
        #expect(first.link == "</v1/routes?cursor=\(cursor)>; rel=\"next\"")

        let whole = try await Self.walk(api, "/v1/routes", key: "routes")
        #expect(whole.pages == 3 && whole.items.count == 2500)
        let small = try await Self.walk(api, "/v1/routes?limit=300", key: "routes")
        #expect(small.pages == 9 && small.items.count == 2500)
        let prefixes = small.items.compactMap { $0["prefix"] as? String }
        #expect(prefixes == whole.items.compactMap { $0["prefix"] as? String }, "the same routes in the same order, whatever the page size")
        #expect(Set(prefixes).count == 2500 && prefixes.first == "10.0.0.0/32" && prefixes.last == "10.0.9.195/32")

        // A filter is kept from page to page.
        let within = try await Self.walk(api, "/v1/routes?prefix=10.0.3.0/24&limit=100", key: "routes")
        #expect(within.pages == 3 && within.items.count == 256, "\(within.items.count) in \(within.pages) pages")
        #expect(within.items.allSatisfy { ($0["prefix"] as? String)?.hasPrefix("10.0.3.") == true })

        // The static routes themselves page by name (`herald export` and `apply --prune` read them).
        let statics = try await Self.walk(api, "/v1/routes:static?limit=1000", key: "routes")
        let names = statics.items.compactMap { $0["name"] as? String }
        #expect(statics.pages == 3 && names.count == 2500 && names == names.sorted() && Set(names).count == 2500)
        #expect(statics.items.first?["next_hops"] as? [String] == ["self"] && statics.items.first?["created_at"] != nil)

        for bad in ["/v1/routes?limit=0", "/v1/routes?limit=10001", "/v1/routes?cursor=%21%21", "/v1/routes?colour=red",
                    "/v1/routes?cursor=\(PageQuery.encode("not a prefix"))"] {
            let reply = try await Self.get(api, bad)
            #expect(reply.status == 400, "\(bad): \(reply.status) \(reply.text)")
        }
    }

    @Test func poolsNodesPeersAndAllocationsPageByNameWithTheirFilters() async throws {
        let api = try APIFixture()
        for index in 0..<5 {
            #expect(try await api.call(.PUT, "/v1/pools/p\(index)", #"{"blocks":["192.0.2.\#(index * 16)/28"]}"#).status == 201)
            #expect(try await api.call(.PUT, "/v1/nodes/n\(index)", #"{"addresses":["100.64.0.\#(index + 1)"]}"#).status == 201)
            let peer = try await api.call(.POST, "/v1/peers", #"{"name":"r\#(index)","address":"127.0.0.\#(index + 2)","asn":65001,"passive":true}"#)
            #expect(peer.status == 201, "\(peer.text)")
        }
        // Seven allocations in p0, four of them labelled team=a; one in p1.
        for index in 0..<7 {
            let labels = index % 2 == 0 ? #","labels":{"team":"a"}"# : ""
            #expect(try await api.call(.PUT, "/v1/allocations/svc-\(index)", #"{"pool":"p0"\#(labels)}"#).status == 201)
        }
        #expect(try await api.call(.PUT, "/v1/allocations/other", #"{"pool":"p1","labels":{"team":"a"}}"#).status == 201)

        for (list, name) in [("pools", "p"), ("nodes", "n"), ("peers", "r")] {
            let walked = try await Self.walk(api, "/v1/\(list)?limit=2", key: list)
            #expect(walked.pages == 3, "\(list)")
            #expect(walked.items.compactMap { $0["name"] as? String } == (0..<5).map { "\(name)\($0)" }, "\(list): \(walked.items.count)")
        }
        let all = try await Self.walk(api, "/v1/allocations?limit=3", key: "allocations")
        #expect(all.pages == 3 && all.items.compactMap { $0["name"] as? String } == ["other"] + (0..<7).map { "svc-\($0)" })
        let teamA = try await Self.walk(api, "/v1/allocations?label=team%3Da&limit=2", key: "allocations")
        #expect(teamA.items.compactMap { $0["name"] as? String } == ["other", "svc-0", "svc-2", "svc-4", "svc-6"], "\(teamA.items.count)")
        let teamAInP0 = try await Self.walk(api, "/v1/allocations?pool=p0&label=team%3Da&limit=1", key: "allocations")
        #expect(teamAInP0.pages == 4 && teamAInP0.items.compactMap { $0["name"] as? String } == ["svc-0", "svc-2", "svc-4", "svc-6"])

        // An exact fit ends without an empty page.
        let exact = try await Self.walk(api, "/v1/allocations?limit=8", key: "allocations")
        #expect(exact.pages == 1 && exact.items.count == 8)
        #expect(try await Self.get(api, "/v1/pools?limit=2&pool=p0").status == 400, "a filter a list does not take is refused")
    }
}

/// The CLI lists everything, not the first page of it: `herald alloc` follows `next_cursor`
/// (the default page of 1,000, so 1,001 allocations take two pages), `herald routes` streams
/// `/v1/routes:export`, and the JSON printed is the whole list in the shape a page has, without
/// `next_cursor`, exactly as `JSONSerialization` prints the whole.
@Suite(.serialized, .heavy) struct CLIPagingTests {
    @Test func listCommandsShowEveryPage() throws {
        let directory = ScratchDirectory()
        var outputs: [String: HeraldBinaryTests.Finished] = [:]
        var setUp: [String] = []
        var pagedRoutes: [Any] = []
        let result = try HeraldBinaryTests.run(
            HeraldBinaryTests.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--bgp-listen", "127.0.0.1:0", "--sync", "normal"],
            in: directory.path, whenReady: { log in
                guard let text = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }), let port = UInt16(text) else { return }
                func send(_ method: String, _ path: String, _ json: String) {
                    let answer = (try? SimpleHTTP.send(port: port, method: method, path: path, json: json)) ?? "no answer"
                    if !answer.hasPrefix("HTTP/1.1 20") { setUp.append("\(method) \(path): \(answer.prefix(300))") }
                }
                send("PUT", "/v1/pools/lb", #"{"blocks":["10.1.0.0/20"]}"#)
                for index in 0...1000 { send("PUT", "/v1/allocations/svc-\(String(format: "%04d", index))", #"{"pool":"lb"}"#) }
                send("POST", "/v1/routes:batch", "[" + (0...1000).map { #"{"prefix":"10.2.\#($0 / 256).\#($0 % 256)/32"}"# }.joined(separator: ",") + "]")
                send("POST", "/v1/peers", #"{"name":"edge","address":"127.0.0.9","asn":65009,"passive":true}"#)
                // What the API lists, page by page, to compare the CLI's JSON with.
                var cursor: String?
                repeat {
                    let answer = (try? SimpleHTTP.get(port: port, path: "/v1/routes?limit=10000" + (cursor.map { "&cursor=\($0)" } ?? ""))) ?? ""
                    let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
                    let page = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
                    pagedRoutes += page["routes"] as? [Any] ?? []
                    cursor = page["next_cursor"] as? String
                } while cursor != nil && pagedRoutes.count < 10_000
                let environment = ["HERALD_SERVER": "http://127.0.0.1:\(port)"]
                for (key, arguments) in [
                    ("alloc", ["alloc"]),
                    ("allocInPool", ["alloc", "list", "--pool", "lb"]),
                    ("allocJSON", ["alloc", "--output", "json"]),
                    ("routes", ["routes"]),
                    ("routesJSON", ["routes", "--output", "json"]),
                    ("advertised", ["routes", "advertised", "--peer", "edge"]),
                    ("advertisedJSON", ["routes", "advertised", "--peer", "edge", "--output", "json"]),
                    ("missingPeer", ["routes", "received", "--peer", "nope"]),
                    ("pools", ["pools"]),
                    ("peers", ["peers"]),
                ] {
                    outputs[key] = try? HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, arguments, in: directory.path,
                                                              environment: environment, signal: nil)
                }
            })
        #expect(result.status == 0, "\(result.output)")
        #expect(setUp.isEmpty, "\(setUp.prefix(3))")
        func lines(_ key: String) -> [Substring] { (outputs[key]?.output ?? "").split(separator: "\n") }

        // Tables: a header and every row.
        for key in ["alloc", "allocInPool"] {
            #expect(outputs[key]?.status == 0 && lines(key).count == 1 + 1001, "\(key): \(lines(key).count) lines")
            #expect(lines(key).first?.hasPrefix("NAME") == true && lines(key).last?.hasPrefix("svc-1000  lb") == true, "\(lines(key).last ?? "")")
        }
        let allocJSON = (try? JSONSerialization.jsonObject(with: Data((outputs["allocJSON"]?.output ?? "").utf8))) as? [String: Any]
        #expect((allocJSON?["allocations"] as? [Any])?.count == 1001 && allocJSON?["next_cursor"] == nil)

        // 1,001 static routes, and the allocations' routes if they have next hops.
        #expect(pagedRoutes.count >= 1001)
        #expect(outputs["routes"]?.status == 0 && lines("routes").count == 1 + pagedRoutes.count, "\(lines("routes").count) lines, \(pagedRoutes.count) routes")
        #expect(lines("routes").first?.hasPrefix("PREFIX") == true)
        #expect(lines("routes").dropFirst().map { $0.prefix { $0 != " " } } == pagedRoutes.map { Substring(($0 as? [String: Any])?["prefix"] as? String ?? "?") })
        let whole = try JSONSerialization.data(withJSONObject: ["routes": pagedRoutes], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        #expect(outputs["routesJSON"]?.status == 0)
        #expect(outputs["routesJSON"]?.output == String(decoding: whole, as: UTF8.self) + "\n", "streamed JSON is what the whole list prints as")

        // A peer with no session: one empty page, printed as before.
        #expect(outputs["advertised"]?.status == 0 && lines("advertised").count == 1 && lines("advertised").first?.hasPrefix("PREFIX") == true,
                "\(outputs["advertised"]?.output ?? "")")
        let emptyRIB = try JSONSerialization.data(withJSONObject: ["peer": "edge", "routes": [Any]()], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        #expect(outputs["advertisedJSON"]?.output == String(decoding: emptyRIB, as: UTF8.self) + "\n", "\(outputs["advertisedJSON"]?.output ?? "")")
        #expect(outputs["missingPeer"]?.status == 3 && outputs["missingPeer"]?.output.contains("peer \"nope\" does not exist") == true,
                "\(String(describing: outputs["missingPeer"]))")
        #expect(lines("pools").count == 2 && lines("peers").count == 2 && lines("peers").last?.hasPrefix("edge") == true)
    }
}
