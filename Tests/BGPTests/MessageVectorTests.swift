import TestSupport
import Testing
@testable import BGP
import IP

/// Byte vectors both ways: bytes → value (checked) → bytes (compared as hex).
@Suite struct MessageVectorTests {
    func roundTrip(_ bytes: [UInt8], context: CodecContext = .initial) throws -> BGPMessage {
        let decoded = try BGPMessage.decode(bytes, context: context)
        #expect(decoded.encoded(context: context).hexString == bytes.hexString)
        return decoded
    }

    @Test func keepalive() throws {
        let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04")
        #expect(try roundTrip(bytes) == .keepalive)
        #expect(try MessageFraming.nextMessageLength(in: bytes) == 19)
    }

    @Test func framingNeedsMoreBytes() throws {
        let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04")
        #expect(try MessageFraming.nextMessageLength(in: bytes[0..<18]) == nil)
        #expect(try MessageFraming.nextMessageLength(in: [UInt8]()) == nil)
        // Works on a slice that does not start at index 0.
        let stream = hex("00") + bytes
        #expect(try MessageFraming.nextMessageLength(in: stream[1...]) == 19)
    }

    @Test func framingHonoursExtendedMessages() throws {
        let big = hex("ffffffffffffffffffffffffffffffff 2000 02")
        #expect(throws: BGPError.header(.badMessageLength, data: [0x20, 0x00])) {
            _ = try MessageFraming.nextMessageLength(in: big)
        }
        #expect(try MessageFraming.nextMessageLength(in: big, maxMessageLength: 65535) == 0x2000)
    }

    static let openBody = """
        04 fde9 005a c0000201 3e 02 3c
        0104 0001 0001
        0104 0002 0001
        0200
        4600
        4104 0000fde9
        4006 4078 0001 0180
        4504 0001 0103
        0600
        0506 0001 0001 0002
        490a 06 726f75746572 02 6c62
        8000
        """

    @Test func openWithEveryCapability() throws {
        let bytes = message(1, Self.openBody)
        guard case .open(let open) = try roundTrip(bytes) else { Issue.record("not an OPEN"); return }
        #expect(open.myAutonomousSystem == 65001)
        #expect(open.asn == 65001)
        #expect(open.holdTime == 90)
        #expect(open.bgpIdentifier == v4("192.0.2.1"))
        #expect(open.capabilities == [
            .multiprotocol(.ipv4Unicast),
            .multiprotocol(.ipv6Unicast),
            .routeRefresh,
            .enhancedRouteRefresh,
            .fourOctetASN(65001),
            .gracefulRestart(GracefulRestart(notificationSupport: true, restartTime: 120, families: [.init(.ipv4Unicast, forwardingPreserved: true)])),
            .addPath([.ipv4Unicast: .both]),
            .extendedMessage,
            .extendedNextHop([ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)]),
            .fqdn(hostname: "router", domain: "lb"),
            .unknown(code: 128, value: []),
        ])
    }

    @Test func openWithFourOctetASNUsesASTrans() throws {
        let open = OpenMessage(asn: 4_200_000_000, holdTime: 180, bgpIdentifier: v4("10.0.0.1"), capabilities: [.multiprotocol(.ipv4Unicast)])
        let bytes = BGPMessage.open(open).encoded()
        #expect(bytes.hexString == message(1, "04 5ba0 00b4 0a000001 0e 02 0c 0104 0001 0001 4104 fa56ea00").hexString)
        #expect(try roundTrip(bytes) == .open(open))
        #expect(open.asn == 4_200_000_000)
    }

    @Test func openWithRFC9072ExtendedParameterLength() throws {
        let bytes = message(1, "04 fde9 005a c0000201 ff ff 0009 02 0006 0104 0001 0001")
        guard case .open(let open) = try roundTrip(bytes) else { Issue.record("not an OPEN"); return }
        #expect(open.usesExtendedParameterLength)
        #expect(open.capabilities == [.multiprotocol(.ipv4Unicast)])
    }

    @Test func openWithManyCapabilitiesSwitchesToExtendedLength() throws {
        let caps = (0..<70).map { Capability.unknown(code: 200, value: [UInt8($0), 1]) }
        let open = OpenMessage(myAutonomousSystem: 65001, holdTime: 90, bgpIdentifier: v4("192.0.2.1"), parameters: [.capabilities(caps)])
        let bytes = BGPMessage.open(open).encoded()
        #expect(bytes[28] == 255 && bytes[29] == 255)
        guard case .open(let decoded) = try BGPMessage.decode(bytes) else { Issue.record("not an OPEN"); return }
        #expect(decoded.capabilities == caps)
    }

    @Test func openWithCapabilitiesInSeparateParameters() throws {
        // FRR style: one capability per optional parameter.
        let bytes = message(1, "04 fde9 00b4 c0000202 10 0206 0104 0001 0001 0206 4104 0000fde9")
        guard case .open(let open) = try roundTrip(bytes) else { Issue.record("not an OPEN"); return }
        #expect(open.parameters.count == 2)
        #expect(open.capabilities == [.multiprotocol(.ipv4Unicast), .fourOctetASN(65001)])
    }

    @Test func notificationWithShutdownCommunication() throws {
        let bytes = message(3, "06 02 0b 6d61696e74656e616e6365")
        guard case .notification(let n) = try roundTrip(bytes) else { Issue.record("not a NOTIFICATION"); return }
        #expect(n.shutdownCommunication == "maintenance")
        #expect(n.description == "6/2 (Administrative Shutdown): 'maintenance'")
        #expect(n == .administrativeShutdown("maintenance"))
    }

    @Test func shutdownCommunicationIsCutAt255OctetsOnACharacterBoundary() {
        let n = NotificationMessage.administrativeShutdown(String(repeating: "é", count: 200))
        #expect(n.data[0] == 254)
        #expect(n.shutdownCommunication == String(repeating: "é", count: 127))
    }

    @Test func notificationFromError() throws {
        let error = BGPError.open(.unacceptableHoldTime)
        let bytes = BGPMessage.notification(NotificationMessage(error)).encoded()
        #expect(bytes.hexString == message(3, "02 06").hexString)
        #expect(try roundTrip(bytes) == .notification(NotificationMessage(code: 2, subcode: 6)))
        #expect(NotificationMessage(code: 4, subcode: 0).description == "4/0 (Hold Timer Expired)")
        #expect(NotificationMessage(code: 99, subcode: 1).description == "99/1 (unknown error code 99)")
    }

    @Test func routeRefreshAndEnhancedSubtypes() throws {
        #expect(try roundTrip(message(5, "0001 00 01")) == .routeRefresh(RouteRefreshMessage(family: .ipv4Unicast)))
        #expect(try roundTrip(message(5, "0002 01 01")) == .routeRefresh(RouteRefreshMessage(family: .ipv6Unicast, subtype: .beginningOfRouteRefresh)))
        #expect(try roundTrip(message(5, "0002 02 01")) == .routeRefresh(RouteRefreshMessage(family: .ipv6Unicast, subtype: .endOfRouteRefresh)))
    }

    static let allAttributes = """
        40 01 01 00
        40 02 0e 02 03 0000fde9 0000fdea 00010000
        40 03 04 c0000201
        80 04 04 00000064
        40 05 04 000000c8
        40 06 00
        c0 07 08 0000fde9 c0000201
        c0 08 0c ffffff01 ffff029a fde90064
        80 09 04 c0000201
        80 0a 04 c0000202
        c0 10 08 0002fde900000064
        c0 20 0c 0000fde9 00000001 00000002
        e0 63 02 abcd
        """

    @Test func updateWithEveryIPv4Attribute() throws {
        let context = CodecContext(fourOctetASN: true)
        let bytes = update(attributes: Self.allAttributes, nlri: "18 c00002 20 c6336401 00")
        guard case .update(let u) = try roundTrip(bytes, context: context) else { Issue.record("not an UPDATE"); return }
        #expect(u.errors.isEmpty)
        #expect(u.attributes == [
            .origin(.igp),
            .asPath(.sequence([65001, 65002, 65536])),
            .nextHop(v4("192.0.2.1")),
            .multiExitDiscriminator(100),
            .localPreference(200),
            .atomicAggregate,
            .aggregator(Aggregator(asn: 65001, address: v4("192.0.2.1"))),
            .communities([.noExport, .blackhole, Community(asn: 65001, value: 100)]),
            .originatorID(v4("192.0.2.1")),
            .clusterList([v4("192.0.2.2")]),
            .extendedCommunities([.routeTarget(asn: 65001, value: 100)]),
            .largeCommunities([LargeCommunity(65001, 1, 2)]),
            .unknown(UnknownAttribute(flags: [.optional, .transitive, .partial], typeCode: 99, value: [0xab, 0xcd])),
        ])
        #expect(u.nlri == [nlri("192.0.2.0/24"), nlri("198.51.100.1/32"), nlri("0.0.0.0/0")])
        #expect(u.announced.count == 3)
        #expect(u.attributes.communities.map(\.description) == ["no-export", "blackhole", "65001:100"])
    }

    @Test func updateWithIPv6MPReachAndLinkLocal() throws {
        let context = CodecContext(fourOctetASN: true)
        let bytes = update(attributes: """
            40 01 01 00
            40 02 06 02 01 0000fde9
            90 0e 002e 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 40 20010db800000001
            90 0f 000c 0002 01 40 20010db800000002
            """)
        guard case .update(let u) = try roundTrip(bytes, context: context) else { Issue.record("not an UPDATE"); return }
        #expect(u.errors.isEmpty)
        #expect(u.attributes.mpReachNLRI == MPReachNLRI(family: .ipv6Unicast, nextHop: .ipv6(v6("2001:db8::1"), linkLocal: v6("fe80::1")),
                                                         nlri: [nlri("2001:db8:0:1::/64")]))
        #expect(u.attributes.mpUnreachNLRI == MPUnreachNLRI(family: .ipv6Unicast, withdrawn: [nlri("2001:db8:0:2::/64")]))
        #expect(u.announced == [nlri("2001:db8:0:1::/64")])
        #expect(u.withdrawn == [nlri("2001:db8:0:2::/64")])
    }

    @Test func updateWithSixteenOctetNextHopAndExtendedNextHopForIPv4() throws {
        let bytes = update(attributes: """
            40 01 01 02
            40 02 00
            90 0e 0019 0001 01 10 20010db8000000000000000000000001 00 18 c00002
            """)
        guard case .update(let u) = try roundTrip(bytes) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.mpReachNLRI?.nextHop == .ipv6(v6("2001:db8::1"), linkLocal: nil))
        #expect(u.attributes.mpReachNLRI?.nlri == [nlri("192.0.2.0/24")])
        #expect(u.attributes.asPath == ASPath())
    }

    @Test func updateWithAddPathIdentifiers() throws {
        let context = CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast, .ipv6Unicast])
        let bytes = update(withdrawn: "00000007 18 c00002", attributes: """
            40 01 01 00
            40 02 00
            40 03 04 c0000201
            90 0e 0022 0002 01 10 20010db8000000000000000000000001 00 00000002 40 20010db800000001
            """, nlri: "00000001 20 c6336401 00000002 20 c6336401")
        guard case .update(let u) = try roundTrip(bytes, context: context) else { Issue.record("not an UPDATE"); return }
        #expect(u.withdrawnRoutes == [nlri("192.0.2.0/24", pathID: 7)])
        #expect(u.nlri == [nlri("198.51.100.1/32", pathID: 1), nlri("198.51.100.1/32", pathID: 2)])
        #expect(u.attributes.mpReachNLRI?.nlri == [nlri("2001:db8:0:1::/64", pathID: 2)])
    }

    @Test func twoOctetSessionWithAS4PathAndAS4Aggregator() throws {
        let bytes = update(attributes: """
            40 01 01 00
            40 02 06 02 02 fde9 5ba0
            40 03 04 c0000201
            c0 07 06 5ba0 c0000201
            c0 11 0a 02 02 0000fde9 fa56ea00
            c0 12 08 fa56ea00 c0000201
            """, nlri: "18 c00002")
        guard case .update(let u) = try roundTrip(bytes) else { Issue.record("not an UPDATE"); return }
        #expect(u.errors.isEmpty)
        let merged = u.attributes.reconcilingAS4Attributes()
        #expect(merged.asPath == .sequence([65001, 4_200_000_000]))
        #expect(merged.aggregator == Aggregator(asn: 4_200_000_000, address: v4("192.0.2.1")))
        #expect(merged.as4Path == nil && merged.as4Aggregator == nil)

        // And back: a four-octet path for a two-octet peer gets AS_TRANS and AS4_* again.
        let outgoing = merged.addingAS4Attributes()
        let again = BGPMessage.update(UpdateMessage(attributes: outgoing, nlri: u.nlri)).encoded(context: .initial)
        #expect(again.hexString == bytes.hexString)
    }

    @Test func as4PathMergeKeepsLeadingASesTheAS4PathDoesNotCover() {
        // RFC 6793 §4.2.3: AS_PATH 3 long, AS4_PATH 2 long → first AS of AS_PATH + AS4_PATH.
        let path = ASPath.sequence([64512, 65001, 23456])
        #expect(path.merged(withAS4Path: .sequence([65001, 4_200_000_000])) == ASPath([.init(.sequence, [64512]), .init(.sequence, [65001, 4_200_000_000])]))
        // An AS4_PATH longer than the AS_PATH is ignored.
        #expect(path.merged(withAS4Path: .sequence([1, 2, 3, 4])) == path)
        // Sets count as one.
        #expect(ASPath([.init(.sequence, [1, 2]), .init(.set, [3, 4])]).length == 3)
    }

    @Test func aggregatorIgnoresAS4WhenRealTwoOctetAS() {
        let attributes: [PathAttribute] = [
            .asPath(.sequence([65001])), .aggregator(Aggregator(asn: 65001, address: v4("192.0.2.1"))),
            .as4Path(.sequence([4_200_000_000])), .as4Aggregator(Aggregator(asn: 4_200_000_000, address: v4("192.0.2.9"))),
        ]
        let merged = attributes.reconcilingAS4Attributes()
        #expect(merged == [.asPath(.sequence([65001])), .aggregator(Aggregator(asn: 65001, address: v4("192.0.2.1")))])
    }

    @Test func longASPathIsSplitIntoSegmentsOf255() throws {
        let path = ASPath.sequence(Array(1...300))
        let u = UpdateMessage(attributes: [.origin(.igp), .asPath(path), .nextHop(v4("192.0.2.1"))], nlri: [nlri("192.0.2.0/24")])
        let bytes = BGPMessage.update(u).encoded(context: CodecContext(fourOctetASN: true))
        guard case .update(let back) = try BGPMessage.decode(bytes, context: CodecContext(fourOctetASN: true)) else { Issue.record("not an UPDATE"); return }
        #expect(back.attributes.asPath?.segments.map(\.asns.count) == [255, 45])
        #expect(back.attributes.asPath?.length == 300)
        // Extended Length was used for the 1208-octet AS_PATH.
        #expect(bytes[23 + 4] & 0x10 != 0)
    }

    @Test func logDescriptions() throws {
        #expect(BGPMessage.keepalive.description == "KEEPALIVE")
        #expect(BGPMessage.update(.endOfRIB(.ipv6Unicast)).description == "UPDATE End-of-RIB IPv6 unicast")
        #expect(BGPMessage.update(UpdateMessage(withdrawnRoutes: [nlri("10.0.0.0/8")], attributes: [.origin(.igp), .asPath(ASPath()), .nextHop(v4("192.0.2.1"))],
                                                nlri: [nlri("192.0.2.0/24")])).description == "UPDATE +1 −1")
        #expect(BGPMessage.notification(.administrativeShutdown("bye")).description == "NOTIFICATION 6/2 (Administrative Shutdown): 'bye'")
        let open = OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: v4("192.0.2.1"), capabilities: [])
        #expect(BGPMessage.open(open).description == "OPEN AS65001 hold 90 s id 192.0.2.1, 1 capabilities")
    }

    @Test func endOfRIBMarkers() throws {
        let v4EoR = BGPMessage.update(.endOfRIB(.ipv4Unicast)).encoded()
        #expect(v4EoR.hexString == update().hexString)
        #expect(v4EoR.count == 23)
        let v6EoR = BGPMessage.update(.endOfRIB(.ipv6Unicast)).encoded()
        #expect(v6EoR.hexString == update(attributes: "90 0f 0003 0002 01").hexString)
        for (bytes, family) in [(v4EoR, AddressFamily.ipv4Unicast), (v6EoR, .ipv6Unicast)] {
            guard case .update(let u) = try roundTrip(bytes) else { Issue.record("not an UPDATE"); return }
            #expect(u.endOfRIB == family)
        }
    }

    @Test func unknownFamilyInMPReachIsKeptRaw() throws {
        // AFI 25 (L2VPN) / SAFI 70 (EVPN): next hop and NLRI kept as received.
        let bytes = update(attributes: "40 01 01 00 40 02 00 90 0e 000b 0019 46 04 c0000201 00 0102")
        guard case .update(let u) = try roundTrip(bytes) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.mpReachNLRI == MPReachNLRI(family: AddressFamily(afi: AFI(rawValue: 25), safi: SAFI(rawValue: 70)),
                                                         nextHop: .other([0xc0, 0, 2, 1]), nlri: [], opaqueNLRI: [1, 2]))
    }

    @Test func unknownOptionalTransitiveIsPropagatedWithPartial() {
        let attribute = PathAttribute.unknown(UnknownAttribute(flags: [.optional, .transitive], typeCode: 99, value: [1]))
        var writer = ByteWriter()
        attribute.propagated.encode(into: &writer, context: .initial)
        #expect(writer.bytes.hexString == "e0630101")
    }
}
