public import IP

/// Why a set of routes could not be packed.
public enum UpdatePackingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The shared attributes leave no room for even one prefix in a message of this size.
    case attributesTooLarge(attributeOctets: Int, maxMessageLength: Int)
    /// An IPv4 prefix with an IPv6 next hop needs RFC 8950 extended next hop, or the families differ.
    case nextHopFamilyMismatch(prefix: IPPrefix, nextHop: NextHop)

    public var description: String {
        switch self {
        case .attributesTooLarge(let a, let m): "path attributes take \(a) octets; no prefix fits in a \(m)-octet UPDATE"
        case .nextHopFamilyMismatch(let p, let n): "prefix \(p) cannot use next hop \(n)"
        }
    }
}

/// Packs many prefixes that share one attribute set into as few UPDATE messages as the
/// negotiated maximum size allows: IPv4 unicast in the classic NLRI field (with a NEXT_HOP),
/// everything else in MP_REACH_NLRI, which RFC 7606 §5.1 asks to be the first attribute.
/// Withdrawals are packed the same way (classic Withdrawn Routes, or MP_UNREACH_NLRI).
public struct UpdatePacker: Sendable {
    public var context: CodecContext
    /// RFC 8950: IPv4 prefixes may be sent with an IPv6 next hop (in MP_REACH_NLRI).
    public var extendedNextHopForIPv4: Bool

    public init(context: CodecContext, extendedNextHopForIPv4: Bool = false) {
        self.context = context
        self.extendedNextHopForIPv4 = extendedNextHopForIPv4
    }

    public init(parameters: SessionParameters) {
        self.init(context: parameters.sendContext,
                  extendedNextHopForIPv4: parameters.extendedNextHop.contains(ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)))
    }

    /// Encoded UPDATE messages announcing `prefixes` (all of one family) with `attributes` and
    /// `nextHop`. NEXT_HOP, MP_REACH_NLRI and MP_UNREACH_NLRI in `attributes` are ignored: the
    /// packer writes its own. Attributes are written in type-code order (RFC 4271 §5). For a
    /// peer without four-octet AS numbers, AS4_PATH / AS4_AGGREGATOR are added as needed.
    public func announcements(_ prefixes: [NLRI], attributes: [PathAttribute], nextHop: NextHop) throws(UpdatePackingError) -> [[UInt8]] {
        guard let first = prefixes.first else { return [] }
        let ipFamily = first.prefix.family
        let family = AddressFamily.unicast(ipFamily)
        for n in prefixes where n.prefix.family != ipFamily {
            throw .nextHopFamilyMismatch(prefix: n.prefix, nextHop: nextHop)
        }
        var shared = attributes.filter {
            switch $0 {
            case .nextHop, .mpReachNLRI, .mpUnreachNLRI: false
            default: true
            }
        }
        // RFC 6793 §4.2.2: a two-octet peer gets AS_TRANS in AS_PATH/AGGREGATOR and the real
        // path in AS4_PATH/AS4_AGGREGATOR.
        if !context.fourOctetASN { shared = shared.addingAS4Attributes() }
        let addPath = context.addPath.contains(family)

        if ipFamily == .ipv4, case .ipv4(let address) = nextHop {
            shared.append(.nextHop(address))
            let attributeBytes = encodeSorted(shared)
            // Header, Withdrawn Routes Length, Total Path Attribute Length.
            let fixed = BGPHeader.length + 2 + 2 + attributeBytes.count
            return try fill(prefixes, fixed: fixed, addPath: addPath, attributeOctets: attributeBytes.count) { writer, slice in
                writer.writeUInt16(0)
                writer.writeUInt16(UInt16(attributeBytes.count))
                writer.writeBytes(attributeBytes)
                for n in slice { n.encode(into: &writer, addPath: addPath) }
            }
        }

        let usable = switch (ipFamily, nextHop) {
        case (.ipv6, .ipv6): true
        case (.ipv4, .ipv6): extendedNextHopForIPv4
        default: false
        }
        guard usable else { throw .nextHopFamilyMismatch(prefix: first.prefix, nextHop: nextHop) }
        let attributeBytes = encodeSorted(shared)
        // MP_REACH_NLRI: flags, type, 2-octet length, AFI, SAFI, next-hop length, next hop, reserved.
        let mpHeader = 4 + 3 + 1 + nextHop.encodedLength + 1
        let fixed = BGPHeader.length + 2 + 2 + mpHeader + attributeBytes.count
        return try fill(prefixes, fixed: fixed, addPath: addPath, attributeOctets: attributeBytes.count + mpHeader) { writer, slice in
            let lengths = Self.beginMultiprotocol(.mpReachNLRI, family, into: &writer)
            writer.writeUInt8(UInt8(nextHop.encodedLength))
            nextHop.encode(into: &writer)
            writer.writeUInt8(0)
            for n in slice { n.encode(into: &writer, addPath: addPath) }
            writer.patchLength16(at: lengths.attribute)
            writer.writeBytes(attributeBytes)
            writer.patchLength16(at: lengths.attributes)
        }
    }

    /// Encoded UPDATE messages withdrawing `prefixes` (either family; IPv4 first).
    public func withdrawals(_ prefixes: [NLRI]) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        let v4 = prefixes.filter { $0.prefix.family == .ipv4 }
        let v6 = prefixes.filter { $0.prefix.family == .ipv6 }
        if !v4.isEmpty {
            let addPath = context.addPath.contains(.ipv4Unicast)
            // Header, Withdrawn Routes Length, Total Path Attribute Length (0).
            messages += (try? fill(v4, fixed: BGPHeader.length + 4, addPath: addPath, attributeOctets: 0) { writer, slice in
                let length = writer.reserveLength16()
                for n in slice { n.encode(into: &writer, addPath: addPath) }
                writer.patchLength16(at: length)
                writer.writeUInt16(0)
            }) ?? []
        }
        if !v6.isEmpty {
            let addPath = context.addPath.contains(.ipv6Unicast)
            // Header, two length fields, MP_UNREACH_NLRI header (flags, type, length, AFI, SAFI).
            messages += (try? fill(v6, fixed: BGPHeader.length + 4 + 7, addPath: addPath, attributeOctets: 7) { writer, slice in
                let lengths = Self.beginMultiprotocol(.mpUnreachNLRI, .ipv6Unicast, into: &writer)
                for n in slice { n.encode(into: &writer, addPath: addPath) }
                writer.patchLength16(at: lengths.attribute)
                writer.patchLength16(at: lengths.attributes)
            }) ?? []
        }
        return messages
    }

    /// The RFC 4724 §2 End-of-RIB marker for `family`.
    public func endOfRIB(_ family: AddressFamily) -> [UInt8] {
        BGPMessage.update(.endOfRIB(family)).encoded(context: context)
    }

    // MARK: - Internals

    /// The start of an UPDATE whose prefixes travel in MP_REACH_NLRI or MP_UNREACH_NLRI
    /// (RFC 4760 §3, §4), written first (RFC 7606 §5.1): an empty Withdrawn Routes field, the
    /// Total Path Attribute Length, then the attribute's flags, type, length, AFI and SAFI. Both
    /// lengths are reserved; the caller patches them once the attribute and the rest are written.
    private static func beginMultiprotocol(_ type: AttributeType, _ family: AddressFamily,
                                           into writer: inout ByteWriter) -> (attributes: Int, attribute: Int) {
        writer.writeUInt16(0)
        let attributes = writer.reserveLength16()
        writer.writeUInt8(AttributeFlags([.optional, .extendedLength]).rawValue)
        writer.writeUInt8(type.rawValue)
        let attribute = writer.reserveLength16()
        writer.writeUInt16(family.afi.rawValue)
        writer.writeUInt8(family.safi.rawValue)
        return (attributes, attribute)
    }

    private func encodeSorted(_ attributes: [PathAttribute]) -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        for attribute in attributes.sorted(by: { $0.typeCode < $1.typeCode }) {
            attribute.encode(into: &writer, context: context)
        }
        return writer.bytes
    }

    /// Splits `prefixes` into runs that fit `maxMessageLength` after `fixed` octets and writes
    /// one message per run with `body`.
    private func fill(_ prefixes: [NLRI], fixed: Int, addPath: Bool, attributeOctets: Int,
                      body: (inout ByteWriter, ArraySlice<NLRI>) -> Void) throws(UpdatePackingError) -> [[UInt8]] {
        let max = context.maxMessageLength
        var largest = 0
        for n in prefixes { largest = Swift.max(largest, n.encodedLength(addPath: addPath)) }
        guard fixed + largest <= max else {
            throw .attributesTooLarge(attributeOctets: attributeOctets, maxMessageLength: max)
        }
        var messages: [[UInt8]] = []
        var start = prefixes.startIndex
        while start < prefixes.endIndex {
            var size = fixed
            var end = start
            while end < prefixes.endIndex {
                let next = prefixes[end].encodedLength(addPath: addPath)
                if size + next > max { break }
                size += next
                end += 1
            }
            var writer = ByteWriter(capacity: size)
            let position = BGPHeader.begin(.update, into: &writer)
            body(&writer, prefixes[start..<end])
            BGPHeader.finish(at: position, into: &writer)
            messages.append(writer.bytes)
            start = end
        }
        return messages
    }
}
