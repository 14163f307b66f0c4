import BGP
import BGPSpeaker
import Foundation
import IP
import Testing
import TestSupport

// The same security and failure scenarios as SpeakerBIRDTests, against GoBGP and FRR: MD5 right
// and wrong, a frozen peer (hold timer), a killed and restarted peer, and the peer's routes in
// Herald's Adj-RIB-In.

private func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }

private let heraldASN: UInt32 = 4_200_000_001
private let daemonASN: UInt32 = 65020

enum DaemonKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case gobgp, frr
    var testDescription: String { rawValue }

    func start(in namespace: NetworkNamespace, config: DaemonConfig, network: TestNetwork) async throws -> any BGPDaemon {
        switch self {
        case .gobgp: try await GoBGP.start(in: namespace, config: config, network: network)
        case .frr: try await FRR.start(in: namespace, config: config, network: network)
        }
    }
}

private func startHerald(_ link: Link, _ configure: (inout PeerSettings) -> Void = { _ in }) async throws -> HeraldUnderTest {
    let herald = try await HeraldUnderTest.start(in: link.a.namespace, settings: SpeakerSettings(
        asn: heraldASN, routerID: link.a.ipv4.v4, listenAddresses: [link.a.ipv4], holdTime: 9, connectRetryTime: 2,
        idleHoldTime: 1, maximumIdleHoldTime: 2))
    var peer = PeerSettings(name: "peer", address: link.b.ipv4, asn: daemonASN, localAddress: link.a.ipv4,
                            otherFamilyNextHop: link.a.ipv6, families: [.ipv4, .ipv6])
    configure(&peer)
    try await herald.speaker.addPeer(peer)
    return herald
}

@Suite(.timeLimit(.minutes(3)))
struct SpeakerResilienceTests {
    @Test(.interop(.gobgp, .frr), arguments: DaemonKind.allCases)
    func md5RightComesUpWrongNeverDoes(_ kind: DaemonKind) async throws {
        guard try Interop.ready(.gobgp, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let good = try network.pair(), bad = try network.pair()
        let h1 = try await startHerald(good) { $0.password = "s3cret-key" }
        defer { h1.loop.shutdown() }
        let h2 = try await startHerald(bad) { $0.password = "wrong" }
        defer { h2.loop.shutdown() }
        let d1 = try await kind.start(in: good.b.namespace, config: DaemonConfig(
            asn: daemonASN, on: good.b, neighbors: [Neighbor(address: good.a.ipv4, asn: heraldASN, password: "s3cret-key")]), network: network)
        let d2 = try await kind.start(in: bad.b.namespace, config: DaemonConfig(
            asn: daemonASN, on: bad.b, neighbors: [Neighbor(address: bad.a.ipv4, asn: heraldASN, password: "right")]), network: network)
        try await d1.waitEstablished(with: good.a.ipv4)
        try await h1.waitEstablished("peer")
        let p = prefix("100.127.30.1/32")
        await h1.speaker.announce(Route(prefix: p))
        try await d1.waitForRoute(p)
        let stuck = try await h2.waitPeer("peer", "a hint about the MD5 password", timeout: .seconds(15)) { $0.hint?.contains("MD5 password") == true }
        #expect(stuck.establishedAt == nil && stuck.counters.flaps == 0 && stuck.counters.messagesIn == 0)
        #expect(try d2.neighbors().allSatisfy { $0.state != .established })
        await h1.stop()
        await h2.stop()
    }

    @Test(.interop(.gobgp, .frr), .timingSensitive, arguments: DaemonKind.allCases)
    func frozenPeerHoldTimerThenRecovery(_ kind: DaemonKind) async throws {
        guard try Interop.ready(.gobgp, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let h = try await startHerald(link) { $0.holdTime = 3 }
        defer { h.loop.shutdown() }
        let daemon = try await kind.start(in: link.b.namespace, config: DaemonConfig(
            asn: daemonASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN)]), network: network)
        let up = try await h.waitEstablished("peer")
        #expect(up.negotiated?.holdTime == 3)
        let p = prefix("100.127.31.1/32")
        await h.speaker.announce(Route(prefix: p))
        try await daemon.waitForRoute(p)
        kill(daemon.pid, SIGSTOP)
        let down = try await h.waitPeer("peer", "hold timer expiry", timeout: .seconds(10)) {
            $0.lastError?.reason.contains("hold timer expired") == true
        }
        kill(daemon.pid, SIGCONT)
        #expect(down.lastError?.notification?.code == 4)
        try await h.waitEstablished("peer", timeout: .seconds(40))
        try await daemon.waitEstablished(with: link.a.ipv4)
        try await daemon.waitForRoute(p)
        await h.stop()
    }

    @Test(.interop(.gobgp, .frr), arguments: DaemonKind.allCases)
    func killedAndRestartedPeerGetsTheTableAgain(_ kind: DaemonKind) async throws {
        guard try Interop.ready(.gobgp, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let h = try await startHerald(link)
        defer { h.loop.shutdown() }
        let originated = prefix("100.127.33.1/32")
        let config = DaemonConfig(asn: daemonASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN)],
                                  routes: [OriginatedRoute(prefix: originated, communities: [Community(65020, 5)], med: 7)])
        let daemon = try await kind.start(in: link.b.namespace, config: config, network: network)
        try await h.waitEstablished("peer")
        let p = prefix("100.127.32.1/32")
        await h.speaker.announce(Route(prefix: p))
        try await daemon.waitForRoute(p)
        // The daemon's own route is in Herald's Adj-RIB-In.
        let seen = try await eventuallyAsync("the daemon's route in Herald's Adj-RIB-In") {
            try await h.speaker.receivedRoutes(peer: "peer").first { $0.prefix == originated }
        }
        #expect(seen.nextHop == link.b.ipv4 && seen.asPath == [daemonASN] && seen.med == 7)
        #expect(seen.communities == [BGP.Community(asn: 65020, value: 5)])
        kill(daemon.pid, SIGKILL)
        daemon.stop()
        try await h.waitPeer("peer", "session down after kill", timeout: .seconds(15)) { $0.state != .established }
        let again = try await kind.start(in: link.b.namespace, config: config, network: network)
        try await again.waitEstablished(with: link.a.ipv4)
        try await h.waitEstablished("peer")
        try await again.waitForRoute(p)
        await h.stop()
    }
}

@Suite(.timeLimit(.minutes(2)))
struct SpeakerAddPathTests {
    /// GoBGP (`add-paths receive`) and FRR (always advertises ADD-PATH receive): one prefix with three next hops shows three paths,
    /// each with its own path ID.
    @Test(.interop(.gobgp, .frr), arguments: DaemonKind.allCases)
    func addPathSendsThreeNextHops(_ kind: DaemonKind) async throws {
        guard try Interop.ready(.gobgp, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let hops = (0xF1...0xF3).map { IPAddress.v4(IPv4Address(base | UInt32($0))) }
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])
        let h = try await startHerald(link) { $0.addPathSend = true }
        defer { h.loop.shutdown() }
        let daemon = try await kind.start(in: link.b.namespace, config: DaemonConfig(
            asn: daemonASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN, addPathReceive: true)]), network: network)
        let up = try await h.waitEstablished("peer")
        #expect(up.negotiated?.addPathSend.contains("ipv4-unicast") == true)
        let p = prefix("100.127.34.1/32")
        await h.speaker.announce(Route(prefix: p, paths: hops.map { BGPSpeaker.Path(nextHop: .address($0)) }))
        let paths = try await daemon.waitForRoute(p) { $0.count == 3 }
        #expect(Set(paths.compactMap(\.nextHop)) == Set(hops))
        if kind == .frr { #expect(Set(paths.compactMap(\.pathID)).count == 3) }
        await h.speaker.announce(Route(prefix: p, paths: [BGPSpeaker.Path(nextHop: .address(hops[0]))]))
        try await daemon.waitForRoute(p) { $0.count == 1 }
        await h.stop()
    }
}
