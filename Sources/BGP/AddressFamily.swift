public import IP

/// RFC 4760 §3 Address Family Identifier (IANA "Address Family Numbers").
public struct AFI: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let ipv4 = AFI(rawValue: 1)
    public static let ipv6 = AFI(rawValue: 2)
    public static func < (a: AFI, b: AFI) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        default: "AFI \(rawValue)"
        }
    }
}

/// RFC 4760 §3 Subsequent Address Family Identifier.
public struct SAFI: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let unicast = SAFI(rawValue: 1)
    public static let multicast = SAFI(rawValue: 2)
    public static func < (a: SAFI, b: SAFI) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .unicast: "unicast"
        case .multicast: "multicast"
        default: "SAFI \(rawValue)"
        }
    }
}

/// An AFI/SAFI pair: the unit in which capabilities, ADD-PATH and End-of-RIB are negotiated.
public struct AddressFamily: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var afi: AFI
    public var safi: SAFI
    public init(afi: AFI, safi: SAFI) {
        self.afi = afi
        self.safi = safi
    }

    public static let ipv4Unicast = AddressFamily(afi: .ipv4, safi: .unicast)
    public static let ipv6Unicast = AddressFamily(afi: .ipv6, safi: .unicast)

    /// The family whose unicast routes carry prefixes of `family`.
    public static func unicast(_ family: IPFamily) -> AddressFamily {
        family == .ipv4 ? .ipv4Unicast : .ipv6Unicast
    }

    /// The IP family of the NLRI, for the AFIs this module can parse prefixes of.
    public var ipFamily: IPFamily? {
        switch afi {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        default: nil
        }
    }

    /// True for the AFI/SAFI pairs whose NLRI this module decodes (IPv4/IPv6 unicast and multicast).
    public var isSupported: Bool { ipFamily != nil && (safi == .unicast || safi == .multicast) }

    public static func < (a: AddressFamily, b: AddressFamily) -> Bool { (a.afi, a.safi) < (b.afi, b.safi) }
    public var description: String { "\(afi) \(safi)" }
}

/// One NLRI entry: a prefix, with its RFC 7911 path identifier when ADD-PATH is in use.
public struct NLRI: Hashable, Sendable, CustomStringConvertible {
    public var prefix: IPPrefix
    public var pathID: UInt32?

    public init(_ prefix: IPPrefix, pathID: UInt32? = nil) {
        self.prefix = prefix
        self.pathID = pathID
    }

    public var description: String { pathID.map { "\(prefix) path-id \($0)" } ?? prefix.description }

    /// Encoded size in bytes (path id, length octet, prefix octets).
    public func encodedLength(addPath: Bool) -> Int {
        (addPath ? 4 : 0) + 1 + (prefix.length + 7) / 8
    }

    //  RFC 4271 §4.3 (and RFC 7911 §3 with ADD-PATH):
    //  +---------------------------+
    //  |  Path Identifier (4 oct.) |   only with ADD-PATH
    //  +---------------------------+
    //  |  Length (1 octet, bits)   |
    //  +---------------------------+
    //  |  Prefix (variable)        |
    //  +---------------------------+
    /// Encodes one entry. The path identifier is written as 0 when ADD-PATH is on and none is set.
    public func encode(into writer: inout ByteWriter, addPath: Bool) {
        if addPath { writer.writeUInt32(pathID ?? 0) }
        writer.writeUInt8(UInt8(prefix.length))
        let count = (prefix.length + 7) / 8
        switch prefix.network {
        case .v4(let a):
            let v = a.value
            for i in 0..<count { writer.writeUInt8(UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(i)))) }
        case .v6(let a):
            let v = a.value
            for i in 0..<count { writer.writeUInt8(UInt8(truncatingIfNeeded: v >> (120 - 8 * UInt128(i)))) }
        }
    }

    /// Decodes one entry of `family`. A prefix length beyond the family's width, or prefix octets
    /// running past the field, throw `invalid` (the caller picks the RFC 7606 outcome).
    /// Host bits past the length are cleared, as BIRD and FRR do.
    public static func decode(from reader: inout ByteReader, family: IPFamily, addPath: Bool, invalid: BGPError) throws(BGPError) -> NLRI {
        var pathID: UInt32?
        if addPath {
            guard reader.readableBytes >= 4 else { throw invalid }
            pathID = try reader.readUInt32()
        }
        guard let lengthOctet = reader.peekUInt8() else { throw invalid }
        let length = Int(lengthOctet)
        let count = (length + 7) / 8
        // RFC 4271 §6.3 / RFC 7606 §5.3: a length beyond the address width or past the field is
        // an NLRI that cannot be parsed.
        guard length <= family.bitWidth, reader.readableBytes >= 1 + count else { throw invalid }
        try reader.skip(1)
        switch family {
        case .ipv4:
            var v: UInt32 = 0
            for i in 0..<count { v |= UInt32(try reader.readUInt8()) << (24 - 8 * UInt32(i)) }
            return NLRI(IPPrefix(truncating: .v4(IPv4Address(v)), length: length), pathID: pathID)
        case .ipv6:
            var v: UInt128 = 0
            for i in 0..<count { v |= UInt128(try reader.readUInt8()) << (120 - 8 * UInt128(i)) }
            return NLRI(IPPrefix(truncating: .v6(IPv6Address(v)), length: length), pathID: pathID)
        }
    }

    /// Decodes every entry until the reader is empty.
    public static func decodeAll(from reader: inout ByteReader, family: IPFamily, addPath: Bool, invalid: BGPError) throws(BGPError) -> [NLRI] {
        var result: [NLRI] = []
        result.reserveCapacity(reader.readableBytes / (family == .ipv4 ? 5 : 9) + 1)
        while !reader.isEmpty {
            result.append(try decode(from: &reader, family: family, addPath: addPath, invalid: invalid))
        }
        return result
    }
}
