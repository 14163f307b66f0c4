// Hand-written decoding of one hot item shape in a bulk body (a million static routes in one
// POST): members are read straight from the bytes, with no JSONValue tree and no Decodable
// machinery per item. The rules are those of the strict decoder in JSONBody.swift: the same
// framing (array or NDJSON), duplicate and unknown fields refused by name, errors naming the item
// (`[41].prefix`). Values of any other shape (nested objects) still go through that decoder.

extension JSONBody {
    /// Reads a bulk body item by item like `decodeEach`, but hands each item to `each` as a
    /// scanner over its bytes, for a decoder written by hand. `each` must read the item whole
    /// (`JSONItemScanner.members`). More than `maxItems` → `tooLarge`.
    /// With `part` (from `bulkParts`), only that part of a `.lines` body is read; indexes and
    /// line numbers are those of the whole body.
    public static func scanEach(_ bytes: [UInt8], framing: Framing, maxItems: Int, maxDepth: Int = 32, part: BulkBodyPart? = nil,
                                _ each: (Int, inout JSONItemScanner) throws -> Void) throws {
        try forEachItem(bytes, framing: framing, maxItems: maxItems, maxDepth: maxDepth, part: part) { index, parser, depth in
            var scanner = JSONItemScanner(parser: parser, index: index, depth: depth)
            try each(index, &scanner)
            parser = scanner.parser
        }
    }
}

/// One item of a bulk body, read in place. `members` walks the item's object; inside it, each
/// member's value is read with exactly one of the value methods (`string`, `stringArray`,
/// `decode`, …) or refused with `unknownField`. Field errors are `JSONInputError`s (`shape`,
/// `unknownField`) naming the item and member; syntax errors are reported by the framing with the
/// item or line.
public struct JSONItemScanner {
    var parser: JSONParser
    /// The item's index in the body.
    public let index: Int
    /// Nesting depth of the item itself (1 in an array, 0 on an NDJSON line).
    let depth: Int

    init(parser: JSONParser, index: Int, depth: Int) {
        self.parser = parser
        self.index = index
        self.depth = depth
    }

    /// `[41].prefix`: how field errors name a member of this item.
    public func field(_ name: String) -> String { "[\(index)].\(name)" }

    private func shapeError(_ name: String, _ message: String) -> JSONInputError {
        JSONInputError.shape(at: field(name), message)
    }

    /// Refuses member `name` (call it for a member the item shape does not have).
    public func unknownField(_ name: String) -> JSONInputError {
        JSONInputError.unknownFields([field(name)])
    }

    /// Refuses the item for lacking member `name`.
    public func missingField(_ name: String) -> JSONInputError { shapeError(name, "is required") }

    /// Calls `member(name, &self)` for each member of the item, which must be an object; `member`
    /// reads that member's value. A name given twice is refused before its value is read.
    public mutating func members(_ member: (String, inout JSONItemScanner) throws -> Void) throws {
        guard try parser.peek() == UInt8(ascii: "{") else {
            throw JSONInputError.shape(at: "[\(index)]", "expected an object, found \(try peekKind())")
        }
        if try parser.openContainer(depth: depth) { return }
        // Items have a handful of members: a list beats a set.
        var seen: [String] = []
        repeat {
            let name = try parser.memberName { name in
                guard !seen.contains(name) else { return false }
                seen.append(name)
                return true
            }
            let before = parser.i
            try member(name, &self)
            // A callback that read nothing did not know the member: refused, never skipped.
            if parser.i == before { throw unknownField(name) }
        } while try !parser.readCommaOrClose(UInt8(ascii: "}"))
    }

    /// The kind of the value ahead ("a number", …) for an error message, reading past it.
    private mutating func peekKind() throws -> String {
        try parser.parseValue(depth: depth + 1).kind
    }

    /// True (and the value read) when the value ahead is `null`.
    private mutating func takeNull() throws -> Bool {
        guard parser.i < parser.end, parser.bytes[parser.i] == UInt8(ascii: "n") else { return false }
        _ = try parser.parseValue(depth: depth + 1)
        return true
    }

    /// The value of member `name`, which must be a string (`null` is refused like any other type).
    public mutating func string(_ name: String) throws -> String {
        if try takeNull() { throw shapeError(name, "must be a string, not null") }
        guard try parser.peek() == UInt8(ascii: "\"") else { throw shapeError(name, "expected a string, found \(try peekKind())") }
        return try parser.parseString()
    }

    /// The value of member `name`, which must be an array of strings.
    public mutating func stringArray(_ name: String) throws -> [String] {
        if try takeNull() { throw shapeError(name, "must be an array, not null") }
        guard try parser.peek() == UInt8(ascii: "[") else { throw shapeError(name, "expected an array, found \(try peekKind())") }
        var strings: [String] = []
        if try parser.openContainer(depth: depth + 1) { return strings }
        repeat {
            parser.skipWhitespace()
            guard try parser.peek() == UInt8(ascii: "\"") else {
                let kind = try parser.parseValue(depth: depth + 2).kind
                throw shapeError("\(name)[\(strings.count)]", kind == "null" ? "must be a string, not null" : "expected a string, found \(kind)")
            }
            strings.append(try parser.parseString())
        } while try !parser.readCommaOrClose(UInt8(ascii: "]"))
        return strings
    }

    /// The value of member `name` decoded strictly as `T` (snake_case keys, unknown fields
    /// refused as `[41].name.field`; `null` refused unless `T` reads it): for members of a rarer,
    /// nested shape.
    public mutating func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let value = try parser.parseValue(depth: depth + 1)
        if case .null = value, !(type is any JSONNullReading.Type) { throw shapeError(name, Scalars.nullMessage(type)) }
        return try StrictJSON.decode(T.self, from: value, codingPath: [IndexKey(index), NameKey(stringValue: name)])
    }
}
