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
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): a.octets
        case .v6(let a): a.bytes
        }
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let a): a.isLoopback
        case .v6(let a): a.isLoopback
        }
    }

    public var isUnspecified: Bool {
        switch self {
        case .v4(let a): a.isUnspecified
        case .v6(let a): a.isUnspecified
        }
    }

    public var isMulticast: Bool {
        switch self {
        case .v4(let a): a.isMulticast
        case .v6(let a): a.isMulticast
        }
    }

    public var next: IPAddress? {
        switch self {
        case .v4(let a): a.next.map(IPAddress.v4)
        case .v6(let a): a.next.map(IPAddress.v6)
        }
    }

    public var previous: IPAddress? {
        switch self {
        case .v4(let a): a.previous.map(IPAddress.v4)
        case .v6(let a): a.previous.map(IPAddress.v6)
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

extension IPAddress: CustomStringConvertible, LosslessStringConvertible {
    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }

    public init?(_ description: String) {
        guard let value = try? IPAddress(parsing: description) else { return nil }
        self = value
    }
}

extension IPAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
