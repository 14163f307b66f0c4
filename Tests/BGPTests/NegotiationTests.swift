import Testing
@testable import BGP
import IP

@Suite struct NegotiationTests {
    let local = OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 1), capabilities: [
        .multiprotocol(.ipv4Unicast), .multiprotocol(.ipv6Unicast), .routeRefresh, .enhancedRouteRefresh,
        .addPath([.ipv4Unicast: .send, .ipv6Unicast: .both]), .extendedMessage,
        .gracefulRestart(GracefulRestart(restartTime: 120, families: [.init(.ipv4Unicast)])),
        .extendedNextHop([ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)]),
    ])

    func remote(asn: UInt32 = 65002, holdTime: UInt16 = 180, id: IPv4Address = IPv4Address(192, 0, 2, 2), _ capabilities: [Capability]) -> OpenMessage {
        OpenMessage(asn: asn, holdTime: holdTime, bgpIdentifier: id, capabilities: capabilities)
    }

    @Test func agreesOnTheIntersection() throws {
        let peer = remote([
            .multiprotocol(.ipv4Unicast), .routeRefresh, .addPath([.ipv4Unicast: .receive, .ipv6Unicast: .both]),
            .gracefulRestart(GracefulRestart(restarting: true, restartTime: 90, families: [.init(.ipv4Unicast, forwardingPreserved: true)])),
            .fqdn(hostname: "bird", domain: "lab"),
        ])
        let p = try SessionParameters.negotiate(local: local, remote: peer, expectations: .init(peerASN: 65002)).get()
        #expect(p.holdTime == 90 && p.keepaliveTime == 30)
        #expect(p.fourOctetASN)
        #expect(p.families == [.ipv4Unicast])
        #expect(p.addPathSend == [.ipv4Unicast])
        #expect(p.addPathReceive.isEmpty)
        #expect(p.routeRefresh && !p.enhancedRouteRefresh && !p.extendedMessages)
        #expect(p.maxMessageLength == 4096)
        #expect(p.peerGracefulRestart?.restarting == true)
        #expect(p.peerGracefulRestart?.families.first?.forwardingPreserved == true)
        #expect(p.peerHostname == "bird.lab")
        #expect(p.extendedNextHop.isEmpty)
        #expect(p.sendContext == CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast], maxMessageLength: 4096))
        #expect(p.receiveContext == CodecContext(fourOctetASN: true, addPath: [], maxMessageLength: 4096))
    }

    @Test func noMultiprotocolMeansIPv4UnicastAndTwoOctetAS() throws {
        let legacy = OpenMessage(myAutonomousSystem: 65002, holdTime: 0, bgpIdentifier: IPv4Address(192, 0, 2, 2), parameters: [])
        let p = try SessionParameters.negotiate(local: local, remote: legacy).get()
        #expect(p.families == [.ipv4Unicast])
        #expect(!p.fourOctetASN)
        #expect(p.holdTime == 0 && p.keepaliveTime == 0)
        #expect(p.peerGracefulRestart == nil)
    }

    @Test func bothExtendedMessagesAndAddPathReceive() throws {
        let p = try SessionParameters.negotiate(local: local, remote: remote([.multiprotocol(.ipv6Unicast), .extendedMessage, .enhancedRouteRefresh, .routeRefresh, .addPath([.ipv6Unicast: .send]),
                                                                             .extendedNextHop([ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)])])).get()
        #expect(p.extendedMessages && p.maxMessageLength == 65535)
        #expect(p.enhancedRouteRefresh)
        #expect(p.families == [.ipv6Unicast])
        #expect(p.addPathReceive == [.ipv6Unicast] && p.addPathSend.isEmpty)
        #expect(p.extendedNextHop == [ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)])
    }

    @Test func fourOctetPeerASFromCapability() throws {
        let p = try SessionParameters.negotiate(local: local, remote: remote(asn: 4_200_000_000, []), expectations: .init(peerASN: 4_200_000_000)).get()
        #expect(p.peerASN == 4_200_000_000)
    }

    @Test func refusals() {
        func failure(_ open: OpenMessage, _ expectations: PeerExpectations = .init()) -> BGPError? {
            if case .failure(let e) = SessionParameters.negotiate(local: local, remote: open, expectations: expectations) { return e }
            return nil
        }
        #expect(failure(remote(asn: 65003, []), .init(peerASN: 65002)) == .open(.badPeerAS, data: [0xfd, 0xeb]))
        #expect(failure(remote(asn: 4_200_000_000, []), .init(peerASN: 65002))?.subcode == OpenMessageError.badPeerAS.rawValue)
        #expect(failure(remote(holdTime: 2, [])) == .open(.unacceptableHoldTime))
        #expect(failure(remote(holdTime: 1, [])) == .open(.unacceptableHoldTime))
        #expect(failure(remote(holdTime: 9, []), .init(minimumHoldTime: 10)) == .open(.unacceptableHoldTime))
        #expect(failure(remote(id: IPv4Address(0), [])) == .open(.badBGPIdentifier, data: [0, 0, 0, 0]))
        #expect(failure(remote(asn: 65001, id: IPv4Address(192, 0, 2, 1), [])) == .open(.badBGPIdentifier, data: [192, 0, 2, 1]))
        // eBGP with the same identifier is allowed (RFC 6286 §2.2).
        #expect(failure(remote(asn: 65002, id: IPv4Address(192, 0, 2, 1), [])) == nil)
        #expect(failure(remote([]), .init(requiredCapabilities: [.routeRefresh])) == .open(.unsupportedCapability, data: [2, 0]))
        var unknownParameter = remote([])
        unknownParameter.parameters.append(.unknown(type: 1, value: [0]))
        #expect(failure(unknownParameter) == .open(.unsupportedOptionalParameter))
        let err = failure(remote(holdTime: 2, []))!
        #expect(NotificationMessage(err) == NotificationMessage(code: .openMessageError, subcode: 6))
    }
}
