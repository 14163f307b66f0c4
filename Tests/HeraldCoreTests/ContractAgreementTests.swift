import Foundation
import Testing
@testable import HeraldCore
import HTTPServer

/// Issue #17 item 9: what openapi.yaml allows the server takes, and what it refuses the server
/// refuses (schemathesis with every check found these).
@Suite struct ContractAgreementTests {
    /// `live` is `enum: ["0", "1"]`: anything else was served as if it were absent.
    @Test func theStatusPageRefusesALiveOtherThan0Or1() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.GET, "/?live=0").status == 200)
        #expect(try await api.call(.GET, "/?live=1").status == 200)
        #expect(try await api.call(.GET, "/").status == 200)
        let refused = try await api.call(.GET, "/?live=yes")
        #expect(refused.status == 400 && refused.text.contains(#""field":"live""#), "\(refused.text)")
    }

    /// `label` is `^[^=]+=.*$`: an "=" that a following combining scalar joins into one grapheme
    /// ("=\u{1F3FB}") is still the separator.
    @Test func aLabelFilterSplitsAtTheFirstEqualsScalar() async throws {
        let api = try APIFixture()
        #expect(try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/24"]}"#).status == 201)
        #expect(try await api.call(.PUT, "/v1/allocations/a", "{\"pool\":\"lb\",\"labels\":{\"k\":\"\u{1F3FB}x\"}}").status == 201)
        let found = try await api.call(.GET, "/v1/allocations?label=k%3D%F0%9F%8F%BBx")
        #expect(found.status == 200 && (found["allocations"] as? [[String: Any]])?.count == 1, "\(found.text)")
        #expect(try await api.call(.GET, "/v1/allocations?label=%3Dx").status == 400)
    }

    /// Label values are at most 63 characters as JSON Schema's maxLength counts them (code
    /// points), not 63 bytes.
    @Test func labelValuesAreCountedInCodePoints() async throws {
        let api = try APIFixture()
        let long = String(repeating: "é", count: 63)
        #expect(try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"labels":{"k":"\#(long)"}}"#).status == 201)
        let refused = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"labels":{"k":"\#(long)é"}}"#)
        #expect(refused.status == 422 && refused.text.contains("labels.k"), "\(refused.text)")
    }
}
