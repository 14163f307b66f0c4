@testable import JSON
import Testing

/// Bulk bodies read item by item: the two framings, the hand-written item scanner, and a large
/// body split into parts that read like one.
@Suite struct BulkItemTests {
    struct Item: Decodable, Equatable {
        let prefix: String
        let nextHops: [String]?
    }

    func items(_ text: String, _ framing: JSONBody.Framing, maxItems: Int = 10) throws -> [Item] {
        var seen: [Item] = []
        try JSONBody.decodeEach(Item.self, from: Array(text.utf8), framing: framing, maxItems: maxItems) { index, item in
            #expect(index == seen.count)
            seen.append(item)
        }
        return seen
    }

    @Test func anArrayAndLinesGiveTheSameItems() throws {
        let expected = [Item(prefix: "10.0.0.1/32", nextHops: nil), Item(prefix: "10.0.0.2/32", nextHops: ["self"])]
        #expect(try items(#" [ {"prefix":"10.0.0.1/32"} , {"prefix":"10.0.0.2/32","next_hops":["self"]} ] "#, .array) == expected)
        #expect(try items("{\"prefix\":\"10.0.0.1/32\"}\r\n\n  \n\u{1E}{\"prefix\":\"10.0.0.2/32\",\"next_hops\":[\"self\"]}", .lines) == expected)
        #expect(try items("[]", .array) == [])
        #expect(try items("\n \n", .lines) == [])
    }

    @Test func errorsNameTheItemOrTheLine() {
        func refusal(_ text: String, _ framing: JSONBody.Framing) -> JSONInputError? {
            do { _ = try items(text, framing, maxItems: 2); return nil } catch { return error as? JSONInputError }
        }
        #expect(refusal(#"[{"prefix":"a"},{"next_hops":[]}]"#, .array) == .shape(at: "[1].prefix", "is required"))
        #expect(refusal(#"[{"prefix":"a","colour":1}]"#, .array) == .unknownFields(["[0].colour"]))
        #expect(refusal(#"{"prefix":"a"}"#, .array)
            == .syntax("invalid JSON: expected a JSON array at byte 0; expected an array of objects (or NDJSON)"))
        #expect(refusal(#"[{"prefix":"a"} {"prefix":"b"}]"#, .array) == .syntax("invalid JSON after item 1: expected ',' or ']' at byte 16"))
        #expect(refusal("{\"prefix\":\"a\"}\n\n{\"prefix\":", .lines) == .syntax("invalid JSON on line 3: unexpected end of input at byte 10 of the line"))
        #expect(refusal(#"[{"prefix":"a"},{"prefix":"b"},{"prefix":"c"}]"#, .array) == .tooLarge("more than 2 items in one request"))
        #expect(refusal("{\"prefix\":\"a\"}\n{\"prefix\":\"b\"}\n{\"prefix\":\"c\"}", .lines) == .tooLarge("more than 2 items in one request"))
    }

    /// Reads items shaped like `Item` by hand, as `POST /v1/routes:batch` does.
    func scan(_ text: String, _ framing: JSONBody.Framing, part: BulkBodyPart? = nil) throws -> [Int: Item] {
        var seen: [Int: Item] = [:]
        try JSONBody.scanEach(Array(text.utf8), framing: framing, maxItems: 1000, maxDepth: 4, part: part) { index, scanner in
            var prefix: String?, hops: [String]?
            try scanner.members { member, value in
                switch member {
                case "prefix": prefix = try value.string(member)
                case "next_hops": hops = try value.stringArray(member)
                case "labels": _ = try value.decode([String: String].self, member)
                default: throw value.unknownField(member)
                }
            }
            guard let prefix else { throw scanner.missingField("prefix") }
            seen[index] = Item(prefix: prefix, nextHops: hops)
        }
        return seen
    }

    @Test func theScannerReadsWhatTheDecoderReads() throws {
        let text = #"[{"prefix":"a"},{"next_hops":["x","y"],"prefix":"b","labels":{}},{ "prefix" : "c" , "next_hops" : [ ] }]"#
        let decoded = try items(text.replacingOccurrences(of: #","labels":{}"#, with: ""), .array)
        #expect(try scan(text, .array) == Dictionary(uniqueKeysWithValues: decoded.enumerated().map { ($0.offset, $0.element) }))
    }

    @Test func theScannerRefusesLikeTheDecoder() {
        func refusal(_ text: String) -> JSONInputError? {
            do { _ = try scan(text, .array); return nil } catch { return error as? JSONInputError }
        }
        #expect(refusal(#"[{"prefix":"a"},"x"]"#) == .shape(at: "[1]", "expected an object, found a string"))
        // Issue #17 item 9: null is refused like the decoder refuses it, optional members too.
        #expect(refusal(#"[{"prefix":null}]"#) == .shape(at: "[0].prefix", "must be a string, not null"))
        #expect(refusal(#"[{"prefix":"a","next_hops":["x",null]}]"#) == .shape(at: "[0].next_hops[1]", "must be a string, not null"))
        #expect(refusal(#"[{"prefix":"a","next_hops":null}]"#) == .shape(at: "[0].next_hops", "must be an array, not null"))
        #expect(refusal(#"[{"prefix":"a","labels":null}]"#) == .shape(at: "[0].labels", "must be an object, not null"))
        #expect(refusal(#"[{"prefix":"a","labels":{"k":null}}]"#) == .shape(at: "[0].labels.k", "must be a string, not null"))
        #expect(refusal(#"[{"prefix":"a","next_hops":["x",1]}]"#) == .shape(at: "[0].next_hops[1]", "expected a string, found a number"))
        #expect(refusal(#"[{"prefix":"a","labels":{"k":1}}]"#) == .shape(at: "[0].labels.k", "expected a string, found a number"))
        #expect(refusal(#"[{"prefix":"a","labels":{"k":"v","x":{}}}]"#)?.kind == .shape)
        #expect(refusal(#"[{"next_hops":[]}]"#) == .shape(at: "[0].prefix", "is required"))
        #expect(refusal(#"[{"prefix":"a","colour":1}]"#) == .unknownFields(["[0].colour"]))
        #expect(refusal(#"[{"prefix":"a","prefix":"b"}]"#) == .syntax("invalid JSON after item 0: duplicate member \"prefix\" at byte 23"))
        #expect(refusal(#"[{"prefix":"a","next_hops":[[[]]]}]"#) == .syntax("invalid JSON after item 0: nesting deeper than 4 at byte 29"))
        #expect(refusal(#"[{"prefix":"a""#) == .syntax("invalid JSON after item 0: unexpected end of input at byte 14"))
    }

    @Test func partsReadLikeOneScan() throws {
        var text = ""
        for k in 0..<500 { text += k % 7 == 3 ? "\n  \r\n" : "{\"prefix\":\"p\(k)\"}\r\n" }
        let whole = try scan(text, .lines)
        #expect(try JSONBody.bulkParts(Array(text.utf8), count: 2, maxItems: 1000) == nil, "a small body is one part")
        for count in [2, 3, 7] {
            let parts = try #require(try JSONBody.bulkParts(Array(text.utf8), count: count, maxItems: 1000, minimumBytes: 1))
            #expect(parts.count == count)
            var joined: [Int: Item] = [:]
            for part in parts { joined.merge(try scan(text, .lines, part: part)) { a, _ in a } }
            #expect(joined == whole)
        }
        // An error in the second part names the line and item of the whole body.
        let broken = text + "{\"prefix\":\"last\",}\n"
        let parts = try #require(try JSONBody.bulkParts(Array(broken.utf8), count: 2, maxItems: 1000, minimumBytes: 1))
        let line = broken.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).count - 1  // ("\r\n" is one Character)
        #expect(throws: JSONInputError.syntax("invalid JSON on line \(line): expected a member name at byte 17 of the line")) {
            _ = try scan(broken, .lines, part: parts[1])
        }
        #expect(throws: JSONInputError.tooLarge("more than 10 items in one request")) {
            _ = try JSONBody.bulkParts(Array(text.utf8), count: 2, maxItems: 10, minimumBytes: 1)
        }
    }
}
