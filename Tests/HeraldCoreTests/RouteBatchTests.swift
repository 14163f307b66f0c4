import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import IP
import Store

/// `POST /v1/routes:batch`: many static routes in one transaction, all or nothing.
@Suite struct RouteBatchTests {
    func fields(_ reply: APIFixture.Reply) -> [String] {
        ((reply["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }

    @Test func aBatchCreatesReplacesAndIsIdempotent() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"]}"#).status == 201)
        let body = """
            [{"prefix":"10.244.0.0/24","next_hops":["n1"]},
             {"name":"pods-2","prefix":"10.244.2.0/24","announce":{"communities":["65000:7"]}},
             {"prefix":"2001:db8::1/128"},
             {"prefix":"::1:0/112"}]
            """
        let created = try await api.call(.POST, "/v1/routes:batch", body, requestID: "bulk-1")
        #expect(created.status == 200, "\(created.text)")
        #expect(created["routes"] as? Int == 4 && created["created"] as? Int == 4 && created["unchanged"] as? Int == 0)

        // Names default to the prefix written as a name.
        #expect(try await api.call(.GET, "/v1/routes/10.244.0.0_24")["next_hops"] as? [String] == ["n1"])
        #expect(try await api.call(.GET, "/v1/routes/2001-db8--1_128")["prefix"] as? String == "2001:db8::1/128")
        #expect(try await api.call(.GET, "/v1/routes/0--1-0_112")["prefix"] as? String == "::1:0/112")
        let originated = try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]] ?? []
        #expect(originated.count == 4)
        let n1 = originated.first { $0["prefix"] as? String == "10.244.0.0/24" }
        #expect((n1?["paths"] as? [[String: Any]])?.first?["next_hop"] as? String == "100.64.0.11")

        // The same batch again changes nothing; NDJSON works the same way.
        let ndjson = """
            {"prefix":"10.244.0.0/24","next_hops":["n1"]}
            {"name":"pods-2","prefix":"10.244.2.0/24","announce":{"communities":["65000:8"]}}
            """
        let again = try await api.call(.POST, "/v1/routes:batch", ndjson, contentType: "application/x-ndjson")
        #expect(again.status == 200, "\(again.text)")
        #expect(again["unchanged"] as? Int == 1 && again["updated"] as? Int == 1 && again["created"] as? Int == 0, "\(again.text)")

        // History: four announces from the first batch with its request id, one update after.
        let history = try await api.call(.GET, "/v1/history?limit=1000")["events"] as? [[String: Any]] ?? []
        #expect(history.filter { $0["request_id"] as? String == "bulk-1" && $0["action"] as? String == "announce" }.count == 4)
        #expect(history.last?["action"] as? String == "update" && history.last?["prefix"] as? String == "10.244.2.0/24")
    }

    /// A batch finds what the table holds under its names one of two ways: a lookup per item
    /// (a batch much smaller than the table) or one pass over the table (about as large: a
    /// re-send). Both tell unchanged from changed routes and withdraw the prefix a moved route left.
    @Test func smallAndLargeBatchesAgainstAStoredTableAgree() async throws {
        let api = try APIFixture()
        func batch(_ items: [(String, String)]) -> String {
            "[" + items.map { #"{"name":"\#($0.0)","prefix":"\#($0.1)"}"# }.joined(separator: ",") + "]"
        }
        func announced() async throws -> Set<String> {
            Set((try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]] ?? []).compactMap { $0["prefix"] as? String })
        }
        var table = (0..<40).map { ("r\($0)", "10.1.0.\($0)/32") }
        #expect(try await api.call(.POST, "/v1/routes:batch", batch(table))["created"] as? Int == 40)

        // Two items against forty stored routes: looked up one by one.
        let small = try await api.call(.POST, "/v1/routes:batch", batch([("r1", "10.1.0.1/32"), ("r2", "10.2.0.2/32")]))
        #expect(small["unchanged"] as? Int == 1 && small["updated"] as? Int == 1 && small["created"] as? Int == 0, "\(small.text)")
        var routes = try await announced()
        #expect(routes.contains("10.2.0.2/32") && !routes.contains("10.1.0.2/32") && routes.count == 40, "\(routes.sorted())")

        // The whole table again, r2 moved back and r3 moved, plus one new: one pass over the table.
        table[3] = ("r3", "10.3.0.3/32")
        table.append(("r40", "10.1.0.40/32"))
        let large = try await api.call(.POST, "/v1/routes:batch", batch(table))
        #expect(large["unchanged"] as? Int == 38 && large["updated"] as? Int == 2 && large["created"] as? Int == 1, "\(large.text)")
        routes = try await announced()
        #expect(routes == Set(table.map(\.1)), "\(routes.sorted())")
    }

    @Test func anInvalidItemFailsTheWholeBatchNamingIt() async throws {
        let api = try APIFixture()
        // Items that do not parse are named first…
        let unparsable = try await api.call(.POST, "/v1/routes:batch", """
            [{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.1/24"},{"prefix":"10.0.0.3/32","next_hops":["a b"]}]
            """)
        #expect(unparsable.status == 422 && Set(fields(unparsable)) == ["[1].prefix", "[2].next_hops[0]"], "\(unparsable.text)")
        #expect(unparsable.text.contains("did you mean 10.0.0.0/24?"), "\(unparsable.text)")
        // …then every item that breaks a rule.
        let bad = try await api.call(.POST, "/v1/routes:batch", """
            [{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.3/32","next_hops":["n9"]},
             {"prefix":"10.0.0.1/32"},{"name":"Bad Name","prefix":"10.0.0.5/32"}]
            """)
        #expect(bad.status == 422, "\(bad.text)")
        #expect(Set(fields(bad)) == ["[1].next_hops[0]", "[2].prefix", "[2].name", "[3].name"], "\(bad.text)")
        #expect(bad.text.contains("is also item 0") && bad.text.contains(#"node \"n9\" does not exist"#), "\(bad.text)")
        #expect((try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]])?.isEmpty == true, "nothing was committed")

        let unknown = try await api.call(.POST, "/v1/routes:batch", #"[{"prefix":"10.0.0.1/32","nexthops":["self"]}]"#)
        #expect(unknown.status == 400 && unknown.text.contains("[0].nexthops"), "\(unknown.text)")
        #expect(try await api.call(.POST, "/v1/routes:batch", "[]").status == 422)

        // A prefix that belongs to another static route: 409 naming it, nothing committed.
        #expect(try await api.call(.POST, "/v1/routes/pods", #"{"prefix":"10.9.0.0/16"}"#).status == 201)
        let taken = try await api.call(.POST, "/v1/routes:batch", #"[{"prefix":"10.8.0.0/16"},{"name":"other","prefix":"10.9.0.0/16"}]"#)
        #expect(taken.status == 409 && taken.text.contains(#"static route \"pods\""#), "\(taken.text)")
        #expect(try await api.call(.GET, "/v1/routes/10.8.0.0_16").status == 404)
    }

    /// Fifty thousand routes through the API, then a restart derives the same table, and an
    /// allocation change afterwards touches only its own prefix.
    @Test(.heavy) func fiftyThousandRoutesInOneRequest() async throws {
        let api = try APIFixture()
        var lines: [String] = []
        for n in 0..<50_000 { lines.append(#"{"prefix":"10.\#(n >> 16).\#((n >> 8) & 255).\#(n & 255)/32"}"#) }
        let reply = try await api.call(.POST, "/v1/routes:batch", lines.joined(separator: "\n"), contentType: "application/x-ndjson")
        #expect(reply.status == 200 && reply["created"] as? Int == 50_000, "\(reply.text.prefix(300))")
        #expect(api.committer.desiredRoutes.count == 50_000)
        let restarted = try Committer(store: api.store)
        #expect(restarted.desiredRoutes == api.committer.desiredRoutes)
        #expect(try api.store.read { db in try db.firstRow("SELECT count(*) FROM route_events")?.get(0, as: Int.self) } == 50_000)
    }
}

@Suite struct HistoryPeerFilterTests {
    @Test func historyForOnePeerFollowsFamiliesAndPeerSelectors() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"p4","address":"100.64.0.1","asn":65001,"labels":{"site":"a"}}"#).status == 201)
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"pb","address":"100.64.0.2","asn":65001,"labels":{"site":"b"}}"#).status == 201)
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"p6","address":"fd64::2","asn":65001,"families":["ipv6-unicast"]}"#).status == 201)
        let batch = try await api.call(.POST, "/v1/routes:batch", """
            [{"name":"only-a","prefix":"10.0.0.0/24","announce":{"peer_selector":{"site":"a"}}},
             {"name":"v6","prefix":"2001:db8::/64"},
             {"name":"all","prefix":"10.1.0.0/24"}]
            """)
        #expect(batch.status == 200, "\(batch.text)")
        #expect(try await api.call(.DELETE, "/v1/routes/all").status == 204)
        func prefixes(_ peer: String) async throws -> [String] {
            let reply = try await api.call(.GET, "/v1/history?peer=\(peer)")
            #expect(reply.status == 200, "\(reply.text)")
            return (reply["events"] as? [[String: Any]] ?? []).map { "\($0["action"] ?? "") \($0["prefix"] ?? "")" }
        }
        #expect(try await prefixes("p4") == ["announce 10.0.0.0/24", "announce 10.1.0.0/24", "withdraw 10.1.0.0/24"])
        #expect(try await prefixes("pb") == ["announce 10.1.0.0/24", "withdraw 10.1.0.0/24"])
        #expect(try await prefixes("p6") == ["announce 2001:db8::/64"])
        let unknown = try await api.call(.GET, "/v1/history?peer=nope")
        #expect(unknown.status == 400 && unknown.text.contains("peer"), "\(unknown.text)")
    }
}
