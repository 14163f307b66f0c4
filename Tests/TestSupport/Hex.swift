/// Bytes from hex text, as RFCs and packet captures print them; spaces, newlines and "|"
/// separators are ignored.
public func hex(_ text: String) -> [UInt8] {
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
    /// The bytes as lower-case hex, two digits each.
    public var hexString: String { map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
}
