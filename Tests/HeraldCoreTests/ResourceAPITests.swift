import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import Store

/// The management API in-process: requests go through the real router, handlers, error mapping
/// and JSON coding, without a socket.
struct APIFixture {
    let directory = ScratchDirectory()
    let store: Store
    let committer: Committer
    let router = Router()

    init(metrics: Metrics? = nil) throws {
        store = try Store(path: directory.file("herald.db"))
        committer = try Committer(store: store)
        APIServices(committer: committer).register(on: router, startedAt: 0, metrics: metrics)
    }

    struct Reply {
        let status: Int
        let json: Any?
        let text: String
        var headers = HTTPHeaders()

        subscript(_ key: String) -> Any? { (json as? [String: Any])?[key] }
    }

    func call(_ method: HTTPMethod, _ target: String, _ body: String? = nil, requestID: String = "test",
              contentType: String = "application/json") async throws -> Reply {
        var headers = HTTPHeaders()
        if body != nil { headers.set("Content-Type", contentType) }
        let request = try HTTPRequest(method, target, headers: headers, body: Array((body ?? "").utf8))
        let response = await router.respond(to: request, context: RequestContext(requestID: requestID))
        let bytes = response.bodyBytes
        return Reply(status: Int(response.status.code), json: try? JSONSerialization.jsonObject(with: Data(bytes)),
                     text: String(decoding: bytes, as: UTF8.self), headers: response.headers)
    }
}

@Suite struct ResourceAPITests {
    @Test func poolsLifecycleAndErrors() async throws {
        let api = try APIFixture()
        let created = try await api.call(.POST, "/v1/pools", #"{"name":"lb","blocks":["192.0.2.0/24"],"announce":{"communities":["65000:100"]}}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(created["size"] as? Double == 254 && created["free"] as? Double == 254)
        #expect((created["announce"] as? [String: Any])?["communities"] as? [String] == ["65000:100"])

        let again = try await api.call(.POST, "/v1/pools", #"{"name":"lb","blocks":["192.0.2.0/24"]}"#)
        #expect(again.status == 409 && again.text.contains("already exists"))
        let replaced = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/24","2001:db8::/120"]}"#)
        #expect(replaced.status == 200, "\(replaced.text)")

        let overlap = try await api.call(.PUT, "/v1/pools/other", #"{"blocks":["192.0.2.128/25"]}"#)
        #expect(overlap.status == 409 && overlap.text.contains(#"of pool \"lb\""#), "\(overlap.text)")

        let invalid = try await api.call(.PUT, "/v1/pools/bad", #"{"blocks":["10.0.0.1/24"],"announce":{"communities":["x"]}}"#)
        #expect(invalid.status == 422, "\(invalid.text)")
        let fields = ((invalid["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(fields == ["blocks[0]"], "\(invalid.text)")
        #expect(invalid.text.contains("did you mean 10.0.0.0/24?"))

        let unknown = try await api.call(.PUT, "/v1/pools/bad", #"{"blocks":["10.0.0.0/24"],"colour":"red"}"#)
        #expect(unknown.status == 400 && unknown.text.contains("colour"), "\(unknown.text)")

        #expect(try await api.call(.GET, "/v1/pools/nope").status == 404)
        let list = try await api.call(.GET, "/v1/pools")
        #expect((list["pools"] as? [[String: Any]])?.count == 1)
        #expect(try await api.call(.DELETE, "/v1/pools/lb").status == 204)
        #expect(try await api.call(.DELETE, "/v1/pools/lb").status == 404)
    }

    /// The seed scenario in-process: a pool, nodes, a local and a cluster allocation, then a node
    /// change and a delete, each visible in /v1/routes and /v1/history with its reason.
    @Test func allocationsBecomeRoutesWithHistory() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/24"]}"#).status == 201)
        for (name, address) in [("n1", "100.64.0.11"), ("n2", "100.64.0.12"), ("n3", "100.64.0.13")] {
            let reply = try await api.call(.PUT, "/v1/nodes/\(name)", #"{"addresses":["\#(address)"]}"#, requestID: "node-\(name)")
            #expect(reply.status == 201, "\(reply.text)")
        }
        let local = try await api.call(.PUT, "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n1"]}"#, requestID: "req-web")
        #expect(local.status == 201, "\(local.text)")
        #expect(local["addresses"] as? [String] == ["192.0.2.1"])
        let repeated = try await api.call(.PUT, "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n1"]}"#)
        #expect(repeated.status == 200 && repeated["addresses"] as? [String] == ["192.0.2.1"])
        let cluster = try await api.call(.PUT, "/v1/allocations/default.api", #"{"pool":"lb"}"#, requestID: "req-api")
        #expect(cluster["addresses"] as? [String] == ["192.0.2.2"])

        func nextHops(_ prefix: String) async throws -> [String] {
            let routes = try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]] ?? []
            let route = routes.first { $0["prefix"] as? String == prefix }
            return (route?["paths"] as? [[String: Any]] ?? []).compactMap { $0["next_hop"] as? String }
        }
        #expect(try await nextHops("192.0.2.1/32") == ["100.64.0.11"])
        #expect(try await nextHops("192.0.2.2/32") == ["100.64.0.11", "100.64.0.12", "100.64.0.13"])

        // Moving the local allocation to n2 moves its next hop at once.
        let moved = try await api.call(.PUT, "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n2"]}"#, requestID: "req-move")
        #expect(moved.status == 200)
        #expect(try await nextHops("192.0.2.1/32") == ["100.64.0.12"])
        #expect(try await api.call(.DELETE, "/v1/allocations/default.web", requestID: "req-del").status == 204)
        #expect(try await nextHops("192.0.2.1/32") == [])

        let history = try await api.call(.GET, "/v1/history?prefix=192.0.2.1")
        let events = history["events"] as? [[String: Any]] ?? []
        #expect(events.compactMap { $0["action"] as? String } == ["announce", "update", "withdraw"], "\(history.text)")
        #expect(events.compactMap { $0["reason"] as? String } == ["allocation default.web created", "allocation default.web changed", "allocation default.web deleted"])
        #expect(events.compactMap { $0["request_id"] as? String } == ["req-web", "req-move", "req-del"])
        #expect((events.first?["paths"] as? [[String: Any]])?.first?["node"] as? String == "n1")

        let page = try await api.call(.GET, "/v1/history?limit=2")
        #expect((page["events"] as? [Any])?.count == 2)
        let cursor = try #require(page["next_cursor"] as? String)
        #expect(((try await api.call(.GET, "/v1/history?cursor=\(cursor)"))["events"] as? [Any])?.isEmpty == false)
        #expect(try await api.call(.GET, "/v1/history?since=yesterday").status == 400)
    }

    @Test func allocationErrorsNameWhatIsWrong() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/web", #"{"blocks":["192.0.2.0/30"],"service_selector":{"tier":"web"}}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/pools/web2", #"{"blocks":["198.51.100.0/30"],"service_selector":{"tier":"web"}}"#).status == 201)
        let ambiguous = try await api.call(.PUT, "/v1/allocations/a", #"{"labels":{"tier":"web"}}"#)
        #expect(ambiguous.status == 422 && ambiguous.text.contains(#"(\"web\", \"web2\")"#), "\(ambiguous.text)")
        let invalid = try await api.call(.PUT, "/v1/allocations/a", #"{"pool":"web","family":"ipv5","traffic_policy":"nearest","address":"300.0.0.1"}"#)
        let fields = ((invalid["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(invalid.status == 422 && Set(fields) == ["family", "traffic_policy", "address"], "\(invalid.text)")
        #expect(try await api.call(.PUT, "/v1/allocations/a", #"{"pool":"web"}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/allocations/b", #"{"pool":"web"}"#).status == 201)
        let full = try await api.call(.PUT, "/v1/allocations/c", #"{"pool":"web"}"#)
        #expect(full.status == 409 && full.text.contains("no free ipv4 address"), "\(full.text)")
        let wrongType = try await api.call(.PUT, "/v1/allocations/c", #"{"pool":7}"#)
        #expect(wrongType.status == 400 && wrongType.text.contains("pool"), "\(wrongType.text)")
        let filtered = try await api.call(.GET, "/v1/allocations?address=192.0.2.2")
        #expect((filtered["allocations"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["b"])
    }

    @Test func staticRoutesAndNodes() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11","fd64::11"],"labels":{"rack":"r1"}}"#).status == 201)
        let route = try await api.call(.POST, "/v1/routes/pods-n1", #"{"prefix":"10.244.1.0/24","next_hops":["n1"],"announce":{"large_communities":["65000:1:2"]}}"#)
        #expect(route.status == 201, "\(route.text)")
        #expect(try await api.call(.POST, "/v1/routes/pods-n1", #"{"prefix":"10.244.1.0/24"}"#).status == 409)
        let bad = try await api.call(.PUT, "/v1/routes/x", #"{"prefix":"10.0.0.0/8","next_hops":["n9", "bad hop"]}"#)
        let fields = ((bad["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(bad.status == 422 && Set(fields) == ["next_hops[1]"], "\(bad.text)")
        let routes = try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]] ?? []
        #expect(routes.first?["prefix"] as? String == "10.244.1.0/24")
        #expect(((routes.first?["announce"] as? [String: Any])?["large_communities"] as? [String]) == ["65000:1:2"])
        let inUse = try await api.call(.GET, "/v1/nodes/n1")
        #expect(inUse["addresses"] as? [String] == ["100.64.0.11", "fd64::11"])
        #expect(try await api.call(.DELETE, "/v1/routes/pods-n1").status == 204)
        #expect(try await api.call(.DELETE, "/v1/nodes/n1").status == 204)
        #expect(try await api.call(.GET, "/v1/nodes/n1").status == 404)
    }

    @Test func statusCountsObjects() async throws {
        let api = try APIFixture()
        _ = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/24"]}"#)
        _ = try await api.call(.PUT, "/v1/allocations/a", #"{"pool":"lb"}"#)
        let status = try await api.call(.GET, "/v1/status")
        let counts = status["counts"] as? [String: Int]
        #expect(counts?["pools"] == 1 && counts?["allocations"] == 1, "\(status.text)")
        // The stored part is kept between commits: every commit acknowledged before the request
        // shows, including one straight after a cached answer.
        for n in 2...5 {
            _ = try await api.call(.GET, "/v1/status")
            #expect(try await api.call(.PUT, "/v1/allocations/a\(n)", #"{"pool":"lb"}"#).status == 201)
            let after = try await api.call(.GET, "/v1/status")
            #expect((after["counts"] as? [String: Int])?["allocations"] == n, "\(after.text)")
        }
        #expect(try await api.call(.DELETE, "/v1/allocations/a").status == 204)
        #expect(((try await api.call(.GET, "/v1/status"))["counts"] as? [String: Int])?["allocations"] == 4)
    }
}

@Suite struct PeersAPITests {
    @Test func passwordIsWriteOnlyAndChangesAreRecorded() async throws {
        let api = try APIFixture()
        let created = try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.1","asn":65001,"password":"s3cret-md5","families":["ipv4-unicast","ipv6-unicast"]}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(created["password_set"] as? Bool == true && created["password"] == nil && !created.text.contains("s3cret-md5"))
        #expect(created["port"] as? Int == 179 && created["families"] as? [String] == ["ipv4-unicast", "ipv6-unicast"])
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.2","asn":65001}"#).status == 409)
        let missing = try await api.call(.POST, "/v1/peers", #"{"name":"r2"}"#)
        let fields = ((missing["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(missing.status == 422 && Set(fields) == ["address", "asn"], "\(missing.text)")

        let patched = try await api.call(.PATCH, "/v1/peers/r1", #"{"description":"core","password":""}"#)
        #expect(patched.status == 200 && patched["password_set"] as? Bool == false && patched["description"] as? String == "core")
        let reset = try await api.call(.PATCH, "/v1/peers/r1", #"{"asn":65002,"hold_time":9,"keepalive_time":3}"#)
        #expect(reset.status == 200 && reset["asn"] as? Int == 65002)
        let bad = try await api.call(.PATCH, "/v1/peers/r1", #"{"hold_time":2,"families":["l2vpn"]}"#)
        let badFields = ((bad["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(bad.status == 422 && Set(badFields) == ["hold_time", "keepalive_time", "families[0]"], "\(bad.text)")
        #expect(try await api.call(.PATCH, "/v1/peers/nope", #"{"asn":1}"#).status == 404)

        let events = try await api.call(.GET, "/v1/peers/r1/events")
        let reasons = (events["events"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons == ["peer created", "peer changed (password): session reset", "peer changed (asn, hold_time, keepalive_time): session reset"], "\(events.text)")
        #expect(try await api.call(.DELETE, "/v1/peers/r1").status == 204)
        #expect(try await api.call(.GET, "/v1/peers/r1").status == 404)
        #expect(try await api.call(.GET, "/v1/peers/r1/events").status == 404)
    }
}

/// After any sequence of API calls, the table the Reconciler keeps (updated incrementally for
/// allocations and static routes) equals the one derived from the database alone, which is what
/// a restart announces.
@Suite struct IncrementalTableTests {
    @Test func randomCallsKeepTheTableEqualToAFullDerivation() async throws {
        let api = try APIFixture()
        var rng = SystemRandomNumberGenerator()
        _ = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/27","2001:db8::/120"],"node_selector":{"role":"worker"}}"#)
        for n in 1...3 {
            _ = try await api.call(.PUT, "/v1/nodes/n\(n)", #"{"addresses":["100.64.0.\#(n)","fd64::\#(n)"],"labels":{"role":"worker"}}"#)
        }
        for step in 0..<150 {
            let name = "svc-\(Int.random(in: 0..<12, using: &rng))"
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: _ = try await api.call(.DELETE, "/v1/allocations/\(name)")
            case 1: _ = try await api.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb","family":"dual"}"#)
            case 2: _ = try await api.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb","traffic_policy":"local","nodes":["n\#(Int.random(in: 1...3, using: &rng))"]}"#)
            case 3: _ = try await api.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb","sharing_key":"k"}"#)
            case 4: _ = try await api.call(.PUT, "/v1/nodes/n\(Int.random(in: 1...3, using: &rng))",
                                           #"{"addresses":["100.64.0.\#(Int.random(in: 1...3, using: &rng))"],"labels":{"role":"\#(Bool.random(using: &rng) ? "worker" : "spare")"}}"#)
            case 5: _ = try await api.call(.PUT, "/v1/routes/r\(step % 4)", #"{"prefix":"10.\#(Int.random(in: 0...3, using: &rng)).0.0/16","next_hops":["n1","self"]}"#)
            default: _ = try await api.call(.DELETE, "/v1/routes/r\(step % 4)")
            }
            let full = try api.store.read { db in try DesiredRoutes.derive(db) }
            #expect(api.committer.desiredRoutes == full, "after step \(step)")
            if api.committer.desiredRoutes != full { break }
        }
    }
}
