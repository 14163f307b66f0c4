import TestSupport
import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import IP
import Store

/// The hand-written reader of `POST /v1/routes:batch` items (JSONItemScanner) and the bulk
/// derivation: malformed input is refused with a field or a line named, never a crash, and the
/// table a batch leaves equals a full derivation from the database.
@Suite struct RouteBatchScannerTests {
    func fields(_ reply: APIFixture.Reply) -> [String] {
        ((reply["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }

    func post(_ api: APIFixture, _ body: String, ndjson: Bool = false) async throws -> APIFixture.Reply {
        try await api.call(.POST, "/v1/routes:batch", body, contentType: ndjson ? "application/x-ndjson" : "application/json")
    }

    @Test func everyMemberIsRead() async throws {
        let api = try APIFixture()
        let reply = try await post(api, """
            [{"prefix":"10.1.0.0/16","name":"full","next_hops":["self","192.0.2.1"],"announce":{"communities":["65000:1"],"local_pref":200},
              "labels":{"team":"net"}},
             {"prefix":"10.2.0.0/16"},
             { "prefix" : "10.3.0.0/16" , "labels" : { } }]
            """)
        #expect(reply.status == 200 && reply["created"] as? Int == 3, "\(reply.text)")
        let full = try await api.call(.GET, "/v1/routes/full")
        #expect(full["next_hops"] as? [String] == ["self", "192.0.2.1"], "\(full.text)")
        #expect((full["announce"] as? [String: Any])?["local_pref"] as? Int == 200)
        #expect((full["labels"] as? [String: String]) == ["team": "net"])
        #expect(try await api.call(.GET, "/v1/routes/10.2.0.0_16")["next_hops"] as? [String] == ["self"])
    }

    @Test func malformedItemsAreRefusedNamingTheItemOrLine() async throws {
        let api = try APIFixture()
        // (body, NDJSON?, expected status, text the answer must contain)
        let cases: [(String, Bool, Int, String)] = [
            (#"[{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.2/32","colour":"red"}]"#, false, 400, "[1].colour"),
            (#"[{"prefix":"10.0.0.1/32","nexthops":["self"]}]"#, false, 400, "[0].nexthops"),
            (#"[{"next_hops":["self"]}]"#, false, 400, "[0].prefix"),
            (#"[{"prefix":null}]"#, false, 400, "[0].prefix"),
            // Issue #17 item 9: null is refused for optional members too (the schema does not allow it).
            (#"[{"prefix":"10.0.0.1/32","name":null}]"#, false, 400, #""field":"[0].name","message":"must be a string, not null""#),
            (#"[{"prefix":"10.0.0.1/32","next_hops":null}]"#, false, 400, #""field":"[0].next_hops","message":"must be an array, not null""#),
            (#"[{"prefix":"10.0.0.1/32","announce":null}]"#, false, 400, #""field":"[0].announce","message":"must be an object, not null""#),
            (#"[{"prefix":"10.0.0.1/32","labels":null}]"#, false, 400, #""field":"[0].labels","message":"must be an object, not null""#),
            (#"[{"prefix":32}]"#, false, 400, "[0].prefix"),
            (#"[{"prefix":"10.0.0.1/32","name":7}]"#, false, 400, "[0].name"),
            (#"[{"prefix":"10.0.0.1/32","next_hops":"self"}]"#, false, 400, "[0].next_hops"),
            (#"[{"prefix":"10.0.0.1/32","next_hops":["self",1]}]"#, false, 400, "[0].next_hops[1]"),
            (#"[{"prefix":"10.0.0.1/32","next_hops":[null]}]"#, false, 400, "[0].next_hops[0]"),
            (#"[{"prefix":"10.0.0.1/32","announce":{"colour":1}}]"#, false, 400, "[0].announce.colour"),
            (#"[{"prefix":"10.0.0.1/32","announce":{"local_pref":99999999999999999999}}]"#, false, 400, "[0].announce.local_pref"),
            (#"[{"prefix":"10.0.0.1/32","labels":{"a":1}}]"#, false, 400, "[0].labels.a"),
            (#"[{"prefix":"10.0.0.1/32","prefix":"10.0.0.2/32"}]"#, false, 400, "duplicate member"),
            (#"[{"prefix":"10.0.0.1/32"},"x"]"#, false, 400, "[1]"),
            (#"[{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.2/32""#, false, 400, "after item 1"),
            (#"[{"prefix":"10.0.0.1/32"}"#, false, 400, "after item 1"),
            (#"[{"prefix":"10.0.0.1/32}]"#, false, 400, "invalid JSON"),
            (#"[{"prefix":12e999999}]"#, false, 400, "[0].prefix"),
            (#"[{"prefix":"10.0.0.1/32"}] []"#, false, 400, "unexpected data"),
            ("{\"prefix\":\"10.0.0.1/32\"}\n{\"prefix\":\"10.0.0.2/32\",}", true, 400, "line 2"),
            ("{\"prefix\":\"10.0.0.1/32\"}\n[1]", true, 400, "[1]"),
            ("{\"prefix\":\"10.0.0.1/32\"} {\"prefix\":\"10.0.0.2/32\"}", true, 400, "line 1"),
            ("{\"prefix\":\"10.0.0.1/32\",\"name\":\"a\\ud800\"}", true, 400, "line 1"),
            ("{\"prefix\":\"10.0.0.1/32\",\"name\":\"a\u{01}\"}", true, 400, "line 1"),
            (#"[{"prefix":"10.0.0.256/32"}]"#, false, 422, "[0].prefix"),
            (#"[{"prefix":"10.0.0.1/32","name":"Bad Name"}]"#, false, 422, "[0].name"),
        ]
        for (body, ndjson, status, text) in cases {
            let reply = try await post(api, body, ndjson: ndjson)
            #expect(reply.status == status && reply.text.contains(text), "\(body) → \(reply.status) \(reply.text)")
        }
        // Duplicates among items named after their prefixes, in and out of order.
        for body in [#"[{"prefix":"10.0.0.2/32"},{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.2/32"}]"#,
                     #"[{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.2/32"},{"prefix":"10.0.0.2/32"}]"#] {
            let reply = try await post(api, body)
            #expect(reply.status == 422 && Set(fields(reply)) == ["[2].prefix", "[2].name"] && reply.text.contains("is also item"), "\(reply.text)")
        }
        let named = try await post(api, #"[{"prefix":"10.0.0.1/32","name":"x"},{"prefix":"10.0.0.2/32","name":"x"}]"#)
        #expect(named.status == 422 && fields(named) == ["[1].name"], "\(named.text)")
        // Bytes that are not UTF-8 inside a string, raw.
        var raw = Array(#"[{"prefix":"10.0.0.1/32","name":"a"#.utf8)
        raw += [0xC3, 0x28]
        raw += Array(#""}]"#.utf8)
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        let response = await api.router.respond(to: try HTTPRequest(.POST, "/v1/routes:batch", headers: headers, body: raw),
                                                context: RequestContext(requestID: "t"))
        #expect(response.status.code == 400 && String(decoding: response.bodyBytes, as: UTF8.self).contains("UTF-8"))
        #expect((try await api.call(.GET, "/v1/routes")["routes"] as? [[String: Any]])?.isEmpty == true, "nothing was committed")
    }

    /// Seeded random mutations of a valid body: every answer is a 2xx, or a 4xx whose problem
    /// names a field, an item or a line; the process never crashes.
    @Test func randomMutationsAreAnsweredNeverCrash() async throws {
        let api = try APIFixture()
        let valid = Array("""
            [{"prefix":"10.9.0.0/24","next_hops":["self"],"labels":{"k":"v"}},{"name":"r-2","prefix":"2001:db8::/64","announce":{"med":5,"communities":["65000:1"]}},{"prefix":"10.9.1.0/24"}]
            """.utf8)
        let alphabet = Array(#"{}[]":,\/ 0123456789.eE+-truefalsnul"#.utf8) + [0x00, 0x1E, 0x0A, 0xC3, 0xFF, 0x80]
        var generator = SeededGenerator(seed: 0x7E57_BA7C)
        var answered: [Int: Int] = [:]
        for round in 0..<400 {
            var body = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                guard !body.isEmpty else { break }
                let at = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: body[at] = alphabet.randomElement(using: &generator)!
                case 1: body.insert(alphabet.randomElement(using: &generator)!, at: at)
                case 2: body.remove(at: at)
                default: body = Array(body[..<at])  // truncated
                }
            }
            var headers = HTTPHeaders()
            headers.set("Content-Type", round % 2 == 0 ? "application/json" : "application/x-ndjson")
            let response = await api.router.respond(to: try HTTPRequest(.POST, "/v1/routes:batch", headers: headers, body: body),
                                                    context: RequestContext(requestID: "fuzz-\(round)"))
            let status = Int(response.status.code)
            answered[status, default: 0] += 1
            let text = String(decoding: response.bodyBytes, as: UTF8.self)
            let sent = String(decoding: body, as: UTF8.self)
            #expect((200..<300).contains(status) || (400..<500).contains(status), "\(sent) → \(status) \(text)")
            if (400..<500).contains(status) {
                #expect(text.contains("\"field\"") || text.contains("line ") || text.contains("item ") || text.contains("byte "),
                        "\(sent) → \(status) \(text)")
            }
        }
        #expect(answered.keys.contains { (400..<500).contains($0) }, "mutations were refused: \(answered)")
    }

    /// A batch that shares prefixes with allocations, names nodes (one of them down), moves
    /// routes to other prefixes (one to the prefix another route of the batch left): the
    /// reconciler's table equals a full derivation from the database afterwards, and the history
    /// has every announce and withdraw.
    @Test func theBulkDerivationMatchesAFullDerivation() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/nodes/n2", #"{"addresses":["100.64.0.12"],"health_check":{"kind":"tcp","port":9}}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["10.0.0.0/24"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/allocations/svc", #"{"pool":"lb","address":"10.0.0.5"}"#).status == 201)
        try await api.committer.setNodeHealth("n2", down: true, reason: "test")
        func matches() throws {
            let full = try api.store.read { db in try DesiredRoutes.derive(db, down: api.committer.downNodes) }
            #expect(api.committer.desiredRoutes == full)
        }
        let first = try await post(api, """
            {"name":"a","prefix":"10.0.0.5/32","next_hops":["n1"]}
            {"name":"b","prefix":"10.1.0.0/24","next_hops":["n2"]}
            {"name":"c","prefix":"10.2.0.0/24","next_hops":["n1","self","n2"]}
            {"name":"d","prefix":"10.3.0.0/24"}
            {"name":"e","prefix":"10.4.0.0/24"}
            """, ndjson: true)
        #expect(first.status == 200 && first["created"] as? Int == 5, "\(first.text)")
        try matches()
        // The shared prefix merges the allocation's path with the static route's.
        #expect(api.committer.desiredRoutes[IPPrefix("10.0.0.5/32")!]?.sources.count == 2)
        // "b" only names a node that is down: not announced.
        #expect(api.committer.desiredRoutes[IPPrefix("10.1.0.0/24")!] == nil)

        let second = try await post(api, """
            {"name":"a","prefix":"10.0.0.6/32","next_hops":["n1"]}
            {"name":"d","prefix":"10.5.0.0/24"}
            {"name":"e","prefix":"10.3.0.0/24"}
            {"name":"c","prefix":"10.2.0.0/24","next_hops":["n1","self","n2"]}
            """, ndjson: true)
        #expect(second.status == 200 && second["updated"] as? Int == 3 && second["unchanged"] as? Int == 1, "\(second.text)")
        try matches()
        #expect(api.committer.desiredRoutes[IPPrefix("10.0.0.5/32")!]?.sources.map(\.name) == ["svc"])
        #expect(api.committer.desiredRoutes[IPPrefix("10.4.0.0/24")!] == nil)
        #expect(api.committer.desiredRoutes[IPPrefix("10.3.0.0/24")!]?.sources.map(\.name) == ["e"])
        // Two routes of one batch cannot swap prefixes (each row is checked as it is written):
        // 409 naming the item, nothing changed.
        let swap = try await post(api, #"[{"name":"d","prefix":"10.3.0.0/24"},{"name":"e","prefix":"10.5.0.0/24"}]"#)
        #expect(swap.status == 409 && swap.text.contains(#"item 0: prefix 10.3.0.0/24 is already the static route \"e\""#), "\(swap.text)")
        try matches()

        try await api.committer.setNodeHealth("n2", down: false, reason: "test")
        try matches()
        let restarted = try Committer(store: api.store)
        #expect(restarted.desiredRoutes == api.committer.desiredRoutes)

        let history = try await api.call(.GET, "/v1/history?prefix=10.0.0.6/32")["events"] as? [[String: Any]] ?? []
        #expect(history.map { $0["action"] as? String } == ["announce"] && history.first?["reason"] as? String == "static routes batch: 0 created, 3 changed",
                "\(history)")
    }

    /// The fast IPv4 prefix reader agrees with `IPPrefix(parsing:)`: whatever it accepts parses
    /// to the same prefix and is already written canonically; whatever it refuses is left to the
    /// full parser (which may accept it, e.g. IPv6, or explain the error).
    @Test func theCanonicalIPv4ReaderAgreesWithTheFullParser() {
        var inputs = ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.1/32", "255.255.255.255/32", "192.0.2.0/24", "10.0.0.1/24", "10.0.0.0/33",
                      "010.0.0.0/8", "10.0.0.0/08", "10.0.0/8", "10.0.0.0.0/8", "10.0.0.256/32", "10..0.0/8", "10.0.0.0/", "/8", "10.0.0.0",
                      "10.0.0.0/8/8", "1.2.3.4/32 ", " 1.2.3.4/32", "2001:db8::/32", "::/0", "1.2.3.4/0", "0.0.0.0/32", "1.2.3.4/-1", ""]
        var generator = SeededGenerator(seed: 0x1B_4F)
        let alphabet = Array("0123456789./:".utf8)
        for _ in 0..<5000 {
            let count = Int.random(in: 1...18, using: &generator)
            inputs.append(String(decoding: (0..<count).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self))
            let length = Int.random(in: 0...32, using: &generator)
            let address = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
            inputs.append("\(IPPrefix(truncating: .v4(address), length: length))")
        }
        for input in inputs {
            let full = try? IPPrefix(parsing: input)
            if let fast = StaticRoutes.canonicalIPv4Prefix(input) {
                #expect(fast == full && fast.description == input, "\(input)")
            } else if let full, full.family == .ipv4 {
                Issue.record("\(input) parses (\(full)) but the fast reader refused it")
            }
        }
    }

    /// A large NDJSON body is read in two halves on two cores: items, errors, item indexes and
    /// line numbers are those of one scan, blank lines included.
    @Test(.heavy) func aLargeBodyReadInHalvesNamesTheSameItemsAndLines() async throws {
        let api = try APIFixture()
        func body(_ change: (inout [String]) -> Void) -> String {
            var lines = ["", "   "]  // blank lines: not items, but counted as lines
            for n in 0..<60_000 { lines.append(#"{"prefix":"10.\#(n >> 16).\#((n >> 8) & 255).\#(n & 255)/32"}"#) }
            change(&lines)
            return lines.joined(separator: "\n")
        }
        let big = body { _ in }
        #expect(big.utf8.count > 1 << 20)
        let twoBad = try await post(api, body { lines in
            lines[12] = #"{"prefix":"10.0.0.10/24"}"#      // item 10
            lines[59_000] = #"{"prefix":"10.0.0.1/33"}"#    // item 58998
        }, ndjson: true)
        #expect(twoBad.status == 422 && fields(twoBad) == ["[10].prefix", "[58998].prefix"], "\(twoBad.text.prefix(500))")
        let broken = try await post(api, body { lines in lines[59_000] = #"{"prefix":"#; lines[12] = #"{"prefix":"10.0.0.10/24"}"# }, ndjson: true)
        #expect(broken.status == 400 && broken.text.contains("line 59001"), "\(broken.text.prefix(500))")
        let shape = try await post(api, body { lines in lines[40_000] = #"{"prefix":"10.0.0.1/32","x":1}"# }, ndjson: true)
        #expect(shape.status == 400 && shape.text.contains("[39998].x"), "\(shape.text.prefix(500))")
        let good = try await post(api, big, ndjson: true)
        #expect(good.status == 200 && good["created"] as? Int == 60_000, "\(good.text.prefix(500))")
        #expect(try await api.call(.GET, "/v1/routes/10.0.234.95_32")["prefix"] as? String == "10.0.234.95/32")
    }
}
