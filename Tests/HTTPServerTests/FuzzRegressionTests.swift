import Foundation
@testable import HTTPServer
import Testing

/// The fuzz target's property (scripts/fuzz/http/FuzzHTTPParser.swift) as a test: the same bytes
/// split differently give the same events, or the same error. Inputs are the committed seeds plus
/// inputs kept from fuzzing runs (crashers, when there are any, go here too).
@Suite("Parser split invariance (fuzz regressions)")
struct FuzzRegressionTests {
    static let limits = HTTPParserLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 512)

    static func outcome(_ bytes: [UInt8], step: Int) -> (events: [String], error: Int?) {
        let result = parse(bytes, step: step, limits: limits)
        return (result.requests.map { "\($0.head.method) \($0.head.target) \($0.head.framing) \($0.body)" }, result.error?.status.code)
    }

    static let kept: [String] = [
        "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        "\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n",
        "GET /" + String(repeating: "b", count: 70) + " HTTP/1.1\r\n\r\n",
        "GET /" + String(repeating: "b", count: 62) + "\r",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 600\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n201\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + String(repeating: "T: v\r\n", count: 50) + "\r\n",
    ]

    static func seeds() -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/fuzz/http/seeds").standardized
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.sorted().compactMap { try? Array(Data(contentsOf: dir.appendingPathComponent($0)).dropFirst()) }
    }

    @Test func seedsAndKeptInputsParseTheSameInEverySplit() {
        let inputs = Self.seeds() + Self.kept.map { Array($0.utf8) }
        #expect(inputs.count >= Self.kept.count + 5)
        for input in inputs {
            let whole = Self.outcome(input, step: 1 << 30)
            for step in [1, 2, 3, 7, 16] {
                let other = Self.outcome(input, step: step)
                if whole.error == nil || other.error == nil {
                    #expect(other.events == whole.events && other.error == whole.error, "\(String(decoding: input, as: UTF8.self).debugDescription) step \(step)")
                } else {
                    let n = min(whole.events.count, other.events.count)
                    #expect(Array(other.events.prefix(n)) == Array(whole.events.prefix(n)))
                }
            }
        }
    }
}
