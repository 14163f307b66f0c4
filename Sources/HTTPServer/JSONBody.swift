// Strict JSON request bodies: media type checked (415), size bounded (413), nesting depth
// bounded (400), duplicate and unknown fields rejected by name (400), snake_case keys.
// Foundation's JSONDecoder ignores unknown keys and has no depth limit, so bodies are parsed
// here into a small tree and decoded by a Decoder that records which keys the type read.

extension HTTPRequest {
    /// Decodes the body as `T` (JSON, snake_case keys). Throws `HTTPError` (415, 413, 400) or
    /// `ValidationError` (400, with one `FieldError` per problem) — both become problem+json.
    public func decode<T: Decodable>(_ type: T.Type = T.self, maxBytes: Int = 1024 * 1024, maxDepth: Int = 32) throws -> T {
        let contentType = headers["Content-Type"].map { $0.split(separator: ";")[0].trimmingOWS().lowercased() } ?? ""
        guard contentType == "application/json" || (contentType.hasPrefix("application/") && contentType.hasSuffix("+json")) else {
            throw HTTPError(.unsupportedMediaType, detail: "expected Content-Type: application/json")
        }
        guard body.count <= maxBytes else {
            throw HTTPError(.contentTooLarge, detail: "JSON body larger than \(maxBytes) bytes")
        }
        let value: JSONValue
        do {
            var parser = JSONParser(bytes: body, maxDepth: maxDepth)
            value = try parser.parseDocument()
        } catch {
            throw HTTPError(.badRequest, detail: "invalid JSON: \(error.message) at byte \(error.offset)")
        }
        return try StrictJSON.decode(T.self, from: value)
    }
}

// MARK: - Tree and parser (RFC 8259)

indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

struct JSONSyntaxError: Error {
    let message: String
    let offset: Int
}

struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var i = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard i == bytes.count else { throw fail("unexpected data after the JSON value") }
        return value
    }

    private func fail(_ message: String) -> JSONSyntaxError { JSONSyntaxError(message: message, offset: i) }

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            i += 1
            var members: [(key: String, value: JSONValue)] = []
            var seen = Set<String>()
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                let key = try parseString()
                guard seen.insert(key).inserted else { throw fail("duplicate member \"\(key)\"") }
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipWhitespace()
                members.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of input") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            i += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of input") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return .number(try parseNumber())
        }
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        // number = [ "-" ] int [ frac ] [ exp ]
        let start = i
        func digit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, digit(bytes[i]) else { throw fail("invalid value") }
        if bytes[i] == 0x30 { i += 1 } else { while i < bytes.count, digit(bytes[i]) { i += 1 } }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, digit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count, digit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, digit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count, digit(bytes[i]) { i += 1 }
        }
        guard i - start <= 64 else { throw fail("number too long") }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw fail("lone surrogate") }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("lone surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid escape") }
                out += Array(String(Character(u)).utf8)
            default:
                throw fail("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not UTF-8") }
        return s
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let d = HTTPSyntax.hexValue(bytes[i]) else { throw fail("invalid \\u escape") }
            v = v * 16 + UInt32(d)
            i += 1
        }
        return v
    }
}

// MARK: - Strict decoder

enum StrictJSON {
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        let tracker = KeyTracker()
        let decoded: T
        do {
            decoded = try T(from: TreeDecoder(value: value, codingPath: [], tracker: tracker))
        } catch let error as DecodingError {
            throw ValidationError([fieldError(error)], status: .badRequest, detail: "The JSON body does not match the expected shape.")
        }
        let unknown = tracker.unknownFields()
        if !unknown.isEmpty {
            throw ValidationError(unknown.map { FieldError(field: $0, message: "unknown field") }, status: .badRequest, detail: "The JSON body has unknown fields.")
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

    static func fieldError(_ error: DecodingError) -> FieldError {
        switch error {
        case .keyNotFound(let key, let context):
            return FieldError(field: path(context.codingPath + [key]), message: "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return FieldError(field: path(context.codingPath), message: context.debugDescription)
        case .dataCorrupted(let context):
            return FieldError(field: path(context.codingPath), message: context.debugDescription)
        @unknown default:
            return FieldError(field: "$", message: "\(error)")
        }
    }

    /// The JSONEncoder `.convertToSnakeCase` rule: `peerASN` → `peer_asn`, `holdTime` → `hold_time`.
    static func snakeCase(_ key: String) -> String {
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
        guard let v = I(n) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(n) is not an integer in \(I.min)...\(I.max)"))
        }
        return v
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
        if case .null = v {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [key], debugDescription: "must not be null"))
        }
        return try Scalars.decode(type, v, codingPath + [key], tracker)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = lookup(key) else { return nil }
        if case .null = v { return nil }
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
        if case .null = v { throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "must not be null")) }
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
        if case .null = value { throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "must not be null")) }
        return try Scalars.decode(type, value, codingPath, tracker)
    }
}
