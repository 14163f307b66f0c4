/// An IPv6 address, held as its 128-bit value in host order.
///
/// Parsing accepts every text form of RFC 4291 §2.2 (full, `::`-compressed, and with an embedded
/// dotted-quad IPv4 address in the low 32 bits) and rejects zone IDs (`fe80::1%eth0`): a zone
/// names an interface of one host and has no meaning in a route or a pool.
/// Output is the canonical form of RFC 5952 §4.
public struct IPv6Address: Hashable, Comparable, Sendable {
    // Two halves rather than one UInt128: UInt128's 16-byte alignment would pad every IPAddress
    // and IPPrefix to 32 bytes, and they are the keys of million-entry tables (Loc-RIB,
    // Adj-RIB-Out, the desired routes); with halves they take 24.
    private var high: UInt64
    private var low: UInt64

    public var value: UInt128 {
        get { UInt128(high) << 64 | UInt128(low) }
        set {
            high = UInt64(truncatingIfNeeded: newValue >> 64)
            low = UInt64(truncatingIfNeeded: newValue)
        }
    }

    public init(_ value: UInt128) {
        high = UInt64(truncatingIfNeeded: value >> 64)
        low = UInt64(truncatingIfNeeded: value)
    }

    /// The sixteen bytes in network order.
    public var bytes: [UInt8] {
        (0..<16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) }
    }

    /// Builds an address from sixteen bytes in network order.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        self.init(bytes.reduce(0) { $0 << 8 | UInt128($1) })
    }

    /// The eight 16-bit groups, most significant first.
    public var groups: [UInt16] {
        (0..<8).map { UInt16(truncatingIfNeeded: value >> (112 - 16 * $0)) }
    }

    public static let any = IPv6Address(0)
    public static let loopback = IPv6Address(1)

    public var isLoopback: Bool { value == 1 }
    public var isUnspecified: Bool { value == 0 }
    /// fe80::/10 (RFC 4291 §2.5.6).
    public var isLinkLocal: Bool { value >> 118 == 0x3FA }
    public var isMulticast: Bool { value >> 120 == 0xFF }

    /// The IPv4 address of an IPv4-mapped address (`::ffff:0:0/96`, RFC 4291 §2.5.5.2).
    public var ipv4Mapped: IPv4Address? {
        value >> 32 == 0xFFFF ? IPv4Address(UInt32(truncatingIfNeeded: value)) : nil
    }

    public var next: IPv6Address? { value == .max ? nil : IPv6Address(value + 1) }
    public var previous: IPv6Address? { value == 0 ? nil : IPv6Address(value - 1) }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }

    // MARK: - Parsing

    public init(parsing text: some StringProtocol) throws(IPParseError) {
        do { self.init(try Self.parseValue(Array(text.utf8))) } catch {
            throw IPParseError(input: String(text), reason: error.text)
        }
    }

    struct Failure: Error { let text: String }

    private static func fail(_ reason: String) -> Failure {
        Failure(text: "is not an IPv6 address: " + reason)
    }

    static func parseValue(_ bytes: [UInt8]) throws(Failure) -> UInt128 {
        if bytes.isEmpty { throw Failure(text: "is empty; expected an IPv6 address such as 2001:db8::1") }
        if bytes.contains(UInt8(ascii: "%")) {
            throw fail("zone IDs (the part after %) name a local interface and are not accepted here")
        }
        if bytes.first == UInt8(ascii: "[") { throw fail("remove the brackets") }

        // Split around the one permitted "::".
        var head = bytes[...]
        var tail: ArraySlice<UInt8>? = nil
        let colon = UInt8(ascii: ":")
        if let index = (0..<max(0, bytes.count - 1)).first(where: { bytes[$0] == colon && bytes[$0 + 1] == colon }) {
            head = bytes[..<index]
            tail = bytes[(index + 2)...]
            if tail!.count >= 2, zip(tail!, tail!.dropFirst()).contains(where: { $0 == colon && $1 == colon }) {
                throw fail("\"::\" may appear only once")
            }
        }

        func groups(_ part: ArraySlice<UInt8>, mayEndWithIPv4: Bool) throws(Failure) -> [UInt16] {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: colon, omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if piece.isEmpty { throw fail("a group between colons is empty") }
                if piece.contains(UInt8(ascii: ".")) {
                    guard mayEndWithIPv4, index == pieces.count - 1 else {
                        throw fail("an embedded IPv4 address may only be the last 32 bits")
                    }
                    guard let v4 = IPv4Address.parseValue(piece) else {
                        throw fail("embedded IPv4 address \"\(String(decoding: piece, as: UTF8.self))\" is invalid")
                    }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xFFFF))
                    continue
                }
                guard piece.count <= 4 else {
                    throw fail("group \"\(String(decoding: piece, as: UTF8.self))\" has more than four hex digits")
                }
                var group: UInt16 = 0
                for byte in piece {
                    guard let digit = hexValue(byte) else {
                        throw fail("group \"\(String(decoding: piece, as: UTF8.self))\" is not hexadecimal")
                    }
                    group = group << 4 | UInt16(digit)
                }
                out.append(group)
            }
            return out
        }

        let headGroups = try groups(head, mayEndWithIPv4: tail == nil)
        var all = headGroups
        if let tail {
            let tailGroups = try groups(tail, mayEndWithIPv4: true)
            // RFC 4291 §2.2: "::" stands for one or more groups of zeros.
            guard headGroups.count + tailGroups.count <= 7 else {
                throw fail("\"::\" must stand for at least one group, but there are already eight")
            }
            all += Array(repeating: 0, count: 8 - headGroups.count - tailGroups.count) + tailGroups
        } else if all.count != 8 {
            throw fail("expected eight groups (or \"::\"), found \(all.count)")
        }
        return all.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension IPv6Address: CustomStringConvertible, IPTextRepresentable, Codable {
    /// RFC 5952 §4: lowercase, no leading zeros, the longest run of two or more zero groups
    /// (the first on a tie) as "::"; RFC 5952 §5: IPv4-mapped addresses end in dotted quad.
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        let groups = self.groups
        var bestStart = -1, bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestLength >= 2 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// Without building the error message that `init(parsing:)` would throw away here.
    public init?(_ description: String) {
        guard let value = try? Self.parseValue(Array(description.utf8)) else { return nil }
        self.init(value)
    }
}
