import Foundation
@testable import JSON
import Testing

/// The JSON fuzz target's properties (scripts/fuzz/http/FuzzJSONParser.swift) as a test: an
/// accepted document never nests deeper than the bound, and within the bound the bound does not
/// change the answer. Inputs are the committed seeds plus inputs kept from fuzzing runs (crashers,
/// when there are any, go here too).
@Suite struct FuzzRegressionTests {
    static let kept: [String] = [
        String(repeating: "[", count: 8) + String(repeating: "]", count: 8),
        String(repeating: "[", count: 9) + String(repeating: "]", count: 9),
        String(repeating: "{\"a\":", count: 9) + "1" + String(repeating: "}", count: 9),
        #"{"a":[{"b":[{"c":[]}]}]}"#,
        "\"\\ud83d\\ude00\"", "\"\\udc00\"", "-0.0e+1", "1e", "[1,]", "{\"a\"1}", "\u{FEFF}{}",
    ]

    static func seeds() -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/fuzz/http/json-seeds").standardized
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.sorted().compactMap { try? Array(Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    static func depth(_ value: JSONValue) -> Int {
        switch value {
        case .array(let items): 1 + (items.map(depth).max() ?? 0)
        case .object(let members): 1 + (members.map { depth($0.value) }.max() ?? 0)
        default: 0
        }
    }

    @Test func theDepthBoundHoldsAndDecidesNothingElse() {
        let inputs = Self.seeds() + Self.kept.map { Array($0.utf8) }
        #expect(inputs.count >= Self.kept.count + 3)
        for input in inputs {
            var small = JSONParser(bytes: input, maxDepth: 8)
            var large = JSONParser(bytes: input, maxDepth: 10_000)
            let bounded = try? small.parseDocument()
            let unbounded = try? large.parseDocument()
            let text = String(decoding: input, as: UTF8.self).debugDescription
            if let bounded {
                #expect(Self.depth(bounded) <= 8, "\(text)")
                #expect(unbounded != nil, "\(text)")
            }
            if let unbounded, Self.depth(unbounded) <= 8 { #expect(bounded != nil, "\(text)") }
        }
    }
}
