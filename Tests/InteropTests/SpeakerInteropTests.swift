import BGP
import BGPSpeaker
import Foundation
import IP
import Testing

// Herald's speaker against BIRD 2, GoBGP and FRR in test-created namespaces (docs/speaker.md,
// docs/interop.md). Herald runs in-process on an event loop thread that joined link.a's namespace.

private func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }

/// Herald's AS numbers: a four-octet one for eBGP tests, a two-octet one for iBGP.
private let heraldASN4: UInt32 = 4_200_000_001
private let peerASN: UInt32 = 65010

/// Herald in link.a's namespace, listening on link.a's IPv4 address, with one peer `name` at link.b.
private func startHerald(_ link: Link, asn: UInt32 = heraldASN4, peer configure: (inout PeerSettings) -> Void = { _ in }) async throws
    -> HeraldUnderTest {
    let herald = try await HeraldUnderTest.start(in: link.a.namespace, settings: SpeakerSettings(
        asn: asn, routerID: link.a.ipv4.v4, listenAddresses: [link.a.ipv4], holdTime: 9, connectRetryTime: 3,
        idleHoldTime: 1, maximumIdleHoldTime: 4))
    var peer = PeerSettings(name: "peer", address: link.b.ipv4, asn: peerASN, localAddress: link.a.ipv4,
                            otherFamilyNextHop: link.a.ipv6, families: [.ipv4, .ipv6])
    configure(&peer)
    try await herald.speaker.addPeer(peer)
    return herald
}

/// The routes every daemon test announces: a /32 and a /128 with the full attribute set.
private struct Announcement {
    let v4 = prefix("100.127.10.1/32")
    let v6 = prefix("fd64:ffff:10::1/128")
    let path = BGPSpeaker.Path(communities: [BGP.Community(asn: 65001, value: 100), BGP.Community(asn: 65001, value: 200)],
                               largeCommunities: [BGP.LargeCommunity(4_200_000_001, 1, 2)], med: 42, localPreference: 250,
                               asPathPrepend: 1)
    var routes: [Route] { [Route(prefix: v4, path: path), Route(prefix: v6, path: path)] }
    let communities = [Community(65001, 100), Community(65001, 200)]
    let large = [LargeCommunity(4_200_000_001, 1, 2)]
}

/// eBGP with a four-octet Herald ASN: /32 and /128 arrive with next hop self, AS_PATH with
/// prepend, communities, large communities and MED; withdraw removes them; 10,000 /32s arrive.
private func ebgpScenario(_ daemon: any BGPDaemon, _ herald: HeraldUnderTest, _ link: Link, bulk: Bool = true) async throws {
    try await daemon.waitEstablished(with: link.a.ipv4)
    let snapshot = try await herald.waitEstablished("peer")
    #expect(snapshot.negotiated?.fourOctetASN == true)
    let a = Announcement()
    await herald.speaker.announce(a.routes)
    let v4 = try await daemon.waitForRoute(a.v4)
    #expect(v4.count == 1)
    #expect(v4.first?.nextHop == link.a.ipv4)
    #expect(v4.first?.asPath == [heraldASN4, heraldASN4])
    #expect(v4.first?.origin == .igp)
    #expect(v4.first?.med == 42)
    #expect(v4.first?.communities.sorted { $0.raw < $1.raw } == a.communities)
    #expect(v4.first?.largeCommunities == a.large)
    let v6 = try await daemon.waitForRoute(a.v6)
    #expect(v6.first?.nextHop == link.a.ipv6)
    #expect(v6.first?.asPath == [heraldASN4, heraldASN4])
    #expect(v6.first?.communities.sorted { $0.raw < $1.raw } == a.communities)
    await herald.speaker.withdraw([a.v4, a.v6])
    try await daemon.waitForWithdrawal(a.v4)
    try await daemon.waitForWithdrawal(a.v6)
    guard bulk else { return }
    let routes = (0..<10_000).map { i in
        Route(prefix: IPPrefix(host: .v4(IPv4Address(UInt32(100) << 24 | UInt32(126) << 16 | UInt32(i)))),
              path: BGPSpeaker.Path(communities: [BGP.Community(asn: 65001, value: UInt16(i % 4))]))
    }
    await herald.speaker.announce(routes)
    let expected = Set(routes.map(\.prefix))
    _ = try await eventually("\(daemon.name) to hold all 10,000 prefixes", timeout: .seconds(60), every: .milliseconds(500)) {
        let got = Set(try daemon.receivedRoutes().map(\.prefix)).intersection(expected)
        return got.count == expected.count ? true : nil
    }
    let after = try #require(await herald.speaker.peer(named: "peer"))
    #expect(after.counters.prefixesAdvertised == 10_000)
}

/// iBGP with two-octet ASNs: LOCAL_PREF is sent (the path's, else 100) and the AS_PATH is empty.
private func ibgpScenario(_ daemon: any BGPDaemon, _ herald: HeraldUnderTest, _ link: Link) async throws {
    try await daemon.waitEstablished(with: link.a.ipv4)
    try await herald.waitEstablished("peer")
    let a = Announcement(), plain = prefix("100.127.11.1/32")
    await herald.speaker.announce(a.routes + [Route(prefix: plain, path: BGPSpeaker.Path())])
    let v4 = try await daemon.waitForRoute(a.v4)
    #expect(v4.first?.asPath == [])
    #expect(v4.first?.localPref == 250)
    #expect(v4.first?.med == 42)
    #expect(v4.first?.nextHop == link.a.ipv4)
    let other = try await daemon.waitForRoute(plain)
    #expect(other.first?.localPref == 100)
    let v6 = try await daemon.waitForRoute(a.v6)
    #expect(v6.first?.localPref == 250)
    await herald.speaker.withdraw(plain)
    try await daemon.waitForWithdrawal(plain)
}

@Suite(.timeLimit(.minutes(3)))
struct SpeakerInteropTests {
    // MARK: - BIRD

    @Test(.interop(.bird))
    func ebgpWithBIRD() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN4)]), network: network)
        try await ebgpScenario(bird, herald, link)
        await herald.stop()
    }

    @Test(.interop(.bird))
    func ibgpWithBIRD() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link, asn: peerASN)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: peerASN)]), network: network)
        try await ibgpScenario(bird, herald, link)
        await herald.stop()
    }

    // MARK: - GoBGP

    @Test(.interop(.gobgp))
    func ebgpWithGoBGP() async throws {
        guard try Interop.ready(.gobgp) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link)
        let gobgp = try await GoBGP.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN4)]), network: network)
        try await ebgpScenario(gobgp, herald, link)
        await herald.stop()
    }

    @Test(.interop(.gobgp))
    func ibgpWithGoBGP() async throws {
        guard try Interop.ready(.gobgp) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link, asn: peerASN)
        let gobgp = try await GoBGP.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: peerASN)]), network: network)
        try await ibgpScenario(gobgp, herald, link)
        await herald.stop()
    }

    // MARK: - FRR

    @Test(.interop(.frr))
    func ebgpWithFRR() async throws {
        guard try Interop.ready(.frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link)
        let frr = try await FRR.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN4)]), network: network)
        try await ebgpScenario(frr, herald, link)
        await herald.stop()
    }

    @Test(.interop(.frr))
    func ibgpWithFRR() async throws {
        guard try Interop.ready(.frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await startHerald(link, asn: peerASN)
        let frr = try await FRR.start(in: link.b.namespace, config: DaemonConfig(
            asn: peerASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: peerASN)]), network: network)
        try await ibgpScenario(frr, herald, link)
        await herald.stop()
    }
}
