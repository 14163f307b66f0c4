import JSON
import Testing

@Suite struct JSONObjectWriterTests {
    struct Stored: Encodable { let alpha: Int; let beta: String }
    struct Whole: Encodable { let alpha: Int; let beta: String; let gamma: Double; let zeta: String }

    /// Adding members to an encoded object gives the bytes `JSONCoding` writes for the whole.
    @Test(arguments: [0.25, 3, 1234.5, 0] as [Double])
    func addedMembersEqualEncodingTheWhole(gamma: Double) throws {
        let zeta = "a \"quoted\" / tab\t and \u{1} line\nend"
        var writer = try #require(JSONObjectWriter(extending: try JSONCoding.encode(Stored(alpha: 1, beta: "b"))))
        writer.add("gamma", gamma)
        writer.add("zeta", zeta)
        #expect(writer.encoded == (try JSONCoding.encode(Whole(alpha: 1, beta: "b", gamma: gamma, zeta: zeta))))
    }

    @Test func anEmptyObjectAndNotAnObject() throws {
        var writer = try #require(JSONObjectWriter(extending: Array("{}".utf8)))
        writer.add("a", "x")
        #expect(String(decoding: writer.encoded, as: UTF8.self) == #"{"a":"x"}"#)
        #expect(JSONObjectWriter(extending: Array("[1]".utf8)) == nil)
    }
}
