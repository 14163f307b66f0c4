import TestSupport
import Testing
@testable import BGP
import IP

/// Random valid messages, from a seeded generator so that a failure names its seed and repeats.
struct MessageGenerator {
    var rng: SeededGenerator
    let context: CodecContext

    init(seed: UInt64) {
        rng = SeededGenerator(seed: seed)
        var tmp = SeededGenerator(seed: seed ^ 0x5555)
        let addPath: Set<AddressFamily> = Set([AddressFamily.ipv4Unicast, .ipv6Unicast].filter { _ in Bool.random(using: &tmp) })
        context = CodecContext(fourOctetASN: Bool.random(using: &tmp), addPath: addPath, maxMessageLength: 65535)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func u8() -> UInt8 { UInt8.random(in: 0...255, using: &rng) }
    mutating func u16() -> UInt16 { UInt16.random(in: 0...UInt16.max, using: &rng) }
    mutating func u32() -> UInt32 { UInt32.random(in: 0...UInt32.max, using: &rng) }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func bytes(_ range: ClosedRange<Int>) -> [UInt8] { (0..<int(range)).map { _ in u8() } }
    mutating func asn() -> UInt32 { context.fourOctetASN ? u32() : UInt32(u16()) }

    mutating func message() -> BGPMessage {
        switch int(0...4) {
        case 0: .open(open())
        case 1: .update(update())
        case 2: .notification(NotificationMessage(code: u8(), subcode: u8(), data: bytes(0...40)))
        case 3: .keepalive
        default: .routeRefresh(RouteRefreshMessage(family: AddressFamily(afi: AFI(rawValue: u16()), safi: SAFI(rawValue: u8())), subtype: .init(rawValue: u8())))
        }
    }

    mutating func family() -> AddressFamily { bool() ? .ipv4Unicast : .ipv6Unicast }

    mutating func capability() -> Capability {
        switch int(0...9) {
        case 0: return .multiprotocol(AddressFamily(afi: AFI(rawValue: u16()), safi: SAFI(rawValue: u8())))
        case 1: return .routeRefresh
        case 2: return .extendedNextHop((0..<int(0...3)).map { _ in ExtendedNextHopEntry(family: AddressFamily(afi: AFI(rawValue: u16()), safi: SAFI(rawValue: u8())), nextHopAFI: AFI(rawValue: u16())) })
        case 3: return .extendedMessage
        case 4: return .gracefulRestart(GracefulRestart(restarting: bool(), notificationSupport: bool(), restartTime: u16() & 0xFFF,
                                                         families: (0..<int(0...3)).map { _ in .init(family(), forwardingPreserved: bool()) }))
        case 5: return .fourOctetASN(u32())
        case 6:
            var map: [AddressFamily: AddPathDirection] = [:]
            for _ in 0..<int(0...2) { map[family()] = AddPathDirection(rawValue: UInt8(int(1...3))) }
            return .addPath(map)
        case 7: return .enhancedRouteRefresh
        case 8: return .fqdn(hostname: String((0..<int(0...20)).map { _ in Character(UnicodeScalar(UInt8(int(97...122)))) }), domain: bool() ? "example.net" : "")
        default:
            var code = u8()
            while CapabilityCode(rawValue: code) != nil { code = u8() }
            return .unknown(code: code, value: bytes(0...10))
        }
    }

    mutating func open() -> OpenMessage {
        var parameters: [OpenMessage.Parameter] = []
        for _ in 0..<int(0...3) {
            if int(0...5) == 0 {
                var type = u8()
                if type == 2 { type = 3 }
                parameters.append(.unknown(type: type, value: bytes(0...8)))
            } else {
                parameters.append(.capabilities((0..<int(0...4)).map { _ in capability() }))
            }
        }
        return OpenMessage(myAutonomousSystem: u16(), holdTime: u16(), bgpIdentifier: IPv4Address(u32()), parameters: parameters,
                           usesExtendedParameterLength: bool())
    }

    mutating func prefixes(_ family: IPFamily, pathIDs: Bool, count: ClosedRange<Int>) -> [NLRI] {
        (0..<int(count)).map { _ in
            let address: IPAddress = family == .ipv4 ? .v4(IPv4Address(u32())) : .v6(IPv6Address(UInt128(u32()) << 96 | UInt128(u32()) << 64 | UInt128(u32())))
            return NLRI(IPPrefix(truncating: address, length: int(0...family.bitWidth)), pathID: pathIDs ? u32() : nil)
        }
    }

    mutating func path() -> ASPath {
        ASPath((0..<int(0...3)).map { _ in ASPath.Segment(ASPath.SegmentType(rawValue: UInt8(int(1...4)))!, (0..<int(1...10)).map { _ in asn() }) })
    }

    mutating func update() -> UpdateMessage {
        let v4AddPath = context.addPath.contains(.ipv4Unicast), v6AddPath = context.addPath.contains(.ipv6Unicast)
        let withdrawn = prefixes(.ipv4, pathIDs: v4AddPath, count: 0...20)
        let nlri = prefixes(.ipv4, pathIDs: v4AddPath, count: 0...20)
        var attributes: [PathAttribute] = []
        let includeMP = bool()
        let mustHaveBasics = !nlri.isEmpty || includeMP
        if mustHaveBasics || bool() { attributes.append(.origin(Origin(rawValue: UInt8(int(0...2)))!)) }
        if mustHaveBasics || bool() { attributes.append(.asPath(path())) }
        if !nlri.isEmpty || bool() { attributes.append(.nextHop(IPv4Address(0x6440_0000 | u32() & 0x003F_FFFF))) }  // 100.64.0.0/10
        if bool() { attributes.append(.multiExitDiscriminator(u32())) }
        if bool() { attributes.append(.localPreference(u32())) }
        if bool() { attributes.append(.atomicAggregate) }
        if bool() { attributes.append(.aggregator(Aggregator(asn: asn(), address: IPv4Address(u32())))) }
        if bool() { attributes.append(.communities((0..<int(1...10)).map { _ in Community(rawValue: u32()) })) }
        if bool() { attributes.append(.originatorID(IPv4Address(u32()))) }
        if bool() { attributes.append(.clusterList((0..<int(1...4)).map { _ in IPv4Address(u32()) })) }
        if includeMP {
            let nextHop: NextHop = bool() ? .ipv6(IPv6Address(UInt128(u32()) << 96), linkLocal: nil) : .ipv6(IPv6Address(UInt128(u32())), linkLocal: IPv6Address(0xfe80 << 112 | UInt128(u32())))
            attributes.append(.mpReachNLRI(MPReachNLRI(family: .ipv6Unicast, nextHop: nextHop, nlri: prefixes(.ipv6, pathIDs: v6AddPath, count: 1...20))))
        }
        if bool() { attributes.append(.mpUnreachNLRI(MPUnreachNLRI(family: .ipv6Unicast, withdrawn: prefixes(.ipv6, pathIDs: v6AddPath, count: 0...20)))) }
        if bool() { attributes.append(.extendedCommunities((0..<int(0...5)).map { _ in ExtendedCommunity(rawValue: UInt64(u32()) << 32 | UInt64(u32())) })) }
        if bool() { attributes.append(.as4Path(ASPath((0..<int(0...2)).map { _ in ASPath.Segment(bool() ? .sequence : .set, (0..<int(1...5)).map { _ in u32() }) }))) }
        if bool() { attributes.append(.as4Aggregator(Aggregator(asn: u32(), address: IPv4Address(u32())))) }
        if bool() { attributes.append(.largeCommunities((0..<int(1...5)).map { _ in LargeCommunity(u32(), u32(), u32()) })) }
        if bool() {
            let known = Set(AttributeType.allCases.map(\.rawValue))
            var type = u8()
            while known.contains(type) { type = u8() }
            attributes.append(.unknown(UnknownAttribute(flags: bool() ? [.optional, .transitive, .partial] : [.optional, .transitive], typeCode: type, value: bytes(0...300))))
        }
        // Any order is valid on the wire.
        attributes.shuffle(using: &rng)
        return UpdateMessage(withdrawnRoutes: withdrawn, attributes: attributes, nlri: nlri)
    }
}

@Suite struct PropertyTests {
    @Test(arguments: 0..<8)
    func decodeOfEncodeIsIdentity(_ batch: Int) throws {
        for index in 0..<400 {
            let seed = UInt64(batch * 1000 + index)
            var generator = MessageGenerator(seed: seed)
            let value = generator.message()
            let bytes = value.encoded(context: generator.context)
            let decoded = try BGPMessage.decode(bytes, context: generator.context)
            #expect(decoded == value, "seed \(seed)")
            #expect(decoded.encoded(context: generator.context) == bytes, "seed \(seed)")
        }
    }

    @Test(arguments: 0..<4)
    func randomBytesNeverTrap(_ batch: Int) {
        var rng = SeededGenerator(seed: 0xB6B0_0000 + UInt64(batch))
        let contexts = [CodecContext.initial, CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast, .ipv6Unicast], maxMessageLength: 65535)]
        for _ in 0..<5000 {
            let count = Int.random(in: 0...200, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Mostly a valid header, so the decoders behind it get exercised.
            if count >= 19, Int.random(in: 0...9, using: &rng) > 0 {
                for i in 0..<16 { bytes[i] = 0xFF }
                bytes[16] = UInt8(count >> 8)
                bytes[17] = UInt8(count & 0xFF)
                bytes[18] = UInt8.random(in: 1...5, using: &rng)
            }
            for context in contexts {
                _ = try? MessageFraming.nextMessageLength(in: bytes, maxMessageLength: context.maxMessageLength)
                _ = try? BGPMessage.decode(bytes, context: context)
            }
        }
    }

    /// Valid messages with a few bytes changed: never a trap, and anything accepted without
    /// RFC 7606 errors re-encodes to a message that decodes to the same value.
    @Test(arguments: 0..<4)
    func mutatedMessagesNeverTrapAndAreStable(_ batch: Int) throws {
        for index in 0..<1500 {
            let seed = UInt64(100_000 + batch * 10_000 + index)
            var generator = MessageGenerator(seed: seed)
            var bytes = generator.message().encoded(context: generator.context)
            for _ in 0..<generator.int(1...4) {
                let position = generator.int(19...max(19, bytes.count - 1))
                if position < bytes.count { bytes[position] = generator.u8() }
            }
            guard let decoded = try? BGPMessage.decode(bytes, context: generator.context) else { continue }
            if case .update(let u) = decoded, !u.errors.isEmpty { continue }
            let again = try BGPMessage.decode(decoded.encoded(context: generator.context), context: generator.context)
            #expect(again == decoded, "seed \(seed)")
        }
    }
}
