import TestSupport
@testable import DqliteWire

/// A whole message: a header with the word count computed from `body` (hex), then the body.
func message(_ type: UInt8, schema: UInt8 = 0, _ body: String) -> [UInt8] {
    let payload = hex(body)
    let words = UInt32(payload.count / 8)
    return [UInt8(words & 0xff), UInt8(words >> 8 & 0xff), UInt8(words >> 16 & 0xff), UInt8(words >> 24), type, schema, 0, 0] + payload
}

