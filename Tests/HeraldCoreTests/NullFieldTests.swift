import Foundation
import Testing
@testable import HeraldCore
import HTTPServer

/// Issue #17 item 9: an explicit JSON `null` was read as "not given" where openapi.yaml does not
/// allow it. Every member of every request body refuses null with a 400 naming the member and
/// the type it wants; `allow_first_last_ips`, whose schema is `[boolean, "null"]`, takes it as
/// the default.
@Suite struct NullFieldTests {
    /// One request body member written as null: the operation, a body that is valid without the
    /// null, the member's path (`bfd.min_tx`, `[0].name` in a batch) and what it must be.
    struct Case: CustomStringConvertible, Sendable {
        let method: HTTPMethod
        let path: String
        /// JSON text.
        let body: String
        let field: String
        let kind: String
        var description: String { "\(method) \(path) \(field)" }
    }

    static let peer = #"{"name":"r1","address":"192.0.2.1","asn":65001}"#
    static let pool = #"{"name":"lb","blocks":["192.0.2.0/24"]}"#
    static let route = #"{"prefix":"10.0.0.0/24"}"#

    static func cases(_ method: HTTPMethod, _ path: String, _ body: String, _ fields: [(String, String)]) -> [Case] {
        fields.map { Case(method: method, path: path, body: body, field: $0.0, kind: $0.1) }
    }

    static let peerFields = [
        ("name", "a string"), ("address", "a string"), ("port", "an integer"), ("asn", "an integer"), ("local_address", "a string"),
        ("other_family_next_hop", "a string"), ("password", "a string"), ("ebgp_multihop", "an integer"), ("ttl_security", "an integer"),
        ("hold_time", "an integer"), ("keepalive_time", "an integer"), ("connect_retry_time", "an integer"), ("passive", "a boolean"),
        ("families", "an array"), ("add_path_send", "a boolean"), ("graceful_restart", "a boolean"), ("max_prefixes", "an integer"),
        ("labels", "an object"), ("enabled", "a boolean"), ("description", "a string"), ("bfd", "an object"),
        ("bfd.enabled", "a boolean"), ("bfd.min_tx", "an integer"), ("bfd.min_rx", "an integer"), ("bfd.multiplier", "an integer"),
        ("families[0]", "a string"), ("labels.k", "a string"),
    ]
    static let announceFields = [
        ("announce", "an object"), ("announce.communities", "an array"), ("announce.large_communities", "an array"),
        ("announce.local_pref", "an integer"), ("announce.med", "an integer"), ("announce.as_path_prepend", "an integer"),
        ("announce.peer_selector", "an object"), ("announce.aggregation_length", "an integer"),
        ("announce.aggregation_length_v6", "an integer"), ("announce.communities[0]", "a string"),
    ]

    static let all: [Case] =
        cases(.PUT, "/v1/speaker", "{}", [
            ("asn", "an integer"), ("router_id", "a string"), ("listen_address", "a string"), ("listen_port", "an integer"),
            ("hold_time", "an integer"), ("keepalive_time", "an integer"), ("connect_retry_time", "an integer"),
            ("graceful_restart", "an object"), ("graceful_restart.enabled", "a boolean"), ("graceful_restart.restart_time", "an integer"),
        ])
        + cases(.POST, "/v1/peers", peer, peerFields)
        + cases(.PATCH, "/v1/peers/r0", "{}", peerFields)
        + cases(.POST, "/v1/peers/r0/reset", "{}", [("soft", "a boolean"), ("direction", "a string"), ("message", "a string")])
        + cases(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"tcp","port":80}}"#, [
            ("addresses", "an array"), ("addresses[0]", "a string"), ("labels", "an object"), ("health_check", "an object"),
            ("health_check.kind", "a string"), ("health_check.port", "an integer"), ("health_check.path", "a string"),
            ("health_check.address", "a string"), ("health_check.interval", "an integer"), ("health_check.timeout", "an integer"),
            ("health_check.rise", "an integer"), ("health_check.fall", "an integer"),
        ])
        + cases(.POST, "/v1/pools", pool, [
            ("name", "a string"), ("blocks", "an array"), ("blocks[0]", "a string"), ("service_selector", "an object"),
            ("node_selector", "an object"), ("disabled", "a boolean"), ("description", "a string"), ("labels", "an object"),
            ("fail_open", "a boolean"),
        ] + announceFields)
        + cases(.PUT, "/v1/pools/lb", pool, [("fail_open", "a boolean"), ("labels", "an object")])
        + cases(.PUT, "/v1/allocations/default.web", #"{"pool":"lb"}"#, [
            ("pool", "a string"), ("labels", "an object"), ("address", "a string"), ("addresses", "an array"), ("family", "a string"),
            ("sharing_key", "a string"), ("traffic_policy", "a string"), ("nodes", "an array"), ("nodes[0]", "a string"),
        ])
        + cases(.POST, "/v1/routes/r", route, [("prefix", "a string"), ("next_hops", "an array"), ("labels", "an object")] + announceFields)
        + cases(.PUT, "/v1/routes/r", route, [("next_hops", "an array"), ("next_hops[0]", "a string")])
        + cases(.POST, "/v1/routes:batch", "[\(route)]", [
            ("[0].name", "a string"), ("[0].prefix", "a string"), ("[0].next_hops", "an array"), ("[0].next_hops[0]", "a string"),
            ("[0].announce", "an object"), ("[0].announce.med", "an integer"), ("[0].labels", "an object"), ("[0].labels.k", "a string"),
        ])
        + cases(.POST, "/v1/cluster/members", #"{"id":"1","address":"127.0.0.1:9001"}"#, [
            ("id", "a string"), ("address", "a string"), ("voter", "a boolean"),
        ])
        + cases(.POST, "/v1/cluster/transfer", #"{"id":"1"}"#, [("id", "a string")])

    /// `value` with the member at `path` (`a.b[0]`, `[0].c`) set to null, creating what is missing.
    static func settingNull(_ value: Any, at path: Substring) -> Any {
        if path.hasPrefix("[") {
            let close = path.firstIndex(of: "]")!
            let index = Int(path[path.index(after: path.startIndex)..<close])!
            var array = value as? [Any] ?? []
            while array.count <= index { array.append("x") }
            var rest = path[path.index(after: close)...]
            if rest.hasPrefix(".") { rest = rest.dropFirst() }
            array[index] = rest.isEmpty ? NSNull() : settingNull(array[index], at: rest)
            return array
        }
        let end = path.firstIndex(where: { $0 == "." || $0 == "[" }) ?? path.endIndex
        let key = String(path[..<end])
        var object = value as? [String: Any] ?? [:]
        var rest = path[end...]
        if rest.hasPrefix(".") { rest = rest.dropFirst() }
        object[key] = rest.isEmpty ? NSNull() : settingNull(object[key] ?? (rest.hasPrefix("[") ? [Any]() : [String: Any]()), at: rest)
        return object
    }

    @Test(arguments: all) func nullIsRefusedNamingTheMemberAndItsType(_ c: Case) async throws {
        let api = try APIFixture()
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"r0","address":"192.0.2.9","asn":65009}"#).status == 201)
        let base = try JSONSerialization.jsonObject(with: Data(c.body.utf8))
        let body = String(decoding: try JSONSerialization.data(withJSONObject: Self.settingNull(base, at: Substring(c.field))), as: UTF8.self)
        let reply = try await api.call(c.method, c.path, body)
        let errors = (reply["errors"] as? [[String: Any]]) ?? []
        #expect(reply.status == 400, "\(c): \(body) → \(reply.status) \(reply.text)")
        #expect(errors.count == 1 && errors.first?["field"] as? String == c.field
                && errors.first?["message"] as? String == "must be \(c.kind), not null", "\(c): \(body) → \(reply.text)")
    }

    /// `allow_first_last_ips` is `[boolean, "null"]` in the schema: null is the default (IPv4
    /// network and broadcast addresses kept back), the same as leaving it out.
    @Test func allowFirstLastIPsTakesNullAsTheDefault() async throws {
        let api = try APIFixture()
        let created = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/30"],"allow_first_last_ips":true}"#)
        #expect(created.status == 201 && created["allow_first_last_ips"] as? Bool == true, "\(created.text)")
        let reset = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/30"],"allow_first_last_ips":null}"#)
        #expect(reset.status == 200 && reset["allow_first_last_ips"] == nil, "\(reset.text)")
        #expect(reset["size"] as? Double == 2, "\(reset.text)")
    }
}
