/// An IPv4 address, held as its 32-bit value in host order.
///
/// Parsing is strict dotted-quad: exactly four decimal octets, each 0–255, with no leading zeros
/// ("010.0.0.1" is rejected because some tools read it as octal) and nothing around them.
public struct IPv4Address: Hashable, Comparable, Sendable {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// The four octets in network order.
    public var octets: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
         UInt8(truncatingIfNeeded: value)]
    }

    /// Builds an address from four octets in network order.
    public init?(octets: some Collection<UInt8>) {
        guard octets.count == 4 else { return nil }
        value = octets.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public static let any = IPv4Address(0)
    public static let broadcast = IPv4Address(.max)

    public var isLoopback: Bool { value >> 24 == 127 }
    public var isUnspecified: Bool { value == 0 }
    public var isMulticast: Bool { value >> 28 == 0xE }

    /// The next address, or nil after 255.255.255.255.
    public var next: IPv4Address? { value == .max ? nil : IPv4Address(value + 1) }
    /// The previous address, or nil before 0.0.0.0.
    public var previous: IPv4Address? { value == 0 ? nil : IPv4Address(value - 1) }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    // MARK: - Parsing

    /// Parses a dotted-quad address, throwing an error that says what is wrong.
    public init(parsing text: some StringProtocol) throws(IPParseError) {
        guard let value = Self.parseValue(text.utf8) else {
            throw Self.explainFailure(String(text))
        }
        self.value = value
    }

    /// Parses the dotted-quad bytes, or returns nil. Shared with the IPv6 parser for its
    /// embedded-IPv4 form (RFC 4291 §2.2 form 3).
    static func parseValue(_ bytes: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var octets = 0
        var leadingZero = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if leadingZero { return nil }
                if digits == 0 && byte == UInt8(ascii: "0") { leadingZero = true }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || octet > 255 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | octet
                octets += 1
                octet = 0
                digits = 0
                leadingZero = false
            default:
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | octet
    }

    private static func explainFailure(_ text: String) -> IPParseError {
        if text.isEmpty { return IPParseError(input: text, reason: "is empty; expected an IPv4 address such as 192.0.2.1") }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count != 4 {
            return IPParseError(input: text, reason: "is not an IPv4 address: expected four decimal octets separated by dots, found \(parts.count) part\(parts.count == 1 ? "" : "s")")
        }
        for part in parts {
            if part.isEmpty { return IPParseError(input: text, reason: "is not an IPv4 address: an octet is empty") }
            if !part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                return IPParseError(input: text, reason: "is not an IPv4 address: octet \"\(part)\" is not a decimal number")
            }
            if part.count > 1 && part.first == "0" {
                return IPParseError(input: text, reason: "is not an IPv4 address: octet \"\(part)\" has a leading zero (ambiguous: some tools read it as octal)")
            }
            if part.count > 3 || Int(part)! > 255 {
                return IPParseError(input: text, reason: "is not an IPv4 address: octet \(part) is greater than 255")
            }
        }
        return IPParseError(input: text, reason: "is not an IPv4 address")
    }
}

extension IPv4Address: CustomStringConvertible, IPTextRepresentable, Codable {
    public var description: String {
        // By hand: interpolating four integers costs several allocations, and a bulk load
        // formats a million addresses.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { buffer in
            var n = 0
            for shift in [24, 16, 8, 0] as [UInt32] {
                let octet = UInt8(truncatingIfNeeded: value >> shift)
                if shift != 24 { buffer[n] = UInt8(ascii: "."); n += 1 }
                if octet >= 100 { buffer[n] = 0x30 + octet / 100; n += 1 }
                if octet >= 10 { buffer[n] = 0x30 + octet / 10 % 10; n += 1 }
                buffer[n] = 0x30 + octet % 10
                n += 1
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<n]), as: UTF8.self)
        }
    }

    /// Without building the error message that `init(parsing:)` would throw away here.
    public init?(_ description: String) {
        guard let value = Self.parseValue(description.utf8) else { return nil }
        self.value = value
    }
}
