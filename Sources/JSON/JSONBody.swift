internal import Synchronization

// Strict JSON bodies: size bounded, nesting depth bounded, duplicate and unknown members refused
// by name, snake_case keys. Foundation's JSONDecoder ignores unknown keys and has no depth limit,
// so bodies are parsed here into a small tree and decoded by a Decoder that records which keys
// the type read. Every refusal is a `JSONInputError`; HTTPServer answers it (400, 413).

/// Reads JSON bodies strictly: one document (`decode`), or the items of a bulk body one at a time
/// (`decodeEach`, `scanEach`), a large one split for several cores (`bulkParts`).
public enum JSONBody {
    /// How the items of a bulk body are laid out.
    public enum Framing: Sendable, Hashable {
        /// One JSON array; its elements are the items.
        case array
        /// One value per line: NDJSON, JSON Lines, RFC 7464 JSON text sequences (an RS before
        /// each record); blank lines are skipped.
        case lines
    }

    /// Decodes `bytes` as one `T` (snake_case keys). Throws `JSONInputError`: `tooLarge` over
    /// `maxBytes`, `syntax` for anything RFC 8259 refuses or nested deeper than `maxDepth`,
    /// `shape` and `unknownField` naming the fields. (What a type's own `init(from:)` throws
    /// besides `DecodingError` passes through.)
    public static func decode<T: Decodable>(_ type: T.Type = T.self, from bytes: [UInt8], maxBytes: Int = 1024 * 1024, maxDepth: Int = 32) throws -> T {
        guard bytes.count <= maxBytes else {
            throw JSONInputError.tooLarge("JSON body larger than \(maxBytes) bytes")
        }
        let value: JSONValue
        do {
            var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
            value = try parser.parseDocument()
        } catch {
            throw JSONInputError.syntax("invalid JSON: \(error.message) at byte \(error.offset)")
        }
        return try StrictJSON.decode(T.self, from: value)
    }

    /// Decodes a bulk body item by item, without building one tree for all of it. Each item is
    /// decoded strictly as `T` and handed to `each` with its index; field errors name the item,
    /// e.g. `[41].prefix`. More than `maxItems` → `tooLarge`.
    public static func decodeEach<T: Decodable>(_ type: T.Type = T.self, from bytes: [UInt8], framing: Framing, maxItems: Int, maxDepth: Int = 32,
                                                _ each: (Int, T) throws -> Void) throws {
        try forEachItem(bytes, framing: framing, maxItems: maxItems, maxDepth: maxDepth) { index, parser, depth in
            let value = try parser.parseValue(depth: depth)
            try each(index, StrictJSON.decode(T.self, from: value, codingPath: [IndexKey(index)]))
        }
    }

    /// The framing of a bulk body: for each item (an element of a top-level array, or one
    /// non-blank line), `item(index, parser, depth)` reads exactly one JSON value from `parser`,
    /// which stands at its first byte; `depth` is the value's nesting depth. A syntax error
    /// names the item (array) or the line; more than `maxItems` → `tooLarge`.
    static func forEachItem(_ body: [UInt8], framing: Framing, maxItems: Int, maxDepth: Int, part: BulkBodyPart? = nil,
                            _ item: (Int, inout JSONParser, Int) throws -> Void) throws {
        var index = part?.firstIndex ?? 0
        switch framing {
        case .array:
            var parser = JSONParser(bytes: body, maxDepth: maxDepth)
            do {
                try parser.openArray()
            } catch {
                throw JSONInputError.syntax("invalid JSON: \(error.message) at byte \(error.offset); expected an array of objects (or NDJSON)")
            }
            while true {
                do {
                    guard try parser.nextElementStart(isFirst: index == 0) else { break }
                    guard index < maxItems else { throw tooManyItems(maxItems) }
                    try item(index, &parser, 1)
                } catch let error as JSONSyntaxError {
                    throw JSONInputError.syntax("invalid JSON after item \(index): \(error.message) at byte \(error.offset)")
                }
                index += 1
            }
        case .lines:
            // RFC 7464 JSON text sequences start each record with RS (0x1E); NDJSON does not.
            var start = part?.bytes.lowerBound ?? 0
            var line = part?.firstLine ?? 1
            let count = part?.bytes.upperBound ?? body.count
            while start < count {
                var end = start
                while end < count, body[end] != 0x0A { end += 1 }
                let content = lineContent(body, start..<end)
                if !isBlank(body, content) {
                    guard index < maxItems else { throw tooManyItems(maxItems) }
                    // Parsed in place: the line is not copied out of the body.
                    var parser = JSONParser(bytes: body, range: content, maxDepth: maxDepth)
                    do {
                        parser.skipWhitespace()
                        try item(index, &parser, 0)
                        parser.skipWhitespace()
                        guard parser.i == parser.end else { throw parser.fail("unexpected data after the JSON value") }
                    } catch let error as JSONSyntaxError {
                        throw JSONInputError.syntax("invalid JSON on line \(line): \(error.message) at byte \(error.offset - content.lowerBound) of the line")
                    }
                    index += 1
                }
                start = end + 1
                line += 1
            }
        }
    }

    /// Splits a large `.lines` body into `count` parts at line boundaries, each knowing the line
    /// number and item index it starts with, so that the parts can be scanned on several cores
    /// (`scanEach(_:framing:maxItems:maxDepth:part:_:)`) with errors naming the same lines and
    /// items as one scan. One part (nil) for a body smaller than `minimumBytes`. More than
    /// `maxItems` items → `tooLarge`.
    public static func bulkParts(_ body: [UInt8], count: Int, maxItems: Int, minimumBytes: Int = 1 << 20) throws(JSONInputError) -> [BulkBodyPart]? {
        guard count > 1, body.count >= minimumBytes else { return nil }
        var parts: [BulkBodyPart] = []
        var start = 0, line = 1, index = 0
        for k in 1...count {
            var end = body.count
            if k < count {
                end = max(start, body.count * k / count)
                while end < body.count, body[end] != 0x0A { end += 1 }
                end = min(end + 1, body.count)  // after the newline
            }
            // Lines and items in this part, by the same rules as the scan.
            var lines = 0, items = 0, lineStart = start
            for position in start..<end where body[position] == 0x0A || position == end - 1 {
                let lineEnd = body[position] == 0x0A ? position : position + 1
                if !isBlank(body, lineContent(body, lineStart..<lineEnd)) { items += 1 }
                if body[position] == 0x0A { lines += 1 }
                lineStart = position + 1
            }
            parts.append(BulkBodyPart(bytes: start..<end, firstLine: line, firstIndex: index))
            (start, line, index) = (end, line + lines, index + items)
        }
        guard index <= maxItems else { throw tooManyItems(maxItems) }
        return parts
    }

    static func tooManyItems(_ maxItems: Int) -> JSONInputError {
        JSONInputError.tooLarge("more than \(maxItems) items in one request")
    }

    /// A line (without its newline) less an RS prefix and a CR suffix: where its value is.
    static func lineContent(_ body: [UInt8], _ line: Range<Int>) -> Range<Int> {
        var lower = line.lowerBound, upper = line.upperBound
        if lower < upper, body[lower] == 0x1E { lower += 1 }
        if lower < upper, body[upper - 1] == 0x0D { upper -= 1 }
        return lower..<upper
    }

    /// True when a line's content is nothing but spaces and tabs.
    static func isBlank(_ body: [UInt8], _ content: Range<Int>) -> Bool {
        for position in content where body[position] != 0x20 && body[position] != 0x09 { return false }
        return true
    }
}

/// A run of whole lines of a `.lines` body, for scanning a large body on several cores.
public struct BulkBodyPart: Sendable {
    /// Byte offsets of the part in the body (it ends after a newline, or at the end).
    public let bytes: Range<Int>
    /// The number of the part's first line, counted from 1.
    public let firstLine: Int
    /// The index of the part's first item in the whole body.
    public let firstIndex: Int
}

// MARK: - Strict decoder

enum StrictJSON {
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, codingPath: [any CodingKey] = []) throws -> T {
        let tracker = KeyTracker()
        let decoded: T
        do {
            decoded = try T(from: TreeDecoder(value: value, codingPath: codingPath, tracker: tracker))
        } catch let error as DecodingError {
            throw JSONInputError.shape(fieldError(error))
        }
        let unknown = tracker.unknownFields()
        if !unknown.isEmpty {
            throw JSONInputError.unknownFields(unknown)
        }
        return decoded
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + snakeCase(key.stringValue) }
        }
        return out.isEmpty ? "$" : out
    }

    static func fieldError(_ error: DecodingError) -> JSONInputError.Field {
        switch error {
        case .keyNotFound(let key, let context):
            return JSONInputError.Field(path: path(context.codingPath + [key]), message: "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return JSONInputError.Field(path: path(context.codingPath), message: context.debugDescription)
        @unknown default:
            return JSONInputError.Field(path: "$", message: "\(error)")
        }
    }

    /// The JSONEncoder `.convertToSnakeCase` rule: `peerASN` → `peer_asn`, `holdTime` → `hold_time`.
    /// Called for every key of every object decoded (a million per bulk request), so keys that
    /// are already lower case return at once and the others are converted once and remembered.
    static func snakeCase(_ key: String) -> String {
        var plain = true
        for byte in key.utf8 where (byte >= 0x41 && byte <= 0x5A) || byte >= 0x80 {
            plain = false
            break
        }
        if plain { return key }
        if let known = snakeCaseCache.withLock({ $0[key] }) { return known }
        let converted = convertToSnakeCase(key)
        snakeCaseCache.withLock { cache in if cache.count < 1024 { cache[key] = converted } }
        return converted
    }

    private static let snakeCaseCache = Mutex<[String: String]>([:])

    private static func convertToSnakeCase(_ key: String) -> String {
        let chars = Array(key)
        guard chars.contains(where: \.isUppercase) else { return key }
        var out = ""
        for (index, c) in chars.enumerated() {
            if c.isUppercase && index > 0 {
                let previous = chars[index - 1]
                let nextIsLower = index + 1 < chars.count && chars[index + 1].isLowercase
                if !previous.isUppercase || nextIsLower { if previous != "_" { out.append("_") } }
            }
            out.append(contentsOf: c.lowercased())
        }
        return out
    }
}

/// Remembers, for each JSON object a keyed container opened, which members were read.
final class KeyTracker {
    /// Keyed by JSON path, so two containers over the same object share one record.
    private var objects: [String: (keys: [String], used: Set<String>)] = [:]

    func register(path: String, keys: [String]) -> String {
        if objects[path] == nil { objects[path] = (keys, []) }
        return path
    }

    func use(_ path: String, _ key: String) { objects[path]?.used.insert(key) }

    func unknownFields() -> [String] {
        var out: [String] = []
        for (path, object) in objects {
            for key in object.keys where !object.used.contains(key) {
                out.append(path == "$" ? key : "\(path).\(key)")
            }
        }
        return out.sorted()
    }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String
    init(_ index: Int) { intValue = index; stringValue = "\(index)" }
    init?(intValue: Int) { self.init(intValue) }
    init?(stringValue: String) { return nil }
}

struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

struct TreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let tracker: KeyTracker
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected an object, found \(value.kind)"))
        }
        let index = tracker.register(path: StrictJSON.path(codingPath), keys: members.map(\.key))
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath, tracker: tracker, trackerIndex: index))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected an array, found \(value.kind)"))
        }
        return UnkeyedContainer(items: items, codingPath: codingPath, tracker: tracker)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleContainer(value: value, codingPath: codingPath, tracker: tracker)
    }
}

/// Scalar conversions shared by all containers.
enum Scalars {
    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey], _ expected: String) -> DecodingError {
        DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(expected), found \(value.kind)"))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ path: [any CodingKey], _ tracker: KeyTracker) throws -> T {
        switch type {
        case is String.Type:
            guard case .string(let s) = value else { throw mismatch(type, value, path, "a string") }
            return s as! T
        case is Bool.Type:
            guard case .bool(let b) = value else { throw mismatch(type, value, path, "a boolean") }
            return b as! T
        case is Double.Type:
            guard case .number(let n) = value, let d = Double(n) else { throw mismatch(type, value, path, "a number") }
            return d as! T
        case is Float.Type:
            guard case .number(let n) = value, let d = Float(n) else { throw mismatch(type, value, path, "a number") }
            return d as! T
        case is Int.Type: return try integer(Int.self, value, path) as! T
        case is Int8.Type: return try integer(Int8.self, value, path) as! T
        case is Int16.Type: return try integer(Int16.self, value, path) as! T
        case is Int32.Type: return try integer(Int32.self, value, path) as! T
        case is Int64.Type: return try integer(Int64.self, value, path) as! T
        case is UInt.Type: return try integer(UInt.self, value, path) as! T
        case is UInt8.Type: return try integer(UInt8.self, value, path) as! T
        case is UInt16.Type: return try integer(UInt16.self, value, path) as! T
        case is UInt32.Type: return try integer(UInt32.self, value, path) as! T
        case is UInt64.Type: return try integer(UInt64.self, value, path) as! T
        default:
            return try T(from: TreeDecoder(value: value, codingPath: path, tracker: tracker))
        }
    }

    static func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, _ path: [any CodingKey]) throws -> I {
        guard case .number(let n) = value else { throw mismatch(type, value, path, "an integer") }
        guard let v = I(n) ?? wholeNumber(n).flatMap({ I(exactly: $0) }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(n) is not an integer in \(I.min)...\(I.max)"))
        }
        return v
    }
}

extension Scalars {
    /// Throws `valueNotFound` for a JSON `null` where `type` does not read null itself: "must be
    /// an integer, not null".
    static func refuseNull<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ path: [any CodingKey]) throws {
        guard case .null = value, !(type is any JSONNullReading.Type) else { return }
        throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: nullMessage(type)))
    }

    /// "must be a string, not null": what `type` reads (found by letting it start decoding).
    static func nullMessage<T: Decodable>(_ type: T.Type) -> String {
        guard let kind = KindProbe.kind(of: type) else { return "must not be null" }
        return "must be \(kind), not null"
    }

    /// The JSON `type` is read from in words, for the scalars this decoder knows.
    static func scalarKind(_ type: Any.Type) -> String? {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Double.Type, is Float.Type: "a number"
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
             is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type: "an integer"
        default: nil
        }
    }

    /// A number written with a fraction or an exponent that is still a whole number (`60.0`,
    /// `6e1`): JSON Schema 2020-12 counts it as an integer (§6.1.1, "a number with a zero
    /// fractional part"), so a client that writes its integers that way is not refused. Only
    /// where a double holds it exactly (|n| ≤ 2^53).
    static func wholeNumber(_ text: String) -> Double? {
        guard text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let value = Double(text), value.isFinite,
              value == value.rounded(), abs(value) <= 9_007_199_254_740_992 else { return nil }
        return value
    }
}

struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(key: String, value: JSONValue)]
    let codingPath: [any CodingKey]
    let tracker: KeyTracker
    let trackerIndex: String

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    private func name(_ key: Key) -> String { StrictJSON.snakeCase(key.stringValue) }

    private func lookup(_ key: Key) -> JSONValue? {
        // Keys from allKeys are JSON names already; synthesized keys are camelCase.
        let snake = name(key)
        if let m = members.first(where: { $0.key == snake }) { tracker.use(trackerIndex, snake); return m.value }
        if let m = members.first(where: { $0.key == key.stringValue }) { tracker.use(trackerIndex, key.stringValue); return m.value }
        return nil
    }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let v = lookup(key) else { return true }
        if case .null = v { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let v = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        try Scalars.refuseNull(type, v, codingPath + [key])
        return try Scalars.decode(type, v, codingPath + [key], tracker)
    }

    /// An optional member may be left out; written as `null` it is refused like any other value
    /// of the wrong type (issue #17 item 9: the contract does not allow it), unless the type
    /// reads null itself (`JSONNullable`).
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try present(type, key) }

    // Synthesized decoders call these for optional scalars; the protocol's defaults would read
    // null as absent (through decodeNil), so each goes through the generic one above.
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(type, key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(type, key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present(type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present(type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(type, key) }

    private func present<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        guard let v = lookup(key) else { return nil }
        try Scalars.refuseNull(type, v, codingPath + [key])
        return try Scalars.decode(type, v, codingPath + [key], tracker)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        guard let v = lookup(key) else { throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing")) }
        return try TreeDecoder(value: v, codingPath: codingPath + [key], tracker: tracker).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        guard let v = lookup(key) else { throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing")) }
        return try TreeDecoder(value: v, codingPath: codingPath + [key], tracker: tracker).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        TreeDecoder(value: .object(members), codingPath: codingPath, tracker: tracker)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(value: lookup(key) ?? .null, codingPath: codingPath + [key], tracker: tracker)
    }
}

struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    let tracker: KeyTracker
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey], tracker: KeyTracker) {
        self.items = items
        self.codingPath = codingPath
        self.tracker = tracker
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type) throws -> (JSONValue, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "array too short"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .null = items[currentIndex] { currentIndex += 1; return true }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (v, path) = try next(type)
        try Scalars.refuseNull(type, v, path)
        return try Scalars.decode(type, v, path, tracker)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (v, path) = try next(type)
        return try TreeDecoder(value: v, codingPath: path, tracker: tracker).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (v, path) = try next([Any].self)
        return try TreeDecoder(value: v, codingPath: path, tracker: tracker).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (v, path) = try next(Any.self)
        return TreeDecoder(value: v, codingPath: path, tracker: tracker)
    }
}

struct SingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let tracker: KeyTracker

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try Scalars.refuseNull(type, value, codingPath)
        return try Scalars.decode(type, value, codingPath, tracker)
    }
}

// MARK: - Null

/// A type that reads JSON `null` itself (the strict decoder hands it the null instead of refusing it).
protocol JSONNullReading {}

/// A member where `null` is a value of its own (the schema says `type: [X, "null"]`): `.null`
/// when written as null; left out, the optional holding it is nil. Everywhere else the strict
/// decoder refuses null.
public enum JSONNullable<Wrapped: Decodable>: Decodable, JSONNullReading {
    case null
    case value(Wrapped)

    /// The value, nil for null.
    public var wrapped: Wrapped? {
        if case .value(let wrapped) = self { return wrapped }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = container.decodeNil() ? .null : .value(try container.decode(Wrapped.self))
    }
}

extension JSONNullable: Sendable where Wrapped: Sendable {}
extension JSONNullable: Equatable where Wrapped: Equatable {}

/// Finds what JSON a Decodable type reads by letting it start decoding from nothing: for the
/// message that refuses a null ("must be an object, not null"). Only on that error path.
struct KindProbe: Decoder {
    struct Found: Error { let kind: String }

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func kind<T: Decodable>(of type: T.Type) -> String? {
        if let kind = Scalars.scalarKind(type) { return kind }
        do {
            _ = try T(from: KindProbe())
        } catch let found as Found {
            return found.kind
        } catch {}
        return nil
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw Found(kind: "an object") }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw Found(kind: "an array") }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single() }

    struct Single: SingleValueDecodingContainer {
        var codingPath: [any CodingKey] { [] }
        func decodeNil() -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            throw Found(kind: KindProbe.kind(of: type) ?? "a value")
        }
    }
}
