import Foundation
@testable import JSON
import Testing

/// One document decoded strictly: RFC 8259 syntax, the depth and size bounds, and errors that
/// say what kind of problem they are and name the field.
@Suite struct StrictDecoderTests {
    struct Peer: Decodable {
        let name: String
        let peerASN: UInt32
        let bfd: BFD?
        let families: [String]?

        struct BFD: Decodable {
            let minTx: Int
        }
    }

    func refusal(_ text: String, maxBytes: Int = 1024, maxDepth: Int = 8) -> JSONInputError? {
        do {
            _ = try JSONBody.decode(Peer.self, from: Array(text.utf8), maxBytes: maxBytes, maxDepth: maxDepth)
            return nil
        } catch {
            return error as? JSONInputError
        }
    }

    @Test func escapesAndNumbers() throws {
        struct Sample: Decodable { let s: String; let d: Double; let i: Int; let b: Bool; let n: Int? }
        let v = try JSONBody.decode(Sample.self, from: Array(#"{"s":"a\"b\\c\u00e9\ud83d\ude00\n\/","d":-1.5e3,"i":-42,"b":true}"#.utf8))
        #expect(v.s == "a\"b\\cé😀\n/")
        #expect(v.d == -1500)
        #expect(v.i == -42)
        #expect(v.b)
        #expect(v.n == nil)
    }

    @Test func keysAreSnakeCaseAsJSONEncoderWritesThem() {
        #expect(StrictJSON.snakeCase("peerASN") == "peer_asn")
        #expect(StrictJSON.snakeCase("myURLPath") == "my_url_path")
        #expect(StrictJSON.snakeCase("holdTime") == "hold_time")
        #expect(StrictJSON.snakeCase("name") == "name")
    }

    @Test func syntaxErrorsSayWhere() {
        let cases: [(String, String)] = [
            (#"{"name": }"#, "invalid JSON: invalid value at byte 9"),
            ("[1,]", "invalid JSON: invalid value at byte 3"),
            (#"{"a":1,"a":2}"#, "invalid JSON: duplicate member \"a\" at byte 10"),
            ("01", "invalid JSON: unexpected data after the JSON value at byte 1"),
            (#""\ud800""#, "invalid JSON: lone surrogate at byte 7"),
            ("\"a\u{1}\"", "invalid JSON: control character in string at byte 2"),
            (#""\u12G4""#, "invalid JSON: invalid \\u escape at byte 5"),
            (String(repeating: "[", count: 9) + String(repeating: "]", count: 9), "invalid JSON: nesting deeper than 8 at byte 8"),
        ]
        for (text, message) in cases {
            let error = refusal(text)
            #expect(error == JSONInputError(.syntax, message: message), "\(text)")
        }
        #expect(refusal("[" + String(repeating: "1,", count: 600) + "1]", maxBytes: 1000) == JSONInputError(.tooLarge, message: "JSON body larger than 1000 bytes"))
    }

    @Test func shapeErrorsNameTheField() {
        let cases: [(String, String, String)] = [
            (#"{"name":"a"}"#, "peer_asn", "is required"),
            (#"{"name":"a","peer_asn":null}"#, "peer_asn", "must be an integer, not null"),
            (#"{"name":"a","peer_asn":"1"}"#, "peer_asn", "expected an integer, found a string"),
            (#"{"name":"a","peer_asn":4294967296}"#, "peer_asn", "4294967296 is not an integer in 0...4294967295"),
            (#"{"name":"a","peer_asn":1,"bfd":{"min_tx":true}}"#, "bfd.min_tx", "expected an integer, found a boolean"),
            (#"{"name":"a","peer_asn":1,"families":["x",2]}"#, "families[1]", "expected a string, found a number"),
            ("[]", "$", "expected an object, found an array"),
        ]
        for (text, path, message) in cases {
            let error = refusal(text)
            #expect(error?.kind == .shape && error?.fields == [JSONInputError.Field(path: path, message: message)], "\(text): \(String(describing: error))")
            #expect(error?.message == "The JSON body does not match the expected shape.")
        }
    }

    /// Issue #17 item 9: an explicit null is refused where the contract does not allow it, for
    /// optional members too, naming the member and the type it wants; a `JSONNullable` member
    /// reads it.
    @Test func nullIsRefusedNamingTheTypeUnlessTheMemberReadsIt() throws {
        enum Colour: String, Decodable { case red }
        struct Sample: Decodable {
            let s: String?, i: Int?, b: Bool?, d: Double?, a: [Int]?, o: [String: String]?, nested: Nested?, colour: Colour?
            let maybe: JSONNullable<Bool>?
            struct Nested: Decodable { let x: Int? }
        }
        let cases: [(String, String, String)] = [
            (#"{"s":null}"#, "s", "must be a string, not null"),
            (#"{"i":null}"#, "i", "must be an integer, not null"),
            (#"{"b":null}"#, "b", "must be a boolean, not null"),
            (#"{"d":null}"#, "d", "must be a number, not null"),
            (#"{"a":null}"#, "a", "must be an array, not null"),
            (#"{"a":[1,null]}"#, "a[1]", "must be an integer, not null"),
            (#"{"o":null}"#, "o", "must be an object, not null"),
            (#"{"o":{"k":null}}"#, "o.k", "must be a string, not null"),
            (#"{"nested":null}"#, "nested", "must be an object, not null"),
            (#"{"nested":{"x":null}}"#, "nested.x", "must be an integer, not null"),
            (#"{"colour":null}"#, "colour", "must be a string, not null"),
            (#"{"maybe":"yes"}"#, "maybe", "expected a boolean, found a string"),
        ]
        for (text, path, message) in cases {
            do {
                _ = try JSONBody.decode(Sample.self, from: Array(text.utf8))
                Issue.record("\(text) was accepted")
            } catch let error as JSONInputError {
                #expect(error.kind == .shape && error.fields == [JSONInputError.Field(path: path, message: message)], "\(text): \(error)")
            }
        }
        #expect(try JSONBody.decode(Sample.self, from: Array(#"{"maybe":null}"#.utf8)).maybe == .null)
        #expect(try JSONBody.decode(Sample.self, from: Array(#"{"maybe":true}"#.utf8)).maybe?.wrapped == true)
        #expect(try JSONBody.decode(Sample.self, from: Array("{}".utf8)).maybe == nil)
    }

    /// JSON Schema 2020-12 counts a number with a zero fraction as an integer (issue #17 item 9:
    /// `60.0` was refused); a real fraction, or a whole number a double cannot hold exactly, is not.
    @Test func wholeNumbersWithAFractionOrAnExponentAreIntegers() throws {
        for text in ["65001.0", "6.5001e4", "65001E0", "6500100e-2"] {
            let peer = try JSONBody.decode(Peer.self, from: Array(#"{"name":"a","peer_asn":\#(text)}"#.utf8))
            #expect(peer.peerASN == 65001, "\(text)")
        }
        #expect(refusal(#"{"name":"a","peer_asn":65001.5}"#)?.fields.first?.message.contains("is not an integer") == true)
        #expect(refusal(#"{"name":"a","peer_asn":1e300}"#)?.fields.first?.message.contains("is not an integer") == true)
    }

    @Test func everyUnknownMemberIsNamed() {
        let error = refusal(#"{"name":"a","peer_asn":1,"bfd":{"min_tx":1,"max":2},"colour":"red"}"#)
        #expect(error?.kind == .unknownField)
        #expect(error?.fields.map(\.path) == ["bfd.max", "colour"])
        #expect(error?.description == "bfd.max: unknown field; colour: unknown field")
    }

    @Test func errorsOfATypesOwnDecoderPassThrough() {
        struct Odd: Decodable {
            struct Refusal: Error {}
            init(from decoder: any Decoder) throws { throw Refusal() }
        }
        #expect(throws: Odd.Refusal.self) { _ = try JSONBody.decode(Odd.self, from: Array("{}".utf8)) }
    }
}
