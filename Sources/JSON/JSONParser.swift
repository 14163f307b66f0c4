// A small strict JSON parser (RFC 8259) with a nesting bound, producing a tree for the strict
// decoder in JSONBody.swift. Pure, standard library only: scripts/fuzz/http.sh (json target)
// compiles this file alone with the fuzz target.

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
    /// Where the input ends: `end`, or the end of one NDJSON line inside a whole body
    /// (so a bulk body is parsed in place, not copied line by line).
    var end: Int

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        end = bytes.count
    }

    /// A parser for `bytes[range]` only.
    init(bytes: [UInt8], range: Range<Int>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        i = range.lowerBound
        end = range.upperBound
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard i == end else { throw fail("unexpected data after the JSON value") }
        return value
    }

    /// Streaming a top-level array one element at a time, so a bulk body of a million objects
    /// never becomes one tree: call `openArray()`, then `nextElement()` until it returns nil.
    mutating func openArray() throws(JSONSyntaxError) {
        skipWhitespace()
        guard i < end, bytes[i] == UInt8(ascii: "[") else { throw fail("expected a JSON array") }
        i += 1
        skipWhitespace()
    }

    /// Moves to the start of the next element of the array opened by `openArray()` and returns
    /// true, or returns false after the closing bracket (when only whitespace may follow). The
    /// caller then reads the element itself (a streaming decoder of one item shape).
    mutating func nextElementStart(isFirst: Bool) throws(JSONSyntaxError) -> Bool {
        skipWhitespace()
        guard i < end else { throw fail("unexpected end of input") }
        if bytes[i] == UInt8(ascii: "]") {
            i += 1
            skipWhitespace()
            guard i == end else { throw fail("unexpected data after the JSON value") }
            return false
        }
        if !isFirst {
            guard bytes[i] == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
            i += 1
            skipWhitespace()
        }
        return true
    }

    /// The next element of the array opened by `openArray()`, or nil after the closing bracket
    /// (when only whitespace may follow).
    mutating func nextElement(isFirst: Bool) throws(JSONSyntaxError) -> JSONValue? {
        guard try nextElementStart(isFirst: isFirst) else { return nil }
        return try parseValue(depth: 1)
    }

    func fail(_ message: String) -> JSONSyntaxError { JSONSyntaxError(message: message, offset: i) }

    mutating func skipWhitespace() {
        while i < end, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    /// The byte ahead, not read; the end of the input is a syntax error here.
    func peek() throws(JSONSyntaxError) -> UInt8 {
        guard i < end else { throw fail("unexpected end of input") }
        return bytes[i]
    }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "{"):
            var members: [(key: String, value: JSONValue)] = []
            if try openContainer(depth: depth) { return .object(members) }
            var seen = Set<String>()
            repeat {
                let key = try memberName { seen.insert($0).inserted }
                members.append((key, try parseValue(depth: depth + 1)))
            } while try !readCommaOrClose(UInt8(ascii: "}"))
            return .object(members)
        case UInt8(ascii: "["):
            var items: [JSONValue] = []
            if try openContainer(depth: depth) { return .array(items) }
            repeat {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
            } while try !readCommaOrClose(UInt8(ascii: "]"))
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return .number(try parseNumber())
        }
    }

    // MARK: - Containers (JSONItemScanner reads its items with these too)

    /// Steps into the object or array whose opening byte is next, a value at `depth`; true when
    /// it is empty (its closing byte read as well).
    mutating func openContainer(depth: Int) throws(JSONSyntaxError) -> Bool {
        guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
        let close = bytes[i] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        i += 1
        skipWhitespace()
        guard i < end, bytes[i] == close else { return false }
        i += 1
        return true
    }

    /// Reads a member's `"name":` with the whitespace around it, leaving the value next. A name
    /// that `isNew` turns down is refused as a duplicate.
    mutating func memberName(isNew: (String) -> Bool) throws(JSONSyntaxError) -> String {
        skipWhitespace()
        guard i < end, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let name = try parseString()
        guard isNew(name) else { throw fail("duplicate member \"\(name)\"") }
        skipWhitespace()
        guard i < end, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        i += 1
        skipWhitespace()
        return name
    }

    /// After a member or element: reads the ',' before the next one (false) or the container's
    /// closing byte `close` (true).
    mutating func readCommaOrClose(_ close: UInt8) throws(JSONSyntaxError) -> Bool {
        skipWhitespace()
        switch try peek() {
        case UInt8(ascii: ","): i += 1; return false
        case close: i += 1; return true
        default: throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
        }
    }

    // MARK: - Scalars

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let w = Array(word.utf8)
        guard i + w.count <= end, Array(bytes[i..<i + w.count]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        // number = [ "-" ] int [ frac ] [ exp ]
        let start = i
        func digit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        if i < end, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end, digit(bytes[i]) else { throw fail("invalid value") }
        if bytes[i] == 0x30 { i += 1 } else { while i < end, digit(bytes[i]) { i += 1 } }
        if i < end, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, digit(bytes[i]) else { throw fail("invalid number") }
            while i < end, digit(bytes[i]) { i += 1 }
        }
        if i < end, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, digit(bytes[i]) else { throw fail("invalid number") }
            while i < end, digit(bytes[i]) { i += 1 }
        }
        guard i - start <= 64 else { throw fail("number too long") }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        i += 1  // opening quote
        // Fast path: no escape up to the closing quote (nearly every string), made into a
        // String from the input in place, without an intermediate array.
        let start = i
        var ascii = true
        while i < end {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
            if b >= 0x80 { ascii = false }
            i += 1
        }
        if i < end, bytes[i] == UInt8(ascii: "\"") {
            let text = bytes.withUnsafeBufferPointer { buffer in
                let slice = UnsafeBufferPointer(rebasing: buffer[start..<i])
                return ascii ? String(decoding: slice, as: UTF8.self) : String(validating: slice, as: UTF8.self)
            }
            guard let text else { throw fail("string is not UTF-8") }
            i += 1
            return text
        }
        i = start
        var out: [UInt8] = []
        while true {
            guard i < end else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < end else { throw fail("unterminated escape") }
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
                    guard i + 1 < end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw fail("lone surrogate") }
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
        guard i + 4 <= end else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v * 16 + UInt32(digit)
            i += 1
        }
        return v
    }
}
