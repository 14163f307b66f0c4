import Foundation
import Testing
@testable import HeraldCore
import HTTPServer

/// `announce.aggregation_length` (issue #17 item 2): a pool announces the covering prefix of
/// that length while it holds allocations, with their next hops merged, and withdraws it with the
/// last one; lengths shorter than a block, and aggregation on a static route, are refused.
@Suite struct AggregationTests {
    static func routes(_ api: APIFixture) async throws -> [String: [String: Any]] {
        let reply = try await api.call(.GET, "/v1/routes")
        var byPrefix: [String: [String: Any]] = [:]
        for route in reply["routes"] as? [[String: Any]] ?? [] { byPrefix[route["prefix"] as? String ?? "?"] = route }
        return byPrefix
    }

    static func nextHops(_ route: [String: Any]?) -> [String] {
        (route?["paths"] as? [[String: Any]] ?? []).compactMap { $0["next_hop"] as? String }.sorted()
    }

    @Test func aPoolAnnouncesItsAggregateWhileItHoldsAllocations() async throws {
        let api = try APIFixture()
        for (node, address) in [("n1", "100.64.9.1"), ("n2", "100.64.9.2"), ("n3", "100.64.9.3")] {
            #expect(try await api.call(.PUT, "/v1/nodes/\(node)", #"{"addresses":["\#(address)"]}"#).status == 201)
        }
        let pool = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.70.0.0/28","100.70.0.16/28"],"announce":{"aggregation_length":28}}"#)
        #expect(pool.status == 201, "\(pool.text)")
        #expect(try await api.call(.PUT, "/v1/allocations/a", #"{"pool":"lb","address":"100.70.0.1","traffic_policy":"local","nodes":["n1"]}"#).status == 201)
        var routes = try await Self.routes(api)
        #expect(Array(routes.keys) == ["100.70.0.0/28"], "one /28, not the /32: \(routes.keys)")
        #expect(Self.nextHops(routes["100.70.0.0/28"]) == ["100.64.9.1"])

        // A second allocation under the same /28 joins its route: sources and next hops merge.
        #expect(try await api.call(.PUT, "/v1/allocations/b", #"{"pool":"lb","address":"100.70.0.5","traffic_policy":"local","nodes":["n2"]}"#).status == 201)
        // One in the other block is its own aggregate.
        #expect(try await api.call(.PUT, "/v1/allocations/c", #"{"pool":"lb","address":"100.70.0.17","traffic_policy":"local","nodes":["n3"]}"#).status == 201)
        routes = try await Self.routes(api)
        #expect(routes.keys.sorted() == ["100.70.0.0/28", "100.70.0.16/28"])
        #expect(Self.nextHops(routes["100.70.0.0/28"]) == ["100.64.9.1", "100.64.9.2"])
        let sources = (routes["100.70.0.0/28"]?["sources"] as? [[String: String]] ?? []).compactMap { $0["name"] }
        #expect(sources == ["a", "b"])

        // Releasing one keeps the aggregate on the other's node; the last one withdraws it.
        #expect(try await api.call(.DELETE, "/v1/allocations/a").status == 204)
        routes = try await Self.routes(api)
        #expect(Self.nextHops(routes["100.70.0.0/28"]) == ["100.64.9.2"])
        #expect(try await api.call(.DELETE, "/v1/allocations/b").status == 204)
        routes = try await Self.routes(api)
        #expect(routes.keys.sorted() == ["100.70.0.16/28"])
        let history = try await api.call(.GET, "/v1/history?prefix=100.70.0.0/28")
        let actions = (history["events"] as? [[String: Any]] ?? []).filter { $0["prefix"] as? String == "100.70.0.0/28" }.compactMap { $0["action"] as? String }
        #expect(actions == ["announce", "update", "update", "withdraw"], "\(history.text)")

        // Turning aggregation off re-derives: back to host prefixes.
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.70.0.0/28","100.70.0.16/28"]}"#).status == 200)
        #expect(try await Self.routes(api).keys.sorted() == ["100.70.0.17/32"])
        // A derivation from scratch (a restart) gives the same table as the changes did.
        let fromScratch = try api.store.read { db in try DesiredRoutes.derive(db) }
        #expect(fromScratch.keys.map(\.description) == ["100.70.0.17/32"])
    }

    @Test func lengthsThatWouldCoverOtherAddressesAreRefused() async throws {
        let api = try APIFixture()
        let short = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.70.0.0/28"],"announce":{"aggregation_length":16}}"#)
        #expect(short.status == 422 && short.text.contains("announce.aggregation_length") && short.text.contains("shorter than block 100.70.0.0/28"), "\(short.text)")
        let v4TooLong = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.70.0.0/28"],"announce":{"aggregation_length":64}}"#)
        #expect(v4TooLong.status == 422 && v4TooLong.text.contains("0–32"), "\(v4TooLong.text)")
        let range = try await api.call(.PUT, "/v1/pools/r", #"{"blocks":["100.70.1.1-100.70.1.9"],"announce":{"aggregation_length":28}}"#)
        #expect(range.status == 422 && range.text.contains("is a range"), "\(range.text)")
        let v6 = try await api.call(.PUT, "/v1/pools/six", #"{"blocks":["fd00:70::/120"],"announce":{"aggregation_length_v6":120}}"#)
        #expect(v6.status == 201, "\(v6.text)")
        #expect(try await api.call(.PUT, "/v1/allocations/x", #"{"pool":"six"}"#).status == 201)
        #expect(try await Self.routes(api).keys.sorted() == ["fd00:70::/120"])
        let onStatic = try await api.call(.PUT, "/v1/routes/pods", #"{"prefix":"100.71.0.0/24","announce":{"aggregation_length":24}}"#)
        #expect(onStatic.status == 422 && onStatic.text.contains("applies to pools only"), "\(onStatic.text)")
    }
}
