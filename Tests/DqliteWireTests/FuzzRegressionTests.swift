import TestSupport
import Foundation
import Testing
@testable import DqliteWire

/// Inputs found by `scripts/fuzz/dqlite.sh` or made by hand around the limits it explores, kept
/// so that they stay fixed. Each is checked as the fuzz target checks it: read as a stream of
/// framed messages, each decoded as a response and as a request; nothing traps, and whatever
/// decodes re-encodes to bytes that are a fixed point of decode → encode.
let dqliteFuzzRegressions: [(name: String, hex: String)] = [
    ("empty", ""),
    ("header only, no body", "00000000 07 00 0000"),
    ("header claiming 32 GiB", "ffffffff 09 00 0000"),
    ("ROWS with zero columns and no marker", "01000000 07 00 0000 0000000000000000"),
    ("ROWS with a half-word left for the marker", "02000000 07 00 0000 0100000000000000 6100000000000000"),
    ("FILES with a size of 2^64 - 1", "03000000 09 00 0000 0100000000000000 6100000000000000 ffffffffffffffff"),
    ("row header nibbles 0xe and 0xf (marker-like, not a marker)", "04000000 07 00 0000 0200000000000000 6100000000000000 6200000000000000 feeeeeeeeeeeeeee"),
    ("EXEC, schema 0, 255 parameters announced in one word", "02000000 05 00 0000 0000000000000000 ff01010101010101"),
    ("EXEC, schema 0, zero parameters then padding", "02000000 05 00 0000 0000000000000000 0000000000000000"),
    ("ASSIGN with role 3", "02000000 0d 00 0000 0100000000000000 0300000000000000"),
    ("two messages, the second cut short", "01000000 08 00 0000 0000000000000000 02000000 02 00 0000 0000"),
]

@Suite struct FuzzRegressionTests {
    /// The fuzz target's checks, recording an issue where it would trap.
    static func check(_ bytes: [UInt8], _ name: String) {
        var offset = 0
        while offset < bytes.count {
            guard case .message(_, let length)? = try? DqliteFraming.nextMessage(in: bytes[offset...], maximumBodyLength: 1 << 16) else { break }
            let message = bytes[offset..<offset + length]
            if let response = try? DqliteResponse.decode(message) {
                let again = try? response.encoded()
                #expect(again != nil && (try? DqliteResponse.decode(again!).encoded()) == again, "\(name): \(response)")
            }
            if let request = try? DqliteRequest.decode(message) {
                let again = try? request.encoded()
                #expect(again != nil && (try? DqliteRequest.decode(again!).encoded()) == again, "\(name): \(request)")
            }
            offset += length
        }
        _ = try? DqliteResponse.decode(bytes)
        _ = try? DqliteRequest.decode(bytes)
    }

    @Test(arguments: dqliteFuzzRegressions.map(\.name))
    func neverTraps(_ name: String) {
        Self.check(hex(dqliteFuzzRegressions.first { $0.name == name }!.hex), name)
    }

    /// The fuzzer's seeds (scripts/fuzz/dqlite/seeds.txt) are whole, valid messages: each line
    /// frames completely and every message in it decodes as a response or a request.
    @Test func seedsAreValidMessages() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let seeds = try String(contentsOf: root.appendingPathComponent("scripts/fuzz/dqlite/seeds.txt"), encoding: .utf8)
        var count = 0
        for line in seeds.split(separator: "\n") where !line.hasPrefix("#") {
            let bytes = hex(String(line))
            var offset = 0
            while offset < bytes.count {
                guard case .message(_, let length) = try DqliteFraming.nextMessage(in: bytes[offset...]) else {
                    Issue.record("seed \(line) ends inside a message"); break
                }
                let message = bytes[offset..<offset + length]
                #expect((try? DqliteResponse.decode(message)) != nil || (try? DqliteRequest.decode(message)) != nil, "seed \(line)")
                offset += length
                count += 1
            }
            Self.check(bytes, String(line))
        }
        #expect(count >= 13)
    }
}
