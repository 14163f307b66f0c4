import IP

// One table of path attributes keyed by type code, in the manner of BIRD's proto/bgp/attrs.c:
// each descriptor gives the name, the expected Optional/Transitive flags, the RFC 7606 action
// when the attribute is malformed, and the value decoder/encoder. Duplicate and flag checks run
// once, generically, in `UpdateMessage.decodeAttributes`.
//
//  RFC 4271 §4.3 attribute TLV:
//  0                   1
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Attr. Flags  |Attr. Type Code|   then a 1-octet length (2 with Extended Length)
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

struct AttributeDescriptor: Sendable {
    typealias Decoder = @Sendable (inout ByteReader, CodecContext) throws(BGPError) -> PathAttribute
    typealias Encoder = @Sendable (PathAttribute, inout ByteWriter, CodecContext) -> Void

    let type: AttributeType
    let name: String
    /// The Optional and Transitive bits the attribute must carry.
    let flags: AttributeFlags
    /// RFC 7606 §7: what a malformed instance (wrong flags, wrong length, bad value) leads to.
    let malformedAction: ErrorAction
    let decode: Decoder
    let encode: Encoder

    /// The error a malformed instance raises.
    func malformed(_ subcode: UpdateMessageError, _ reason: String) -> BGPError {
        .update(subcode, malformedAction, "\(name): \(reason)")
    }
}

enum AttributeTable {
    /// Indexed by type code; nil for attributes we do not interpret.
    static let descriptors: [AttributeDescriptor?] = {
        var table = [AttributeDescriptor?](repeating: nil, count: 256)
        for descriptor in all { table[Int(descriptor.type.rawValue)] = descriptor }
        return table
    }()

    static func descriptor(_ type: UInt8) -> AttributeDescriptor? { descriptors[Int(type)] }

    static let all: [AttributeDescriptor] = [
        // RFC 7606 §7.1: a wrong length or an undefined value is treat-as-withdraw.
        AttributeDescriptor(type: .origin, name: "ORIGIN", flags: .wellKnown, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 1 else { throw .update(.attributeLengthError, .treatAsWithdraw, "ORIGIN length \(r.readableBytes)") }
                let value = try r.readUInt8()
                guard let origin = Origin(rawValue: value) else { throw .update(.invalidOriginAttribute, .treatAsWithdraw, "ORIGIN value \(value)") }
                return .origin(origin)
            },
            encode: { a, w, _ in if case .origin(let o) = a { w.writeUInt8(o.rawValue) } }),
        // RFC 7606 §7.2: a malformed AS_PATH is treat-as-withdraw.
        AttributeDescriptor(type: .asPath, name: "AS_PATH", flags: .wellKnown, malformedAction: .treatAsWithdraw,
            decode: { r, c throws(BGPError) in .asPath(try ASPath.decode(from: &r, asnSize: c.fourOctetASN ? 4 : 2)) },
            encode: { a, w, c in if case .asPath(let p) = a { p.encode(into: &w, asnSize: c.fourOctetASN ? 4 : 2) } }),
        // RFC 7606 §7.3: a NEXT_HOP of the wrong length, or one that is not a valid host
        // address (RFC 4271 §6.3: 0.0.0.0, multicast, broadcast), is treat-as-withdraw.
        AttributeDescriptor(type: .nextHop, name: "NEXT_HOP", flags: .wellKnown, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 4 else { throw .update(.attributeLengthError, .treatAsWithdraw, "NEXT_HOP length \(r.readableBytes)") }
                let address = try r.readIPv4()
                guard !address.isUnspecified, !address.isMulticast, address != .broadcast else {
                    throw .update(.invalidNextHopAttribute, .treatAsWithdraw, "NEXT_HOP \(address) is not a host address")
                }
                return .nextHop(address)
            },
            encode: { a, w, _ in if case .nextHop(let n) = a { w.writeIPv4(n) } }),
        // RFC 7606 §7.4.
        AttributeDescriptor(type: .multiExitDiscriminator, name: "MULTI_EXIT_DISC", flags: .optionalNonTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 4 else { throw .update(.attributeLengthError, .treatAsWithdraw, "MED length \(r.readableBytes)") }
                return .multiExitDiscriminator(try r.readUInt32())
            },
            encode: { a, w, _ in if case .multiExitDiscriminator(let v) = a { w.writeUInt32(v) } }),
        // RFC 7606 §7.5.
        AttributeDescriptor(type: .localPreference, name: "LOCAL_PREF", flags: .wellKnown, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 4 else { throw .update(.attributeLengthError, .treatAsWithdraw, "LOCAL_PREF length \(r.readableBytes)") }
                return .localPreference(try r.readUInt32())
            },
            encode: { a, w, _ in if case .localPreference(let v) = a { w.writeUInt32(v) } }),
        // RFC 7606 §7.6: a non-zero length is attribute discard.
        AttributeDescriptor(type: .atomicAggregate, name: "ATOMIC_AGGREGATE", flags: .wellKnown, malformedAction: .discardAttribute,
            decode: { r, _ throws(BGPError) in
                guard r.isEmpty else { throw .update(.attributeLengthError, .discardAttribute, "ATOMIC_AGGREGATE length \(r.readableBytes)") }
                return .atomicAggregate
            },
            encode: { _, _, _ in }),
        // RFC 7606 §7.7: a wrong length (6, or 8 with four-octet ASNs) is attribute discard.
        AttributeDescriptor(type: .aggregator, name: "AGGREGATOR", flags: .optionalTransitive, malformedAction: .discardAttribute,
            decode: { r, c throws(BGPError) in
                let size = c.fourOctetASN ? 8 : 6
                guard r.readableBytes == size else { throw .update(.attributeLengthError, .discardAttribute, "AGGREGATOR length \(r.readableBytes)") }
                let asn = c.fourOctetASN ? try r.readUInt32() : UInt32(try r.readUInt16())
                return .aggregator(Aggregator(asn: asn, address: try r.readIPv4()))
            },
            encode: { a, w, c in
                guard case .aggregator(let g) = a else { return }
                if c.fourOctetASN { w.writeUInt32(g.asn) } else { w.writeUInt16(g.asn > 0xFFFF ? OpenMessage.asTrans : UInt16(g.asn)) }
                w.writeIPv4(g.address)
            }),
        // RFC 7606 §7.8: a length of zero or not a multiple of 4 is treat-as-withdraw.
        AttributeDescriptor(type: .communities, name: "COMMUNITIES", flags: .optionalTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes > 0, r.readableBytes % 4 == 0 else { throw .update(.attributeLengthError, .treatAsWithdraw, "COMMUNITIES length \(r.readableBytes)") }
                var list: [Community] = []
                while !r.isEmpty { list.append(Community(rawValue: try r.readUInt32())) }
                return .communities(list)
            },
            encode: { a, w, _ in if case .communities(let list) = a { for c in list { w.writeUInt32(c.rawValue) } } }),
        // RFC 7606 §7.9.
        AttributeDescriptor(type: .originatorID, name: "ORIGINATOR_ID", flags: .optionalNonTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 4 else { throw .update(.attributeLengthError, .treatAsWithdraw, "ORIGINATOR_ID length \(r.readableBytes)") }
                return .originatorID(try r.readIPv4())
            },
            encode: { a, w, _ in if case .originatorID(let v) = a { w.writeIPv4(v) } }),
        // RFC 7606 §7.10.
        AttributeDescriptor(type: .clusterList, name: "CLUSTER_LIST", flags: .optionalNonTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes > 0, r.readableBytes % 4 == 0 else { throw .update(.attributeLengthError, .treatAsWithdraw, "CLUSTER_LIST length \(r.readableBytes)") }
                var list: [IPv4Address] = []
                while !r.isEmpty { list.append(try r.readIPv4()) }
                return .clusterList(list)
            },
            encode: { a, w, _ in if case .clusterList(let list) = a { for v in list { w.writeIPv4(v) } } }),
        // RFC 7606 §7.11: the NLRI cannot be located reliably, so session reset.
        AttributeDescriptor(type: .mpReachNLRI, name: "MP_REACH_NLRI", flags: .optionalNonTransitive, malformedAction: .resetSession,
            decode: { r, c throws(BGPError) in .mpReachNLRI(try decodeMPReach(from: &r, context: c)) },
            encode: { a, w, c in if case .mpReachNLRI(let m) = a { encodeMPReach(m, into: &w, context: c) } }),
        AttributeDescriptor(type: .mpUnreachNLRI, name: "MP_UNREACH_NLRI", flags: .optionalNonTransitive, malformedAction: .resetSession,
            decode: { r, c throws(BGPError) in .mpUnreachNLRI(try decodeMPUnreach(from: &r, context: c)) },
            encode: { a, w, c in
                guard case .mpUnreachNLRI(let m) = a else { return }
                w.writeUInt16(m.family.afi.rawValue)
                w.writeUInt8(m.family.safi.rawValue)
                let addPath = c.addPath.contains(m.family)
                for n in m.withdrawn { n.encode(into: &w, addPath: addPath) }
                w.writeBytes(m.opaqueNLRI)
            }),
        // RFC 7606 §7.14: a length that is not a multiple of 8 is treat-as-withdraw.
        AttributeDescriptor(type: .extendedCommunities, name: "EXTENDED_COMMUNITIES", flags: .optionalTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes % 8 == 0 else { throw .update(.attributeLengthError, .treatAsWithdraw, "EXTENDED_COMMUNITIES length \(r.readableBytes)") }
                var list: [ExtendedCommunity] = []
                while !r.isEmpty { list.append(ExtendedCommunity(rawValue: try r.readUInt64())) }
                return .extendedCommunities(list)
            },
            encode: { a, w, _ in if case .extendedCommunities(let list) = a { for c in list { w.writeUInt64(c.rawValue) } } }),
        // RFC 6793 §6: a malformed AS4_PATH or AS4_AGGREGATOR is discarded.
        AttributeDescriptor(type: .as4Path, name: "AS4_PATH", flags: .optionalTransitive, malformedAction: .discardAttribute,
            decode: { r, _ throws(BGPError) in .as4Path(try ASPath.decode(from: &r, asnSize: 4)) },
            encode: { a, w, _ in if case .as4Path(let p) = a { p.encode(into: &w, asnSize: 4) } }),
        AttributeDescriptor(type: .as4Aggregator, name: "AS4_AGGREGATOR", flags: .optionalTransitive, malformedAction: .discardAttribute,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes == 8 else { throw .update(.attributeLengthError, .discardAttribute, "AS4_AGGREGATOR length \(r.readableBytes)") }
                return .as4Aggregator(Aggregator(asn: try r.readUInt32(), address: try r.readIPv4()))
            },
            encode: { a, w, _ in
                guard case .as4Aggregator(let g) = a else { return }
                w.writeUInt32(g.asn)
                w.writeIPv4(g.address)
            }),
        // RFC 8092 §11: a length of zero or not a multiple of 12 is treat-as-withdraw.
        AttributeDescriptor(type: .largeCommunities, name: "LARGE_COMMUNITY", flags: .optionalTransitive, malformedAction: .treatAsWithdraw,
            decode: { r, _ throws(BGPError) in
                guard r.readableBytes > 0, r.readableBytes % 12 == 0 else { throw .update(.attributeLengthError, .treatAsWithdraw, "LARGE_COMMUNITY length \(r.readableBytes)") }
                var list: [LargeCommunity] = []
                while !r.isEmpty { list.append(LargeCommunity(try r.readUInt32(), try r.readUInt32(), try r.readUInt32())) }
                return .largeCommunities(list)
            },
            encode: { a, w, _ in
                guard case .largeCommunities(let list) = a else { return }
                for c in list {
                    w.writeUInt32(c.globalAdministrator)
                    w.writeUInt32(c.localData1)
                    w.writeUInt32(c.localData2)
                }
            }),
    ]

    // MARK: - MP_REACH / MP_UNREACH

    static func decodeMPReach(from r: inout ByteReader, context: CodecContext) throws(BGPError) -> MPReachNLRI {
        let malformed = BGPError.update(.optionalAttributeError, .resetSession, "MP_REACH_NLRI is malformed")
        r.underrun = malformed
        let family = AddressFamily(afi: AFI(rawValue: try r.readUInt16()), safi: SAFI(rawValue: try r.readUInt8()))
        let nextHopLength = Int(try r.readUInt8())
        var nh = try r.readSlice(nextHopLength)
        let nextHop: NextHop
        // RFC 7606 §7.11: a next-hop length that does not fit the family makes the NLRI
        // impossible to locate, so session reset. RFC 8950 allows IPv6 next hops for IPv4 NLRI;
        // RFC 2545 §3 allows 32 octets (global + link-local) for IPv6.
        switch (family.ipFamily, nextHopLength) {
        case (.ipv4?, 4):
            nextHop = .ipv4(try nh.readIPv4())
        case (.ipv4?, 16), (.ipv6?, 16):
            nextHop = .ipv6(try nh.readIPv6(), linkLocal: nil)
        case (.ipv4?, 32), (.ipv6?, 32):
            nextHop = .ipv6(try nh.readIPv6(), linkLocal: try nh.readIPv6())
        case (nil, _):
            nextHop = .other(nh.readRemainingBytes())
        default:
            throw .update(.optionalAttributeError, .resetSession, "MP_REACH_NLRI next-hop length \(nextHopLength) for \(family)")
        }
        // RFC 4760 §3: the reserved octet (formerly SNPAs) is ignored.
        try r.skip(1)
        guard let ipFamily = family.ipFamily, family.isSupported else {
            return MPReachNLRI(family: family, nextHop: nextHop, nlri: [], opaqueNLRI: r.readRemainingBytes())
        }
        let invalid = BGPError.update(.optionalAttributeError, .resetSession, "MP_REACH_NLRI prefix is invalid")
        let nlri = try NLRI.decodeAll(from: &r, family: ipFamily, addPath: context.addPath.contains(family), invalid: invalid)
        return MPReachNLRI(family: family, nextHop: nextHop, nlri: nlri)
    }

    static func encodeMPReach(_ m: MPReachNLRI, into w: inout ByteWriter, context: CodecContext) {
        w.writeUInt16(m.family.afi.rawValue)
        w.writeUInt8(m.family.safi.rawValue)
        w.writeUInt8(UInt8(m.nextHop.encodedLength))
        m.nextHop.encode(into: &w)
        w.writeUInt8(0)
        let addPath = context.addPath.contains(m.family)
        for n in m.nlri { n.encode(into: &w, addPath: addPath) }
        w.writeBytes(m.opaqueNLRI)
    }

    static func decodeMPUnreach(from r: inout ByteReader, context: CodecContext) throws(BGPError) -> MPUnreachNLRI {
        r.underrun = .update(.optionalAttributeError, .resetSession, "MP_UNREACH_NLRI is malformed")
        let family = AddressFamily(afi: AFI(rawValue: try r.readUInt16()), safi: SAFI(rawValue: try r.readUInt8()))
        guard let ipFamily = family.ipFamily, family.isSupported else {
            return MPUnreachNLRI(family: family, withdrawn: [], opaqueNLRI: r.readRemainingBytes())
        }
        let invalid = BGPError.update(.optionalAttributeError, .resetSession, "MP_UNREACH_NLRI prefix is invalid")
        return MPUnreachNLRI(family: family, withdrawn: try NLRI.decodeAll(from: &r, family: ipFamily, addPath: context.addPath.contains(family), invalid: invalid))
    }
}

extension PathAttribute {
    /// The flags this attribute is sent with (Extended Length is added by the encoder).
    public var flags: AttributeFlags {
        if case .unknown(let u) = self { return u.flags.subtracting(.extendedLength) }
        return AttributeTable.descriptor(typeCode)?.flags ?? []
    }

    /// Whether the encoder uses the two-octet length: always for MP_REACH/MP_UNREACH, as FRR
    /// and BIRD do, so that a packer can grow them in place; for others only when needed.
    static func defaultExtendedLength(type: UInt8, valueLength: Int) -> Bool {
        type == AttributeType.mpReachNLRI.rawValue || type == AttributeType.mpUnreachNLRI.rawValue || valueLength > 255
    }

    /// Appends the attribute TLV. `extendedLength` forces the Extended Length bit on or off
    /// (ignored when the value does not fit one octet); nil picks the default.
    public func encode(into writer: inout ByteWriter, context: CodecContext, extendedLength: Bool? = nil) {
        var value = ByteWriter(capacity: 32)
        switch self {
        case .unknown(let u): value.writeBytes(u.value)
        default: AttributeTable.descriptor(typeCode)?.encode(self, &value, context)
        }
        var flags = self.flags
        let extended = value.count > 255 || (extendedLength ?? Self.defaultExtendedLength(type: typeCode, valueLength: value.count))
        if extended { flags.insert(.extendedLength) }
        writer.writeUInt8(flags.rawValue)
        writer.writeUInt8(typeCode)
        if extended { writer.writeUInt16(UInt16(truncatingIfNeeded: value.count)) } else { writer.writeUInt8(UInt8(value.count)) }
        writer.writeBytes(value.bytes)
    }
}
