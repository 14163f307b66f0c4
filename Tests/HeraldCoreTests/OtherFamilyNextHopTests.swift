import Foundation
import Testing
@testable import HeraldCore
import HTTPServer

/// `other_family_next_hop` (issue #17 item 4): stored, shown, cleared with "", refused when of
/// the session's own family, and handed to the speaker.
@Suite struct OtherFamilyNextHopTests {
    @Test func aPeerTakesANextHopForTheOtherFamily() async throws {
        let api = try APIFixture()
        let created = try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.2","asn":65001,"families":["ipv4-unicast","ipv6-unicast"],"other_family_next_hop":"fd00:64::1"}"#)
        #expect(created.status == 201 && created["other_family_next_hop"] as? String == "fd00:64::1", "\(created.text)")
        let same = try await api.call(.PATCH, "/v1/peers/r1", #"{"other_family_next_hop":"100.64.0.1"}"#)
        #expect(same.status == 422 && same.text.contains("other_family_next_hop") && same.text.contains("give an IPv6 address"), "\(same.text)")
        let settings = try api.store.read { db in try Peers.get(db, name: "r1") }.map { SpeakerMapping.peerSettings(name: "r1", $0.config) }
        #expect(settings?.otherFamilyNextHop?.description == "fd00:64::1")
        let cleared = try await api.call(.PATCH, "/v1/peers/r1", #"{"other_family_next_hop":""}"#)
        #expect(cleared.status == 200 && cleared["other_family_next_hop"] == nil, "\(cleared.text)")
    }

    /// An address that reaches no router says so in the PUT's answer (issue #17 item 4: an IPv6
    /// address was handed out that no peer could receive, in silence).
    @Test func anAllocationThatReachesNoRouterSaysWhy() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.9.1"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/pools/v6", #"{"blocks":["fd00:72::/120"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/pools/v4", #"{"blocks":["100.72.0.0/28"]}"#).status == 201)
        #expect(try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.2","asn":65001}"#).status == 201)
        let six = try await api.call(.PUT, "/v1/allocations/six", #"{"pool":"v6"}"#)
        #expect(six.status == 201)
        let sixWarnings = six["warnings"] as? [String] ?? []
        #expect(sixWarnings.count == 1 && sixWarnings[0].contains("is not announced: no node serving it has an IPv6 address"), "\(six.text)")
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.9.1","fd00:64::1"]}"#).status == 200)
        let again = try await api.call(.PUT, "/v1/allocations/six", #"{"pool":"v6"}"#)
        #expect((again["warnings"] as? [String])?.first?.contains("no enabled peer carries ipv6-unicast") == true, "\(again.text)")
        let four = try await api.call(.PUT, "/v1/allocations/four", #"{"pool":"v4"}"#)
        #expect(four.status == 201 && four["warnings"] == nil, "\(four.text)")
    }
}
