import TestSupport
import Testing
@testable import BGP
import IP

@Suite struct UpdatePackerTests {
    let attributes: [PathAttribute] = [
        .communities([.noExport]), .origin(.igp), .asPath(.sequence([65001])), .localPreference(100),
    ]

    func hosts(_ count: Int, from base: UInt32 = 0x0A00_0000) -> [NLRI] {
        (0..<UInt32(count)).map { NLRI(IPPrefix(host: .v4(IPv4Address(base + $0)))) }
    }

    func decodeAll(_ messages: [[UInt8]], context: CodecContext) throws -> [UpdateMessage] {
        try messages.map { bytes in
            guard case .update(let u) = try BGPMessage.decode(bytes, context: context) else { throw BGPError.header(.badMessageType) }
            return u
        }
    }

    @Test func smallIPv4AnnouncementVector() throws {
        let packer = UpdatePacker(context: CodecContext(fourOctetASN: true))
        let messages = try packer.announcements([nlri("192.0.2.0/24"), nlri("198.51.100.1/32")], attributes: attributes, nextHop: .ipv4(v4("192.0.2.1")))
        #expect(messages.count == 1)
        // Attributes in type-code order: ORIGIN, AS_PATH, NEXT_HOP, LOCAL_PREF, COMMUNITIES.
        #expect(messages[0].hexString == update(attributes: """
            40 01 01 00  40 02 06 02 01 0000fde9  40 03 04 c0000201  40 05 04 00000064  c0 08 04 ffffff01
            """, nlri: "18 c00002 20 c6336401").hexString)
    }

    @Test func fillsMessagesUpToTheMaximum() throws {
        let context = CodecContext(fourOctetASN: true)
        let packer = UpdatePacker(context: context)
        let prefixes = hosts(10_000)
        let messages = try packer.announcements(prefixes, attributes: attributes, nextHop: .ipv4(v4("192.0.2.1")))
        // Each message is full: another 5-octet /32 would not fit.
        for bytes in messages.dropLast() { #expect(bytes.count <= 4096 && bytes.count > 4096 - 5) }
        let decoded = try decodeAll(messages, context: context)
        #expect(decoded.flatMap(\.nlri) == prefixes)
        for u in decoded {
            #expect(u.errors.isEmpty)
            #expect(u.attributes.nextHop == v4("192.0.2.1"))
            #expect(u.attributes.communities == [.noExport])
        }
        // 4096 − 23 − 42 octets of attributes = 4031 octets → 806 /32s per message.
        #expect(messages.count == (10_000 + 805) / 806)
    }

    @Test func extendedMessagesPackMore() throws {
        let context = CodecContext(fourOctetASN: true, maxMessageLength: 65535)
        let messages = try UpdatePacker(context: context).announcements(hosts(20_000), attributes: attributes, nextHop: .ipv4(v4("192.0.2.1")))
        #expect(messages.count == 2)
        #expect(messages[0].count > 60_000)
        #expect(try decodeAll(messages, context: context).flatMap(\.nlri) == hosts(20_000))
    }

    @Test func ipv6GoesInMPReachFirst() throws {
        let context = CodecContext(fourOctetASN: true)
        let prefixes = (0..<2000).map { NLRI(IPPrefix(truncating: .v6(IPv6Address(0x2001_0db8 << 96 | UInt128($0) << 64)), length: 64)) }
        let nextHop = NextHop.ipv6(v6("2001:db8::1"), linkLocal: v6("fe80::1"))
        let messages = try UpdatePacker(context: context).announcements(prefixes, attributes: attributes, nextHop: nextHop)
        #expect(messages.count > 1)
        for bytes in messages { #expect(bytes.count <= 4096) }
        let decoded = try decodeAll(messages, context: context)
        #expect(decoded.flatMap { $0.attributes.mpReachNLRI?.nlri ?? [] } == prefixes)
        for u in decoded {
            #expect(u.errors.isEmpty)
            guard case .mpReachNLRI(let mp) = u.attributes.first else { Issue.record("MP_REACH_NLRI is not first"); continue }
            #expect(mp.nextHop == nextHop)
            #expect(u.attributes.origin == .igp && u.nlri.isEmpty)
        }
    }

    @Test func ipv4WithIPv6NextHopNeedsExtendedNextHop() throws {
        let prefixes = [nlri("192.0.2.0/24")]
        let nextHop = NextHop.ipv6(v6("2001:db8::1"), linkLocal: nil)
        #expect(throws: UpdatePackingError.nextHopFamilyMismatch(prefix: prefix("192.0.2.0/24"), nextHop: nextHop)) {
            _ = try UpdatePacker(context: .init(fourOctetASN: true)).announcements(prefixes, attributes: attributes, nextHop: nextHop)
        }
        let messages = try UpdatePacker(context: .init(fourOctetASN: true), extendedNextHopForIPv4: true).announcements(prefixes, attributes: attributes, nextHop: nextHop)
        let u = try decodeAll(messages, context: .init(fourOctetASN: true))[0]
        #expect(u.attributes.mpReachNLRI == MPReachNLRI(family: .ipv4Unicast, nextHop: nextHop, nlri: prefixes))
    }

    @Test func addPathIdentifiersArePacked() throws {
        let context = CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast])
        let prefixes = (1...3000).map { NLRI(prefix("198.51.100.1/32"), pathID: UInt32($0)) }
        let messages = try UpdatePacker(context: context).announcements(prefixes, attributes: attributes, nextHop: .ipv4(v4("192.0.2.1")))
        for bytes in messages.dropLast() { #expect(bytes.count > 4096 - 9) }
        #expect(try decodeAll(messages, context: context).flatMap(\.nlri) == prefixes)
    }

    @Test func withdrawalsOfBothFamilies() throws {
        let context = CodecContext(fourOctetASN: true)
        let v4 = hosts(3000)
        let v6list = (0..<500).map { NLRI(IPPrefix(truncating: .v6(IPv6Address(0x2001_0db8 << 96 | UInt128($0))), length: 128)) }
        let messages = UpdatePacker(context: context).withdrawals(v4 + v6list)
        for bytes in messages { #expect(bytes.count <= 4096) }
        let decoded = try decodeAll(messages, context: context)
        #expect(decoded.flatMap(\.withdrawn) == v4 + v6list)
        #expect(decoded.allSatisfy { $0.announced.isEmpty && $0.errors.isEmpty })
        #expect(UpdatePacker(context: context).withdrawals([nlri("192.0.2.0/24")]) == [update(withdrawn: "18 c00002")])
    }

    @Test func endOfRIB() throws {
        let packer = UpdatePacker(context: .init(fourOctetASN: true))
        #expect(packer.endOfRIB(.ipv4Unicast).hexString == update().hexString)
        #expect(packer.endOfRIB(.ipv6Unicast).hexString == update(attributes: "90 0f 0003 0002 01").hexString)
    }

    @Test func twoOctetPeerGetsASTransAndAS4Path() throws {
        let packer = UpdatePacker(context: .initial)
        let attributes: [PathAttribute] = [.origin(.igp), .asPath(.sequence([4_200_000_000, 65001]))]
        let messages = try packer.announcements([nlri("192.0.2.0/24")], attributes: attributes, nextHop: .ipv4(v4("192.0.2.1")))
        #expect(messages == [update(attributes: "40 01 01 00  40 02 06 02 02 5ba0 fde9  40 03 04 c0000201  c0 11 0a 02 02 fa56ea00 0000fde9", nlri: "18 c00002")])
        guard case .update(let u) = try BGPMessage.decode(messages[0]) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.reconcilingAS4Attributes().asPath == .sequence([4_200_000_000, 65001]))
        // A path that fits two octets needs no AS4_PATH.
        let plain = try packer.announcements([nlri("192.0.2.0/24")], attributes: [.origin(.igp), .asPath(.sequence([65001]))], nextHop: .ipv4(v4("192.0.2.1")))
        #expect(plain == [update(attributes: "40 01 01 00  40 02 04 02 01 fde9  40 03 04 c0000201", nlri: "18 c00002")])
    }

    @Test func attributesTooLarge() {
        let huge: [PathAttribute] = [.origin(.igp), .asPath(.sequence([65001])), .communities((0..<1100).map { Community(rawValue: $0) })]
        #expect(throws: UpdatePackingError.self) {
            _ = try UpdatePacker(context: .init(fourOctetASN: true)).announcements([nlri("192.0.2.0/24")], attributes: huge, nextHop: .ipv4(v4("192.0.2.1")))
        }
    }
}
