import Foundation
import Testing

/// A PUT of a pool or node as it already is writes nothing: `updated_at` keeps saying when it
/// last changed (a sync loop re-sending the same object once moved it every run), and the
/// routes are not derived again. A real change still moves it.
@Suite struct IdempotentPutTests {
    @Test(arguments: [
        ("/v1/pools/lb", #"{"blocks":["192.0.2.0/28"],"labels":{"a":"b"}}"#, #"{"blocks":["192.0.2.0/28"],"labels":{"a":"c"}}"#),
        ("/v1/nodes/n1", #"{"addresses":["100.64.0.11","fd64::11"],"labels":{"a":"b"}}"#, #"{"addresses":["100.64.0.11"],"labels":{"a":"b"}}"#),
    ])
    func theSameObjectAgainChangesNothing(path: String, body: String, changed: String) async throws {
        let api = try APIFixture()
        let created = try await api.call(.PUT, path, body)
        #expect(created.status == 201, "\(created.text)")
        let first = created["updated_at"] as? String
        try await Task.sleep(for: .milliseconds(5))
        let again = try await api.call(.PUT, path, body)
        #expect(again.status == 200 && again["updated_at"] as? String == first, "\(again.text)")
        try await Task.sleep(for: .milliseconds(5))
        let edited = try await api.call(.PUT, path, changed)
        #expect(edited.status == 200 && edited["updated_at"] as? String != first, "\(edited.text)")
    }
}
