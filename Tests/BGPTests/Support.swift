import TestSupport
@testable import BGP
import IP

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

