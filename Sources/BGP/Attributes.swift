public import IP

// MARK: - Attribute values (RFC 4271 §5 and extensions)

/// RFC 4271 §5.1.1 ORIGIN.
public enum Origin: UInt8, Hashable, Sendable, CaseIterable {
    case igp = 0
    case egp = 1
    case incomplete = 2
}

//  RFC 4271 §4.3 AS_PATH segment:
//  +------------------------------+
//  | Segment Type (1 octet)       |
//  | Segment Length (1 octet, ASes)|
//  | ASNs (2 or 4 octets each)    |
//  +------------------------------+
/// An AS_PATH or AS4_PATH (RFC 4271 §5.1.2, RFC 5065 confederation segments).
public struct ASPath: Hashable, Sendable, CustomStringConvertible {
    public enum SegmentType: UInt8, Hashable, Sendable, CaseIterable {
        case set = 1
        case sequence = 2
        case confedSequence = 3
        case confedSet = 4
    }

    public struct Segment: Hashable, Sendable {
        public var type: SegmentType
        public var asns: [UInt32]
        public init(_ type: SegmentType, _ asns: [UInt32]) {
            self.type = type
            self.asns = asns
        }
    }

    public var segments: [Segment]

    public init(_ segments: [Segment] = []) { self.segments = segments }

    /// A path of one AS_SEQUENCE (the common case: our own AS, possibly prepended).
    public static func sequence(_ asns: [UInt32]) -> ASPath { ASPath(asns.isEmpty ? [] : [Segment(.sequence, asns)]) }

    /// RFC 4271 §9.1.2.2: path length for best-path selection; a set counts one, confederation
    /// segments nothing.
    public var length: Int {
        segments.reduce(0) { total, segment in
            switch segment.type {
            case .sequence: total + segment.asns.count
            case .set: total + 1
            case .confedSequence, .confedSet: total
            }
        }
    }

    /// RFC 6793 §4.2.3: the path a two-octet peer meant, from its AS_PATH (this) and AS4_PATH.
    /// When the AS4_PATH is longer than the AS_PATH it is ignored; otherwise the leading ASes of
    /// the AS_PATH that the AS4_PATH does not cover are kept in front of it.
    public func merged(withAS4Path as4Path: ASPath) -> ASPath {
        let keep = length - as4Path.length
        guard keep >= 0 else { return self }
        var result: [Segment] = []
        var remaining = keep
        for segment in segments where remaining > 0 {
            switch segment.type {
            case .sequence:
                let taken = Array(segment.asns.prefix(remaining))
                result.append(Segment(.sequence, taken))
                remaining -= taken.count
            case .set:
                result.append(segment)
                remaining -= 1
            case .confedSequence, .confedSet:
                result.append(segment)
            }
        }
        return ASPath(result + as4Path.segments)
    }

    /// RFC 6793 §4.2.2: the AS_PATH for a two-octet peer, with AS_TRANS for ASes that do not fit.
    public var twoOctetSafe: ASPath {
        ASPath(segments.map { Segment($0.type, $0.asns.map { $0 > 0xFFFF ? UInt32(OpenMessage.asTrans) : $0 }) })
    }

    public var needsAS4Path: Bool { segments.contains { $0.asns.contains { $0 > 0xFFFF } } }

    public var description: String {
        segments.map { segment in
            let list = segment.asns.map(String.init).joined(separator: " ")
            switch segment.type {
            case .sequence: return list
            case .set: return "{\(list)}"
            case .confedSequence: return "(\(list))"
            case .confedSet: return "[\(list)]"
            }
        }.joined(separator: " ")
    }

    /// RFC 7606 §7.2: an unknown segment type, a zero-length segment, or a segment that overruns
    /// (or a single leftover octet) makes the path malformed.
    static func decode(from reader: inout ByteReader, asnSize: Int) throws(BGPError) -> ASPath {
        let malformed = BGPError.update(.malformedASPath, .treatAsWithdraw, "malformed AS_PATH segment")
        reader.underrun = malformed
        var segments: [Segment] = []
        while !reader.isEmpty {
            guard let type = SegmentType(rawValue: try reader.readUInt8()) else { throw malformed }
            let count = Int(try reader.readUInt8())
            guard count > 0, reader.readableBytes >= count * asnSize else { throw malformed }
            var asns: [UInt32] = []
            asns.reserveCapacity(count)
            for _ in 0..<count {
                asns.append(asnSize == 4 ? try reader.readUInt32() : UInt32(try reader.readUInt16()))
            }
            segments.append(Segment(type, asns))
        }
        return ASPath(segments)
    }

    func encode(into writer: inout ByteWriter, asnSize: Int) {
        for segment in segments {
            // A segment holds at most 255 ASes; longer runs are split.
            var start = 0
            repeat {
                let chunk = segment.asns[start..<min(start + 255, segment.asns.count)]
                writer.writeUInt8(segment.type.rawValue)
                writer.writeUInt8(UInt8(chunk.count))
                for asn in chunk {
                    if asnSize == 4 { writer.writeUInt32(asn) } else { writer.writeUInt16(asn > 0xFFFF ? OpenMessage.asTrans : UInt16(asn)) }
                }
                start += 255
            } while start < segment.asns.count
        }
    }
}

/// AGGREGATOR / AS4_AGGREGATOR (RFC 4271 §5.1.7, RFC 6793).
public struct Aggregator: Hashable, Sendable {
    public var asn: UInt32
    public var address: IPv4Address
    public init(asn: UInt32, address: IPv4Address) {
        self.asn = asn
        self.address = address
    }
}

/// An RFC 1997 community.
public struct Community: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(asn: UInt16, value: UInt16) { rawValue = UInt32(asn) << 16 | UInt32(value) }

    /// RFC 8326.
    public static let gracefulShutdown = Community(rawValue: 0xFFFF_0000)
    /// RFC 7999: ask the peer to drop traffic to the prefix.
    public static let blackhole = Community(rawValue: 0xFFFF_029A)
    /// RFC 1997: do not advertise outside the AS (or confederation).
    public static let noExport = Community(rawValue: 0xFFFF_FF01)
    /// RFC 1997: do not advertise to any peer.
    public static let noAdvertise = Community(rawValue: 0xFFFF_FF02)
    /// RFC 1997: do not advertise outside the local sub-AS.
    public static let noExportSubconfed = Community(rawValue: 0xFFFF_FF03)

    public static func < (a: Community, b: Community) -> Bool { a.rawValue < b.rawValue }

    /// The well-known communities by the names operators write them with.
    public static let wellKnown: [(name: String, community: Community)] = [
        ("graceful-shutdown", .gracefulShutdown), ("blackhole", .blackhole), ("no-export", .noExport),
        ("no-advertise", .noAdvertise), ("no-export-subconfed", .noExportSubconfed),
    ]

    /// "65000:100" (both parts 0–65535) or a well-known name; nil for anything else.
    public init?(_ text: String) {
        if let known = Self.wellKnown.first(where: { $0.name == text }) {
            self = known.community
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let asn = UInt16(parts[0]), let value = UInt16(parts[1]) else { return nil }
        self.init(asn: asn, value: value)
    }

    public var description: String {
        Self.wellKnown.first { $0.community == self }?.name ?? "\(rawValue >> 16):\(rawValue & 0xFFFF)"
    }
}

/// An RFC 4360 extended community, kept as its eight octets.
public struct ExtendedCommunity: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The type octet (high bit clear: IANA authority; 0x40 bit: non-transitive).
    public var type: UInt8 { UInt8(rawValue >> 56) }
    public var subtype: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 48) }

    /// RFC 4360 §4: two-octet-AS-specific route target.
    public static func routeTarget(asn: UInt16, value: UInt32) -> ExtendedCommunity {
        ExtendedCommunity(rawValue: 0x0002 << 48 | UInt64(asn) << 32 | UInt64(value))
    }

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// An RFC 8092 large community: global administrator and two local data parts.
public struct LargeCommunity: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var globalAdministrator: UInt32
    public var localData1: UInt32
    public var localData2: UInt32
    public init(_ globalAdministrator: UInt32, _ localData1: UInt32, _ localData2: UInt32) {
        self.globalAdministrator = globalAdministrator
        self.localData1 = localData1
        self.localData2 = localData2
    }
    public static func < (a: LargeCommunity, b: LargeCommunity) -> Bool {
        (a.globalAdministrator, a.localData1, a.localData2) < (b.globalAdministrator, b.localData1, b.localData2)
    }
    public var description: String { "\(globalAdministrator):\(localData1):\(localData2)" }

    /// "global:local1:local2", each 0–4294967295; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let global = UInt32(parts[0]), let one = UInt32(parts[1]), let two = UInt32(parts[2]) else { return nil }
        self.init(global, one, two)
    }
}

/// The next hop carried in MP_REACH_NLRI.
public enum NextHop: Hashable, Sendable, CustomStringConvertible {
    case ipv4(IPv4Address)
    /// RFC 2545 §3: a global address, optionally followed by a link-local one (32 octets).
    case ipv6(IPv6Address, linkLocal: IPv6Address?)
    /// The next hop of a family this module does not interpret, kept as received.
    case other([UInt8])

    public init(_ address: IPAddress) {
        switch address {
        case .v4(let a): self = .ipv4(a)
        case .v6(let a): self = .ipv6(a, linkLocal: nil)
        }
    }

    var encodedLength: Int {
        switch self {
        case .ipv4: 4
        case .ipv6(_, let ll): ll == nil ? 16 : 32
        case .other(let bytes): bytes.count
        }
    }

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .ipv4(let a): writer.writeIPv4(a)
        case .ipv6(let a, let ll):
            writer.writeIPv6(a)
            if let ll { writer.writeIPv6(ll) }
        case .other(let bytes): writer.writeBytes(bytes)
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let a): a.description
        case .ipv6(let a, let ll): ll.map { "\(a) (\($0))" } ?? a.description
        case .other(let bytes): "\(bytes.count)-octet next hop"
        }
    }
}

//  RFC 4760 §3 MP_REACH_NLRI:
//  +---------------------------------------------------------+
//  | Address Family Identifier (2 octets)                    |
//  | Subsequent Address Family Identifier (1 octet)          |
//  | Length of Next Hop Network Address (1 octet)            |
//  | Network Address of Next Hop (variable)                  |
//  | Reserved (1 octet)                                      |
//  | Network Layer Reachability Information (variable)       |
//  +---------------------------------------------------------+
/// MP_REACH_NLRI. For a family this module does not parse, the NLRI stay raw in `opaqueNLRI`.
public struct MPReachNLRI: Hashable, Sendable {
    public var family: AddressFamily
    public var nextHop: NextHop
    public var nlri: [NLRI]
    public var opaqueNLRI: [UInt8]

    public init(family: AddressFamily, nextHop: NextHop, nlri: [NLRI], opaqueNLRI: [UInt8] = []) {
        self.family = family
        self.nextHop = nextHop
        self.nlri = nlri
        self.opaqueNLRI = opaqueNLRI
    }
}

//  RFC 4760 §4 MP_UNREACH_NLRI:
//  +---------------------------------------------------------+
//  | Address Family Identifier (2 octets)                    |
//  | Subsequent Address Family Identifier (1 octet)          |
//  | Withdrawn Routes (variable)                             |
//  +---------------------------------------------------------+
public struct MPUnreachNLRI: Hashable, Sendable {
    public var family: AddressFamily
    public var withdrawn: [NLRI]
    public var opaqueNLRI: [UInt8]

    public init(family: AddressFamily, withdrawn: [NLRI], opaqueNLRI: [UInt8] = []) {
        self.family = family
        self.withdrawn = withdrawn
        self.opaqueNLRI = opaqueNLRI
    }
}

/// RFC 4271 §4.3 attribute flags octet.
public struct AttributeFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let optional = AttributeFlags(rawValue: 0x80)
    public static let transitive = AttributeFlags(rawValue: 0x40)
    public static let partial = AttributeFlags(rawValue: 0x20)
    public static let extendedLength = AttributeFlags(rawValue: 0x10)
    public static let wellKnown: AttributeFlags = [.transitive]
    public static let optionalTransitive: AttributeFlags = [.optional, .transitive]
    public static let optionalNonTransitive: AttributeFlags = [.optional]
}

/// An attribute this module does not know, kept as received so that an optional transitive
/// one can be passed on (RFC 4271 §5: with the Partial bit set).
public struct UnknownAttribute: Hashable, Sendable {
    public var flags: AttributeFlags
    public var typeCode: UInt8
    public var value: [UInt8]
    public init(flags: AttributeFlags, typeCode: UInt8, value: [UInt8]) {
        self.flags = flags
        self.typeCode = typeCode
        self.value = value
    }
}

/// The path attribute type codes this module interprets (IANA "BGP Path Attributes").
public enum AttributeType: UInt8, Hashable, Sendable, CaseIterable {
    case origin = 1
    case asPath = 2
    case nextHop = 3
    case multiExitDiscriminator = 4
    case localPreference = 5
    case atomicAggregate = 6
    case aggregator = 7
    case communities = 8
    case originatorID = 9
    case clusterList = 10
    case mpReachNLRI = 14
    case mpUnreachNLRI = 15
    case extendedCommunities = 16
    case as4Path = 17
    case as4Aggregator = 18
    case largeCommunities = 32
}

/// One path attribute.
public enum PathAttribute: Hashable, Sendable {
    case origin(Origin)
    case asPath(ASPath)
    case nextHop(IPv4Address)
    case multiExitDiscriminator(UInt32)
    case localPreference(UInt32)
    case atomicAggregate
    case aggregator(Aggregator)
    case communities([Community])
    case originatorID(IPv4Address)
    case clusterList([IPv4Address])
    case mpReachNLRI(MPReachNLRI)
    case mpUnreachNLRI(MPUnreachNLRI)
    case extendedCommunities([ExtendedCommunity])
    case as4Path(ASPath)
    case as4Aggregator(Aggregator)
    case largeCommunities([LargeCommunity])
    case unknown(UnknownAttribute)

    public var typeCode: UInt8 {
        switch self {
        case .origin: AttributeType.origin.rawValue
        case .asPath: AttributeType.asPath.rawValue
        case .nextHop: AttributeType.nextHop.rawValue
        case .multiExitDiscriminator: AttributeType.multiExitDiscriminator.rawValue
        case .localPreference: AttributeType.localPreference.rawValue
        case .atomicAggregate: AttributeType.atomicAggregate.rawValue
        case .aggregator: AttributeType.aggregator.rawValue
        case .communities: AttributeType.communities.rawValue
        case .originatorID: AttributeType.originatorID.rawValue
        case .clusterList: AttributeType.clusterList.rawValue
        case .mpReachNLRI: AttributeType.mpReachNLRI.rawValue
        case .mpUnreachNLRI: AttributeType.mpUnreachNLRI.rawValue
        case .extendedCommunities: AttributeType.extendedCommunities.rawValue
        case .as4Path: AttributeType.as4Path.rawValue
        case .as4Aggregator: AttributeType.as4Aggregator.rawValue
        case .largeCommunities: AttributeType.largeCommunities.rawValue
        case .unknown(let u): u.typeCode
        }
    }

    /// This attribute as it is passed on to another peer: RFC 4271 §5 sets the Partial bit on
    /// an unrecognised optional transitive attribute.
    public var propagated: PathAttribute {
        guard case .unknown(var u) = self else { return self }
        u.flags.insert(.partial)
        return .unknown(u)
    }
}

// MARK: - Reading attributes out of a list

extension Array where Element == PathAttribute {
    public var origin: Origin? { for case .origin(let v) in self { return v }; return nil }
    public var asPath: ASPath? { for case .asPath(let v) in self { return v }; return nil }
    public var nextHop: IPv4Address? { for case .nextHop(let v) in self { return v }; return nil }
    public var multiExitDiscriminator: UInt32? { for case .multiExitDiscriminator(let v) in self { return v }; return nil }
    public var localPreference: UInt32? { for case .localPreference(let v) in self { return v }; return nil }
    public var communities: [Community] { for case .communities(let v) in self { return v }; return [] }
    public var largeCommunities: [LargeCommunity] { for case .largeCommunities(let v) in self { return v }; return [] }
    public var extendedCommunities: [ExtendedCommunity] { for case .extendedCommunities(let v) in self { return v }; return [] }
    public var mpReachNLRI: MPReachNLRI? { for case .mpReachNLRI(let v) in self { return v }; return nil }
    public var mpUnreachNLRI: MPUnreachNLRI? { for case .mpUnreachNLRI(let v) in self { return v }; return nil }
    public var aggregator: Aggregator? { for case .aggregator(let v) in self { return v }; return nil }
    public var as4Path: ASPath? { for case .as4Path(let v) in self { return v }; return nil }
    public var as4Aggregator: Aggregator? { for case .as4Aggregator(let v) in self { return v }; return nil }

    /// RFC 6793 §4.2.3: the attributes from a two-octet peer with AS4_PATH and AS4_AGGREGATOR
    /// folded into AS_PATH and AGGREGATOR and removed. When AGGREGATOR holds a real two-octet
    /// AS (not AS_TRANS), both AS4 attributes are ignored.
    public func reconcilingAS4Attributes() -> [PathAttribute] {
        let as4Path = self.as4Path
        let as4Aggregator = self.as4Aggregator
        var ignoreAS4 = false
        if let aggregator, aggregator.asn != UInt32(OpenMessage.asTrans) { ignoreAS4 = true }
        return compactMap { attribute -> PathAttribute? in
            switch attribute {
            case .as4Path, .as4Aggregator: return nil
            case .asPath(let path):
                guard !ignoreAS4, let as4Path else { return attribute }
                return .asPath(path.merged(withAS4Path: as4Path))
            case .aggregator:
                guard !ignoreAS4, let as4Aggregator else { return attribute }
                return .aggregator(as4Aggregator)
            default: return attribute
            }
        }
    }

    /// RFC 6793 §4.2.2: the attributes for a two-octet peer: AS4_PATH / AS4_AGGREGATOR added
    /// when an AS does not fit two octets (the codec writes AS_TRANS in its place).
    public func addingAS4Attributes() -> [PathAttribute] {
        var result = filter { if case .as4Path = $0 { false } else if case .as4Aggregator = $0 { false } else { true } }
        if let path = asPath, path.needsAS4Path {
            // RFC 6793 §4.2.2: AS4_PATH carries no confederation segments.
            result.append(.as4Path(ASPath(path.segments.filter { $0.type == .sequence || $0.type == .set })))
        }
        if let aggregator, aggregator.asn > 0xFFFF { result.append(.as4Aggregator(aggregator)) }
        return result
    }
}
