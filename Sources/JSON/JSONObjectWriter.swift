/// Adds members to an object `JSONCoding` encoded earlier, without encoding it again: a body
/// whose bulk changes rarely (`GET /v1/status`: the stored settings and counts, re-encoded once
/// per commit) and whose few other members change per request (the uptime).
///
/// Members added must sort after the object's own keys, as `JSONCoding`'s sorted keys would
/// put them; `add` checks that against the last key added.
public struct JSONObjectWriter: Sendable {
    private var bytes: [UInt8]
    private var empty: Bool
    private var lastKey: String?

    /// `object` is an encoded JSON object (`{…}`); nil when it is not one.
    public init?(extending object: [UInt8]) {
        guard object.first == UInt8(ascii: "{"), object.last == UInt8(ascii: "}") else { return nil }
        bytes = object
        bytes.removeLast()
        empty = object.count == 2
    }

    public mutating func add(_ key: String, _ value: Double) {
        // JSONEncoder writes whole doubles without a fraction too ("3.0" → 3), so do the same.
        let text = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
        member(key, Array(text.utf8))
    }

    public mutating func add(_ key: String, _ value: String) {
        member(key, Self.quoted(value))
    }

    /// The object with the members added.
    public var encoded: [UInt8] { bytes + [UInt8(ascii: "}")] }

    private mutating func member(_ key: String, _ value: [UInt8]) {
        precondition(lastKey.map { $0 < key } ?? true, "JSONObjectWriter: keys must be added in sorted order")
        lastKey = key
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        bytes += Self.quoted(key)
        bytes.append(UInt8(ascii: ":"))
        bytes += value
    }

    /// A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped, as
    /// `JSONCoding` writes them (slashes unescaped).
    public static func quoted(_ text: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x00..<0x20:
                let hex = String(byte, radix: 16)
                out += Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }
}
