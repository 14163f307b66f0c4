import Foundation
import JSON
import Testing

/// The one timestamp format and the one encoder configuration.
@Suite struct JSONTimeAndCodingTests {
    /// The hand-written formatter agrees with Foundation's ISO 8601 formatter everywhere.
    @Test func formatsLikeISO8601DateFormatter() {
        let reference = ISO8601DateFormatter()
        reference.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 1, 999, 1000, -1, 951_782_400_000, 4_102_444_800_000, 1_796_083_199_999, 1_709_164_800_000]
        for _ in 0..<20_000 { samples.append(Int64.random(in: 0...4_102_444_800_000, using: &rng)) }
        for ms in samples {
            let expected = reference.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(JSONTime.format(milliseconds: ms) == expected, "\(ms)")
            if JSONTime.format(milliseconds: ms) != expected { break }
        }
    }

    @Test func parsesRFC3339WithOrWithoutFractionAndOffset() {
        #expect(JSONTime.parse("2026-11-26T22:00:00Z") == 1_795_730_400_000)
        #expect(JSONTime.parse("2026-11-26T22:00:00.250Z") == 1_795_730_400_250)
        #expect(JSONTime.parse("2026-11-26T23:00:00.250+01:00") == 1_795_730_400_250)
        for ms: Int64 in [0, 1, 999, 1_795_730_400_250] { #expect(JSONTime.parse(JSONTime.format(milliseconds: ms)) == ms) }
        for text in ["", "yesterday", "2026-11-26", "2026-11-26 22:00:00Z", "1795730400000"] { #expect(JSONTime.parse(text) == nil, "\(text)") }
    }

    @Test func encodesSnakeCaseSortedWithPlainSlashes() throws {
        struct Body: Encodable { let peerASN: Int; let holdTime: Int; let path: String }
        let text = String(decoding: try JSONCoding.encode(Body(peerASN: 1, holdTime: 90, path: "/v1/peers")), as: UTF8.self)
        #expect(text == #"{"hold_time":90,"path":"/v1/peers","peer_asn":1}"#)
    }
}
