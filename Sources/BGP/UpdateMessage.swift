// UPDATE decoding follows RFC 7606 ("Revised Error Handling for BGP UPDATE Messages"): each
// malformation has exactly one outcome. Session resets are thrown; treat-as-withdraw and
// attribute discard are recorded in `UpdateMessage.errors` and the message is still returned.
//
// Deliberate choices:
// - NLRI with host bits set past the prefix length are accepted with the bits cleared (as BIRD
//   and FRR do) rather than treated as an error.
// - MP_REACH/MP_UNREACH of an AFI/SAFI we do not parse keep their NLRI raw instead of failing.

//  RFC 4271 §4.3:
//  +-----------------------------------------------------+
//  |   Withdrawn Routes Length (2 octets)                |
//  +-----------------------------------------------------+
//  |   Withdrawn Routes (variable)                       |
//  +-----------------------------------------------------+
//  |   Total Path Attribute Length (2 octets)            |
//  +-----------------------------------------------------+
//  |   Path Attributes (variable)                        |
//  +-----------------------------------------------------+
//  |   Network Layer Reachability Information (variable) |
//  +-----------------------------------------------------+

/// RFC 4271 §4.3 UPDATE.
public struct UpdateMessage: Hashable, Sendable {
    /// IPv4 unicast prefixes withdrawn in the classic field.
    public var withdrawnRoutes: [NLRI]
    public var attributes: [PathAttribute]
    /// IPv4 unicast prefixes announced in the classic field.
    public var nlri: [NLRI]
    /// RFC 7606 outcomes other than session reset found while decoding; empty when built locally.
    public var errors: [BGPError]
    /// Attributes (by type code) whose Extended Length bit, as received, differs from the one
    /// this encoder would choose, so that re-encoding a peer's UPDATE reproduces its bytes.
    /// Empty for messages built locally.
    public var extendedLengthOverrides: [UInt8: Bool]

    public init(withdrawnRoutes: [NLRI] = [], attributes: [PathAttribute] = [], nlri: [NLRI] = [], errors: [BGPError] = [],
                extendedLengthOverrides: [UInt8: Bool] = [:]) {
        self.withdrawnRoutes = withdrawnRoutes
        self.attributes = attributes
        self.nlri = nlri
        self.errors = errors
        self.extendedLengthOverrides = extendedLengthOverrides
    }

    /// RFC 7606 §2: the whole UPDATE counts as a withdrawal of everything it announces.
    public var isTreatAsWithdraw: Bool { errors.contains { $0.action == .treatAsWithdraw } }

    /// RFC 4724 §2: the End-of-RIB marker of the family, if this UPDATE is one.
    public var endOfRIB: AddressFamily? {
        if withdrawnRoutes.isEmpty, attributes.isEmpty, nlri.isEmpty { return .ipv4Unicast }
        if withdrawnRoutes.isEmpty, nlri.isEmpty, attributes.count == 1, case .mpUnreachNLRI(let m) = attributes[0],
           m.withdrawn.isEmpty, m.opaqueNLRI.isEmpty {
            return m.family
        }
        return nil
    }

    /// The routes this UPDATE announces, per family (none when treat-as-withdraw applies).
    public var announced: [NLRI] {
        guard !isTreatAsWithdraw else { return [] }
        return nlri + (attributes.mpReachNLRI?.nlri ?? [])
    }

    /// The routes this UPDATE withdraws, including, under treat-as-withdraw, those it announces.
    public var withdrawn: [NLRI] {
        var list = withdrawnRoutes + (attributes.mpUnreachNLRI?.withdrawn ?? [])
        if isTreatAsWithdraw { list += nlri + (attributes.mpReachNLRI?.nlri ?? []) }
        return list
    }

    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI for the others.
    public static func endOfRIB(_ family: AddressFamily) -> UpdateMessage {
        if family == .ipv4Unicast { return UpdateMessage() }
        return UpdateMessage(attributes: [.mpUnreachNLRI(MPUnreachNLRI(family: family, withdrawn: []))])
    }

    // MARK: - Decoding

    static func decode(from reader: inout ByteReader, context: CodecContext) throws(BGPError) -> UpdateMessage {
        // RFC 4271 §6.3: lengths that do not fit the message are Malformed Attribute List.
        let malformedList = BGPError.update(.malformedAttributeList, .resetSession, "withdrawn or attribute length overruns the UPDATE")
        reader.underrun = malformedList
        let withdrawnLength = Int(try reader.readUInt16())
        var withdrawnReader = try reader.readSlice(withdrawnLength)
        let attributesLength = Int(try reader.readUInt16())
        var attributeReader = try reader.readSlice(attributesLength)
        var nlriReader = reader
        reader = ByteReader([], underrun: malformedList)

        // RFC 7606 §5.3: NLRI that cannot be parsed leave no choice but session reset.
        let v4AddPath = context.addPath.contains(.ipv4Unicast)
        let withdrawn = try NLRI.decodeAll(from: &withdrawnReader, family: .ipv4, addPath: v4AddPath,
                                           invalid: .update(.invalidNetworkField, .resetSession, "withdrawn route has an invalid prefix"))
        var update = UpdateMessage(withdrawnRoutes: withdrawn)
        try update.decodeAttributes(from: &attributeReader, context: context)
        update.nlri = try NLRI.decodeAll(from: &nlriReader, family: .ipv4, addPath: v4AddPath,
                                         invalid: .update(.invalidNetworkField, .resetSession, "NLRI has an invalid prefix"))
        update.checkMandatoryAttributes()
        return update
    }

    private mutating func decodeAttributes(from reader: inout ByteReader, context: CodecContext) throws(BGPError) {
        var seen = [Bool](repeating: false, count: 256)
        while !reader.isEmpty {
            let start = reader.readerIndex
            // RFC 7606 §4: too few octets for an attribute header, or a length past the end of
            // the attribute block: treat-as-withdraw, and the Total Attribute Length still
            // locates the NLRI.
            guard reader.readableBytes >= 3,
                  let flagsOctet = reader.peekUInt8(), let type = reader.peekUInt8(at: 1) else {
                errors.append(.update(.malformedAttributeList, .treatAsWithdraw, "\(reader.readableBytes) octets left, too few for an attribute"))
                return
            }
            let flags = AttributeFlags(rawValue: flagsOctet)
            let extended = flags.contains(.extendedLength)
            guard reader.readableBytes >= (extended ? 4 : 3) else {
                errors.append(.update(.malformedAttributeList, .treatAsWithdraw, "attribute \(type) header truncated"))
                return
            }
            try reader.skip(2)
            let length = extended ? Int(try reader.readUInt16()) : Int(try reader.readUInt8())
            guard length <= reader.readableBytes else {
                errors.append(.update(.attributeLengthError, .treatAsWithdraw,
                                      data: reader.bytes(from: start, to: reader.endIndex),
                                      "attribute \(type) length \(length) overruns the attribute block"))
                return
            }
            let descriptor = AttributeTable.descriptor(type)
            var value = try reader.readSlice(length, underrun: .update(.attributeLengthError, descriptor?.malformedAction ?? .treatAsWithdraw, "attribute \(type) is too short"))
            // RFC 4271 §6.3: the Data field of an attribute error is the whole attribute.
            let attributeBytes = reader.bytes(from: start, to: reader.readerIndex)

            // RFC 7606 §3: a repeated MP_REACH/MP_UNREACH is a session reset; any other
            // repeat is discarded, keeping the first.
            if seen[Int(type)] {
                if type == AttributeType.mpReachNLRI.rawValue || type == AttributeType.mpUnreachNLRI.rawValue {
                    throw .update(.malformedAttributeList, .resetSession, "\(descriptor?.name ?? "attribute") appears twice")
                }
                errors.append(.update(.malformedAttributeList, .discardAttribute, data: attributeBytes,
                                      "duplicate attribute \(descriptor?.name ?? String(type)) discarded"))
                continue
            }
            seen[Int(type)] = true

            guard let descriptor else {
                // RFC 4271 §6.3: an unrecognised well-known attribute is an error we cannot
                // route around.
                guard flags.contains(.optional) else {
                    throw .update(.unrecognizedWellKnownAttribute, .resetSession, data: attributeBytes, "unrecognised well-known attribute \(type)")
                }
                // RFC 4271 §5: unknown optional transitive attributes are kept (and passed on
                // with Partial set); unknown optional non-transitive ones are dropped quietly.
                if flags.contains(.transitive) {
                    attributes.append(.unknown(UnknownAttribute(flags: flags.subtracting(.extendedLength), typeCode: type, value: value.readRemainingBytes())))
                    noteExtendedLength(extended, type: type, length: length)
                }
                continue
            }

            // RFC 7606 §3: Optional/Transitive bits that contradict the attribute's definition
            // make it malformed, with the attribute's own RFC 7606 action.
            let significant: AttributeFlags = [.optional, .transitive]
            guard flags.intersection(significant) == descriptor.flags.intersection(significant) else {
                var error = descriptor.malformed(.attributeFlagsError, "flags 0x\(String(flagsOctet, radix: 16)) are wrong")
                error.data = attributeBytes
                if error.action == .resetSession { throw error }
                errors.append(error)
                continue
            }
            do throws(BGPError) {
                attributes.append(try descriptor.decode(&value, context))
                // Every decoder consumes its value exactly; trailing bytes are a length error.
                if !value.isEmpty {
                    attributes.removeLast()
                    throw descriptor.malformed(.attributeLengthError, "\(value.readableBytes) trailing octets")
                }
                noteExtendedLength(extended, type: type, length: length)
            } catch {
                var error = error
                // RFC 7606 §7: the attribute decides the action; the decoder picks the subcode.
                error.action = descriptor.malformedAction
                if error.data.isEmpty { error.data = attributeBytes }
                if error.action == .resetSession { throw error }
                errors.append(error)
            }
        }
    }

    private mutating func noteExtendedLength(_ extended: Bool, type: UInt8, length: Int) {
        if extended != PathAttribute.defaultExtendedLength(type: type, valueLength: length) {
            extendedLengthOverrides[type] = extended
        }
    }

    /// RFC 7606 §3: an UPDATE that announces routes without ORIGIN, AS_PATH, or (for the
    /// classic NLRI field) NEXT_HOP is treat-as-withdraw, not a reset.
    private mutating func checkMandatoryAttributes() {
        let mp = attributes.mpReachNLRI
        let announces = !nlri.isEmpty || !(mp?.nlri.isEmpty ?? true) || !(mp?.opaqueNLRI.isEmpty ?? true)
        guard announces else { return }
        var missing: [AttributeType] = []
        if attributes.origin == nil { missing.append(.origin) }
        if attributes.asPath == nil { missing.append(.asPath) }
        if !nlri.isEmpty, attributes.nextHop == nil { missing.append(.nextHop) }
        for type in missing {
            // RFC 4271 §6.3: the Data field is the type code of the missing attribute.
            errors.append(.update(.missingWellKnownAttribute, .treatAsWithdraw, data: [type.rawValue],
                                  "missing well-known attribute \(AttributeTable.descriptor(type.rawValue)?.name ?? "")"))
        }
    }

    // MARK: - Encoding

    func encode(into writer: inout ByteWriter, context: CodecContext) {
        let v4AddPath = context.addPath.contains(.ipv4Unicast)
        let withdrawnPosition = writer.reserveLength16()
        for n in withdrawnRoutes { n.encode(into: &writer, addPath: v4AddPath) }
        writer.patchLength16(at: withdrawnPosition)
        let attributesPosition = writer.reserveLength16()
        for attribute in attributes {
            attribute.encode(into: &writer, context: context, extendedLength: extendedLengthOverrides[attribute.typeCode])
        }
        writer.patchLength16(at: attributesPosition)
        for n in nlri { n.encode(into: &writer, addPath: v4AddPath) }
    }
}
