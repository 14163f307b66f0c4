@testable import DqliteWire

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

/// A whole message: a header with the word count computed from `body` (hex), then the body.
func message(_ type: UInt8, schema: UInt8 = 0, _ body: String) -> [UInt8] {
    let payload = hex(body)
    let words = UInt32(payload.count / 8)
    return [UInt8(words & 0xff), UInt8(words >> 8 & 0xff), UInt8(words >> 16 & 0xff), UInt8(words >> 24), type, schema, 0, 0] + payload
}

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
