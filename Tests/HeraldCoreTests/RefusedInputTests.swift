import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import IP
import Store

/// Input that was accepted and could never work (issue #17 item 8): each is refused up front,
/// naming the field and saying what to write instead.
@Suite struct RefusedInputTests {
    /// The fields of a problem response's `errors`, in order.
    static func fields(_ reply: APIFixture.Reply) -> [String] {
        ((reply["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }

    @Test func linkLocalPeerAddressesAreRefusedBecauseTheyNeedAnInterface() async throws {
        let api = try APIFixture()
        let bare = try await api.call(.POST, "/v1/peers", #"{"name":"ll","address":"fe80::1","asn":65001,"families":["ipv6-unicast"]}"#)
        #expect(bare.status == 422 && Self.fields(bare) == ["address"], "\(bare.text)")
        #expect(bare.text.contains("link-local") && bare.text.contains("fe80::1%eth0") && bare.text.contains("global or unique-local"), "\(bare.text)")

        let zoned = try await api.call(.POST, "/v1/peers", #"{"name":"ll","address":"fe80::1%eth0","asn":65001,"families":["ipv6-unicast"]}"#)
        #expect(zoned.status == 422 && Self.fields(zoned) == ["address"] && zoned.text.contains("names an interface"), "\(zoned.text)")

        let local = try await api.call(.POST, "/v1/peers", #"{"name":"v6","address":"2001:db8::2","local_address":"fe80::2","asn":65001,"families":["ipv6-unicast"]}"#)
        #expect(local.status == 422 && Self.fields(local) == ["local_address"] && local.text.contains("link-local"), "\(local.text)")

        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"v6","address":"2001:db8::2","asn":65001,"families":["ipv6-unicast"]}"#).status == 201)
        let patched = try await api.call(.PATCH, "/v1/peers/v6", #"{"address":"fe80::2"}"#)
        #expect(patched.status == 422 && Self.fields(patched) == ["address"], "\(patched.text)")
    }

    @Test func ipv4MappedPeerAddressesAreRefusedNamingTheIPv4Address() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"a","address":"127.0.0.3","asn":65001,"passive":true}"#).status == 201)
        let mapped = try await api.call(.POST, "/v1/peers", #"{"name":"b","address":"::ffff:127.0.0.3","asn":65001,"passive":true}"#)
        #expect(mapped.status == 422 && Self.fields(mapped) == ["address"] && mapped.text.contains("use 127.0.0.3"), "\(mapped.text)")
        #expect(try api.store.read { db in try Peers.list(db) }.map(\.name) == ["a"])
    }

    @Test func aPortWrittenIntoThePeerAddressPointsAtPort() async throws {
        let api = try APIFixture()
        for text in ["127.0.0.3:179", "[2001:db8::3]:179"] {
            let reply = try await api.call(.POST, "/v1/peers", #"{"name":"p","address":"\#(text)","asn":65001}"#)
            #expect(reply.status == 422 && Self.fields(reply) == ["address"], "\(reply.text)")
            #expect(reply.text.contains("in `port`") && !reply.text.contains("IPv6"), "\(reply.text)")
        }
    }

    @Test func poolBlocksInSpaceThatCannotHoldServicesAreRefused() async throws {
        let api = try APIFixture()
        let cases = [("127.0.0.0/24", "127.0.0.0/8"), ("169.254.1.0/24", "169.254.0.0/16"), ("239.0.0.1-239.0.0.9", "224.0.0.0/4"),
                     ("0.0.0.0/30", "0.0.0.0/8"), ("240.0.0.0/24", "240.0.0.0/4"), ("::/127", "::/128"), ("::1/128", "::1/128"),
                     ("::ffff:192.0.2.0/120", "::ffff:0.0.0.0/96"), ("fe80::/64", "fe80::/10"), ("ff02::/120", "ff00::/8"),
                     // Overlapping is enough: the block need not lie inside the reserved space.
                     ("223.255.255.0-224.0.0.10", "224.0.0.0/4")]
        for (block, reserved) in cases {
            let reply = try await api.call(.PUT, "/v1/pools/p", #"{"blocks":["192.0.2.0/24","\#(block)"]}"#)
            #expect(reply.status == 422 && Self.fields(reply) == ["blocks[1]"], "\(block): \(reply.text)")
            #expect(reply.text.contains("\(block) overlaps \(reserved)"), "\(block): \(reply.text)")
        }
        #expect(try await api.call(.GET, "/v1/pools").text.contains("\"pools\":[]"))
        for (index, block) in ["10.0.0.0/24", "100.64.0.0/24", "198.18.0.0/24", "fd00::/120", "2001:db8::/120"].enumerated() {
            #expect(try await api.call(.PUT, "/v1/pools/ok-\(index)", #"{"blocks":["\#(block)"]}"#).status == 201, "\(block)")
        }
    }

    @Test func listenPortZeroIsRefused() async throws {
        let api = try APIFixture()
        let settings = SpeakerSettings(asn: 64512, routerID: IPv4Address(192, 0, 2, 1), listen: IPEndpoint(address: .v4(.any), port: 179),
                                       holdTime: 90, keepaliveTime: 30, connectRetryTime: 120, gracefulRestartEnabled: true,
                                       gracefulRestartTime: 120)
        try api.store.write { db in try settings.save(db, now: 1) }
        let zero = try await api.call(.PUT, "/v1/speaker", #"{"listen_port":0}"#)
        #expect(zero.status == 422 && Self.fields(zero) == ["listen_port"] && zero.text.contains("1–65535"), "\(zero.text)")
        #expect(try api.store.read { db in try SpeakerSettings.load(db) }?.listen.port == 179)
        #expect(try await api.call(.PUT, "/v1/speaker", #"{"listen_port":1179}"#).status == 200)
    }

    @Test func descriptionsAreBounded() async throws {
        let api = try APIFixture()
        let limit = Validator.descriptionLimit
        // Counted in characters as JSON Schema counts them: 1024 "é" (2 bytes each) fit.
        let fits = String(repeating: "é", count: limit), long = String(repeating: "x", count: limit + 1)
        #expect(try await api.call(.PUT, "/v1/pools/p", #"{"blocks":["192.0.2.0/24"],"description":"\#(fits)"}"#).status == 201)
        let pool = try await api.call(.PUT, "/v1/pools/p", #"{"blocks":["192.0.2.0/24"],"description":"\#(long)"}"#)
        #expect(pool.status == 422 && Self.fields(pool) == ["description"] && pool.text.contains("at most 1024"), "\(pool.text.prefix(300))")

        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"r","address":"127.0.0.3","asn":65001,"description":"\#(fits)"}"#).status == 201)
        let peer = try await api.call(.POST, "/v1/peers", #"{"name":"s","address":"127.0.0.4","asn":65001,"description":"\#(long)"}"#)
        #expect(peer.status == 422 && Self.fields(peer) == ["description"], "\(peer.text.prefix(300))")
        let patched = try await api.call(.PATCH, "/v1/peers/r", #"{"description":"\#(long)"}"#)
        #expect(patched.status == 422 && Self.fields(patched) == ["description"], "\(patched.text.prefix(300))")
    }

    @Test func everyLabelFilterOfAllocationsApplies() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.64.0.0/24"]}"#).status == 201)
        for (name, labels) in [("web-a", #"{"app":"web","team":"a"}"#), ("web-a2", #"{"app":"web","team":"a"}"#),
                               ("web-b", #"{"app":"web","team":"b"}"#), ("db-a", #"{"app":"db","team":"a"}"#)] {
            #expect(try await api.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb","labels":\#(labels)}"#).status == 201)
        }
        func names(_ target: String) async throws -> [String] {
            let reply = try await api.call(.GET, target)
            #expect(reply.status == 200, "\(reply.text)")
            return ((reply["allocations"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        }
        #expect(try await names("/v1/allocations?label=app%3Dweb") == ["web-a", "web-a2", "web-b"])
        #expect(try await names("/v1/allocations?label=app%3Dweb&label=team%3Da") == ["web-a", "web-a2"])
        #expect(try await names("/v1/allocations?label=team%3Da&label=app%3Ddb") == ["db-a"])
        #expect(try await names("/v1/allocations?label=app%3Dweb&label=app%3Ddb").isEmpty)
        // The next page keeps every label.
        let walked = try await PagingAPITests.walk(api, "/v1/allocations?label=app%3Dweb&label=team%3Da&limit=1", key: "allocations")
        #expect(walked.pages == 2 && walked.items.compactMap { $0["name"] as? String } == ["web-a", "web-a2"])
    }

    @Test func aQueryParameterGivenTwiceIsRefusedUnlessRepeatable() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["100.64.0.0/24"]}"#).status == 201)
        for (target, field) in [("/v1/allocations?pool=lb&pool=other", "pool"), ("/v1/allocations?limit=1&limit=2", "limit"),
                                ("/v1/history?peer=a&peer=b", "peer")] {
            let reply = try await api.call(.GET, target)
            #expect(reply.status == 400 && Self.fields(reply) == [field] && reply.text.contains("more than once"), "\(target): \(reply.text)")
        }
    }
}
