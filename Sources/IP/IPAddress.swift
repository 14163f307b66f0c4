/// The two address families Herald routes.
public enum IPFamily: String, Hashable, Sendable, Codable, CaseIterable {
    case ipv4
    case ipv6

    /// Address width in bits: 32 or 128.
    public var bitWidth: Int { self == .ipv4 ? 32 : 128 }
}

/// An IPv4 or IPv6 address. Orders all IPv4 addresses before all IPv6 addresses.
public enum IPAddress: Hashable, Comparable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    /// The address as an unsigned number in its family's width (IPv4 uses the low 32 bits).
    public var bits: UInt128 {
        switch self {
        case .v4(let a): UInt128(a.value)
        case .v6(let a): a.value
        }
    }

    /// Builds an address of `family` from its numeric value; higher bits beyond the family's
    /// width are ignored.
    public init(family: IPFamily, bits: UInt128) {
        switch family {
        case .ipv4: self = .v4(IPv4Address(UInt32(truncatingIfNeeded: bits)))
        case .ipv6: self = .v6(IPv6Address(bits))
        }
    }

    /// The address bytes in network order (4 or 16 of them).
    public var bytes: [UInt8] { either({ $0.octets }, { $0.bytes }) }

    public var isLoopback: Bool { either({ $0.isLoopback }, { $0.isLoopback }) }

    public var isUnspecified: Bool { either({ $0.isUnspecified }, { $0.isUnspecified }) }

    public var isMulticast: Bool { either({ $0.isMulticast }, { $0.isMulticast }) }

    public var next: IPAddress? { either({ $0.next.map(IPAddress.v4) }, { $0.next.map(IPAddress.v6) }) }

    public var previous: IPAddress? { either({ $0.previous.map(IPAddress.v4) }, { $0.previous.map(IPAddress.v6) }) }

    /// The answer of the family's own type: the questions above are the same for both families.
    @inline(__always)
    private func either<T>(_ v4: (IPv4Address) -> T, _ v6: (IPv6Address) -> T) -> T {
        switch self {
        case .v4(let a): v4(a)
        case .v6(let a): v6(a)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

    // MARK: - Parsing

    /// Parses either family: text with a colon is IPv6, anything else IPv4.
    public init(parsing text: some StringProtocol) throws(IPParseError) {
        if text.contains(":") {
            self = .v6(try IPv6Address(parsing: text))
        } else {
            self = .v4(try IPv4Address(parsing: text))
        }
    }
}

extension IPAddress: CustomStringConvertible, IPTextRepresentable, Codable {
    public var description: String { either({ $0.description }, { $0.description }) }
}
