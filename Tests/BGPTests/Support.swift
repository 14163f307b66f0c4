@testable import BGP
import IP

/// Bytes from hex text; spaces, newlines and "|" separators are ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.unicodeScalars.compactMap { UInt8(String($0), radix: 16) }
    var bytes: [UInt8] = []
    var i = 0
    while i + 1 < digits.count {
        bytes.append(digits[i] << 4 | digits[i + 1])
        i += 2
    }
    return bytes
}

extension Array where Element == UInt8 {
    var hexString: String { map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
}

/// A whole message: marker, computed length, type, then `body` (hex).
func message(_ type: UInt8, _ body: String) -> [UInt8] {
    let payload = hex(body)
    let length = 19 + payload.count
    return [UInt8](repeating: 0xFF, count: 16) + [UInt8(length >> 8), UInt8(length & 0xFF), type] + payload
}

/// An UPDATE with the two length fields computed.
func update(withdrawn: String = "", attributes: String = "", nlri: String = "") -> [UInt8] {
    let w = hex(withdrawn), a = hex(attributes)
    let body = [UInt8(w.count >> 8), UInt8(w.count & 0xFF)] + w + [UInt8(a.count >> 8), UInt8(a.count & 0xFF)] + a + hex(nlri)
    return message(2, body.hexString)
}

func v4(_ text: String) -> IPv4Address { IPv4Address(text)! }
func v6(_ text: String) -> IPv6Address { IPv6Address(text)! }
func prefix(_ text: String) -> IPPrefix { IPPrefix(text)! }
func nlri(_ text: String, pathID: UInt32? = nil) -> NLRI { NLRI(prefix(text), pathID: pathID) }

/// A tiny deterministic generator (SplitMix64) so that property-test failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
