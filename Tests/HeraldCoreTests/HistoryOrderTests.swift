import Foundation
import Testing
@testable import HeraldCore
import Store

/// `order=desc` on `GET /v1/history` and `GET /v1/peers/{name}/events`: newest first, and the
/// cursor pages on to older events, with every filter; `asc` stays the default.
@Suite struct HistoryOrderTests {
    /// Every event id of `path` (its filters in `query`), following next_cursor `limit` at a time.
    func paged(_ api: APIFixture, _ path: String, _ query: String, order: String?, limit: Int = 7) async throws -> [Int64] {
        var ids: [Int64] = []
        var cursor: String?
        repeat {
            let parameters = [query, order.map { "order=\($0)" }, "limit=\(limit)", cursor.map { "cursor=\($0)" }].compactMap { $0 }.filter { !$0.isEmpty }
            let reply = try await api.call(.GET, path + "?" + parameters.joined(separator: "&"))
            #expect(reply.status == 200, "\(reply.text)")
            let events = reply["events"] as? [[String: Any]] ?? []
            ids += events.compactMap { ($0["id"] as? NSNumber)?.int64Value }
            cursor = reply["next_cursor"] as? String
            if ids.count > 10_000 { Issue.record("\(path)?\(query): the cursor never ends"); break }
        } while cursor != nil
        return ids
    }

    @Test func historyPagesNewestFirstWithEveryFilter() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"pb","address":"100.64.0.1","asn":65001,"labels":{"site":"b"}}"#).status == 201)
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"p6","address":"fd64::2","asn":65001,"families":["ipv6-unicast"]}"#).status == 201)
        // Announces (every other one only for site a), updates, withdraws, in both families.
        func batch(_ community: Int) -> String {
            "[" + (0..<40).map { n in
                let selector = n.isMultiple(of: 2) ? #","peer_selector":{"site":"a"}"# : ""
                return #"{"prefix":"10.0.0.\#(n)/32","announce":{"communities":["65000:\#(community)"]\#(selector)}}"#
            }.joined(separator: ",") + #",{"prefix":"2001:db8::/64"}]"#
        }
        #expect(try await api.call(.POST, "/v1/routes:batch", batch(1)).status == 200)
        #expect(try await api.call(.POST, "/v1/routes:batch", batch(2)).status == 200)
        for n in [5, 6, 30] { #expect(try await api.call(.DELETE, "/v1/routes/10.0.0.\(n)_32").status == 204) }

        let everything = try await api.call(.GET, "/v1/history?limit=1000")["events"] as? [[String: Any]] ?? []
        #expect(everything.count == 41 + 40 + 3, "the IPv6 route is unchanged by the second batch")
        let ids = everything.compactMap { ($0["id"] as? NSNumber)?.int64Value }
        let prefixOf = Dictionary(uniqueKeysWithValues: everything.map { (($0["id"] as? NSNumber)?.int64Value ?? 0, $0["prefix"] as? String ?? "") })
        let at = everything[45]["at"] as? String ?? ""

        // The first page newest first: the last withdraw, then back in time.
        let first = try await api.call(.GET, "/v1/history?order=desc&limit=2")
        #expect((first["events"] as? [[String: Any]])?.compactMap { $0["prefix"] as? String } == ["10.0.0.30/32", "10.0.0.6/32"], "\(first.text)")
        #expect(first["next_cursor"] as? String == String(ids[ids.count - 2]))

        let filters: [(query: String, expected: [Int64]?)] = [
            ("", ids),
            ("prefix=10.0.0.5", ids.filter { prefixOf[$0] == "10.0.0.5/32" }),
            ("prefix=10.0.0.0/28", ids.filter { prefixOf[$0]!.hasPrefix("10.0.0.") && Int(prefixOf[$0]!.dropFirst(7).dropLast(3))! < 16 }),
            ("prefix=2001:db8::/32", ids.filter { prefixOf[$0] == "2001:db8::/64" }),
            ("peer=pb", nil),
            ("peer=p6", ids.filter { prefixOf[$0] == "2001:db8::/64" }),
            ("since=\(at)", nil),
            ("until=\(at)&prefix=10.0.0.0/24&peer=pb", nil),
        ]
        for (query, expected) in filters {
            let oldest = try await paged(api, "/v1/history", query, order: nil)
            let asc = try await paged(api, "/v1/history", query, order: "asc")
            let desc = try await paged(api, "/v1/history", query, order: "desc")
            if let expected { #expect(oldest == expected, "\(query)") }
            #expect(!oldest.isEmpty && asc == oldest, "\(query)")
            #expect(desc == oldest.reversed(), "\(query): newest first is the same events the other way")
        }
        // The peer filter drops the site-a routes' announces and updates and the IPv6 route, newest first too.
        #expect(try await paged(api, "/v1/history", "peer=pb", order: "desc").count == everything.count - 2 * 20 - 1)

        let wrong = try await api.call(.GET, "/v1/history?order=newest")
        #expect(wrong.status == 400 && wrong.text.contains(#""field":"order""#), "\(wrong.text)")
    }

    @Test func peerEventsPageNewestFirst() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.1","asn":65001}"#).status == 201)
        try api.store.write { db in
            for n in 0..<9 { try PeerEvents.append(db, peer: "r1", kind: .state, reason: "step \(n)", now: Int64(n)) }
            try PeerEvents.append(db, peer: "r2", kind: .state, reason: "another peer", now: 10)
        }
        let asc = try await paged(api, "/v1/peers/r1/events", "", order: nil, limit: 2)
        #expect(asc.count >= 9)
        #expect(try await paged(api, "/v1/peers/r1/events", "", order: "desc", limit: 2) == asc.reversed())
        let newest = try await api.call(.GET, "/v1/peers/r1/events?order=desc&limit=1")["events"] as? [[String: Any]] ?? []
        #expect(newest.first?["reason"] as? String == "step 8")
        #expect(try await api.call(.GET, "/v1/peers/r1/events?order=up").status == 400)
    }
}
