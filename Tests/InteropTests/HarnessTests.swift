import Foundation
import IP
import Testing

// Self-tests of the interop harness: real daemons talk to each other in namespaces the tests
// create, and the harness's readers must report what they exchanged. When Herald's speaker is
// ready it replaces one side of these sessions (see docs/interop.md).

private func prefix(_ text: String) throws -> IPPrefix { try IPPrefix(parsing: text) }

@Suite(.timeLimit(.minutes(1)))
struct HarnessTests {
    /// A child started in a namespace gets its extra environment, and SIGTERM ends it at once
    /// (the signal mask it inherits is empty: see ChildProcess).
    @Test(.interop())
    func childrenGetEnvironmentAndStopOnSIGTERM() async throws {
        guard try Interop.ready() else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let namespace = try network.namespace()
        let child = try namespace.spawn(["sh", "-c", "echo \"$HRLD_GREETING\"; exec sleep 60"], logPath: network.directory + "/child.log",
                                        environment: ["HRLD_GREETING": "hello from \(namespace.name)"])
        _ = try await eventually("the child's greeting") { child.logTail().contains("hello from \(namespace.name)") ? true : nil }
        #expect(namespace.pids() == [child.pid])
        let start = ContinuousClock.now
        child.stop()
        #expect(ContinuousClock.now - start < .seconds(2), "SIGTERM must end the child at once")
        #expect(child.exitStatus == 128 + SIGTERM)
        #expect(!processExists(child.pid))
    }

    /// (a) BIRD → GoBGP, IPv4 and IPv6 over one IPv4 session, and (c) GoBGP → BIRD, then a withdrawal.
    @Test(.interop(.bird, .gobgp))
    func birdAndGoBGPExchangeRoutes() async throws {
        guard try Interop.ready(.bird, .gobgp) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let fromBIRD4 = try prefix("100.127.1.1/32"), fromBIRD6 = try prefix("fd64:ffff:1::1/128")
        let fromGoBGP = try prefix("100.127.2.1/32")

        let bird = try await BIRD.start(in: link.a.namespace, config: DaemonConfig(
            asn: 65001, on: link.a,
            neighbors: [Neighbor(address: link.b.ipv4, asn: 65002)],
            routes: [
                OriginatedRoute(prefix: fromBIRD4, communities: [Community(65001, 42)], largeCommunities: [LargeCommunity(65001, 1, 2)], med: 50),
                OriginatedRoute(prefix: fromBIRD6, communities: [Community(65001, 43)], largeCommunities: [LargeCommunity(65001, 3, 4)]),
            ]), network: network)
        let gobgp = try await GoBGP.start(in: link.b.namespace, config: DaemonConfig(
            asn: 65002, on: link.b,
            neighbors: [Neighbor(address: link.a.ipv4, asn: 65001)],
            routes: [OriginatedRoute(prefix: fromGoBGP, communities: [Community(65002, 7)], largeCommunities: [LargeCommunity(65002, 5, 6)], med: 10)]),
            network: network)

        try await gobgp.waitEstablished(with: link.a.ipv4)
        try await bird.waitEstablished(with: link.b.ipv4)

        let v4 = try await gobgp.waitForRoute(fromBIRD4)
        #expect(v4 == [ObservedPath(prefix: fromBIRD4, nextHop: link.a.ipv4, asPath: [65001], origin: .igp, med: 50,
                                    communities: [Community(65001, 42)], largeCommunities: [LargeCommunity(65001, 1, 2)],
                                    neighbor: link.a.ipv4)])
        let v6 = try await gobgp.waitForRoute(fromBIRD6)
        #expect(v6 == [ObservedPath(prefix: fromBIRD6, nextHop: link.a.ipv6, asPath: [65001], origin: .igp,
                                    communities: [Community(65001, 43)], largeCommunities: [LargeCommunity(65001, 3, 4)],
                                    neighbor: link.a.ipv4)])
        #expect(try gobgp.adjIn(from: link.a.ipv4, family: .ipv4).map(\.prefix) == [fromBIRD4])

        // BIRD adds the default local-pref 100 to what it learns over eBGP.
        let back = try await bird.waitForRoute(fromGoBGP)
        #expect(back == [ObservedPath(prefix: fromGoBGP, nextHop: link.b.ipv4, asPath: [65002], origin: .igp, med: 10, localPref: 100,
                                      communities: [Community(65002, 7)], largeCommunities: [LargeCommunity(65002, 5, 6)],
                                      neighbor: link.b.ipv4)])

        try gobgp.withdraw(fromGoBGP)
        try await bird.waitForWithdrawal(fromGoBGP)
    }

    /// (b) BIRD → FRR read through FRR's JSON, and FRR → BIRD.
    @Test(.interop(.bird, .frr))
    func birdAndFRRExchangeRoutes() async throws {
        guard try Interop.ready(.bird, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let fromBIRD4 = try prefix("100.127.3.1/32"), fromBIRD6 = try prefix("fd64:ffff:3::1/128")
        let fromFRR = try prefix("100.127.4.1/32")

        let bird = try await BIRD.start(in: link.a.namespace, config: DaemonConfig(
            asn: 65001, on: link.a,
            neighbors: [Neighbor(address: link.b.ipv4, asn: 65003)],
            routes: [
                OriginatedRoute(prefix: fromBIRD4, communities: [Community(65001, 42)], largeCommunities: [LargeCommunity(65001, 1, 2)], med: 50),
                OriginatedRoute(prefix: fromBIRD6, communities: [Community(65001, 43)], largeCommunities: [LargeCommunity(65001, 3, 4)]),
            ]), network: network)
        let frr = try await FRR.start(in: link.b.namespace, config: DaemonConfig(
            asn: 65003, on: link.b,
            neighbors: [Neighbor(address: link.a.ipv4, asn: 65001)],
            routes: [OriginatedRoute(prefix: fromFRR, communities: [Community(65003, 9)], largeCommunities: [LargeCommunity(65003, 7, 8)], med: 20)]),
            network: network)

        try await frr.waitEstablished(with: link.a.ipv4)
        try await bird.waitEstablished(with: link.b.ipv4)

        let v4 = try await frr.waitForRoute(fromBIRD4)
        #expect(v4 == [ObservedPath(prefix: fromBIRD4, nextHop: link.a.ipv4, asPath: [65001], origin: .igp, med: 50,
                                    communities: [Community(65001, 42)], largeCommunities: [LargeCommunity(65001, 1, 2)],
                                    neighbor: link.a.ipv4)])
        let v6 = try await frr.waitForRoute(fromBIRD6)
        #expect(v6 == [ObservedPath(prefix: fromBIRD6, nextHop: link.a.ipv6, asPath: [65001], origin: .igp,
                                    communities: [Community(65001, 43)], largeCommunities: [LargeCommunity(65001, 3, 4)],
                                    neighbor: link.a.ipv4)])

        let back = try await bird.waitForRoute(fromFRR)
        #expect(back == [ObservedPath(prefix: fromFRR, nextHop: link.b.ipv4, asPath: [65003], origin: .igp, med: 20, localPref: 100,
                                      communities: [Community(65003, 9)], largeCommunities: [LargeCommunity(65003, 7, 8)],
                                      neighbor: link.b.ipv4)])
    }

    /// GTSM across the router: BIRD and FRR both send with TTL 255 and accept 254 (two hops).
    @Test(.interop(.bird, .frr))
    func gtsmSessionAcrossTwoHops() async throws {
        guard try Interop.ready(.bird, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let topology = try network.twoHop()
        let herald = topology.heraldLink.a, peer = topology.peerLink.b
        let bird = try await BIRD.start(in: topology.herald, config: DaemonConfig(
            asn: 65001, on: herald, neighbors: [Neighbor(address: peer.ipv4, asn: 65003, gtsmHops: 2, families: [.ipv4])]),
            network: network)
        let frr = try await FRR.start(in: topology.peer, config: DaemonConfig(
            asn: 65003, on: peer, neighbors: [Neighbor(address: herald.ipv4, asn: 65001, gtsmHops: 2, families: [.ipv4])]),
            network: network)
        try await bird.waitEstablished(with: peer.ipv4)
        try await frr.waitEstablished(with: herald.ipv4)
    }

    /// (d) The two-hop topology routes IPv4 and IPv6 (multihop sessions, one with MD5, come up
    /// across the router namespace), and shutting the network down leaves no namespace, veth, process or file.
    @Test(.interop(.bird, .gobgp))
    func twoHopSessionAndCleanup() async throws {
        guard try Interop.ready(.bird, .gobgp) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let topology = try network.twoHop()
        let herald = topology.heraldLink.a, peer = topology.peerLink.b

        // One IPv4 session with MD5 and one IPv6 session, both across the router.
        let bird = try await BIRD.start(in: topology.herald, config: DaemonConfig(
            asn: 65001, on: herald,
            neighbors: [Neighbor(address: peer.ipv4, asn: 65002, password: "interop-md5", multihopTTL: 2, families: [.ipv4]),
                        Neighbor(address: peer.ipv6, asn: 65002, multihopTTL: 2, families: [.ipv6])]),
            network: network)
        let gobgp = try await GoBGP.start(in: topology.peer, config: DaemonConfig(
            asn: 65002, on: peer,
            neighbors: [Neighbor(address: herald.ipv4, asn: 65001, password: "interop-md5", multihopTTL: 2, families: [.ipv4]),
                        Neighbor(address: herald.ipv6, asn: 65001, multihopTTL: 2, families: [.ipv6])]),
            network: network)
        try await bird.waitEstablished(with: peer.ipv4)
        try await gobgp.waitEstablished(with: herald.ipv4)
        try await bird.waitEstablished(with: peer.ipv6)
        try await gobgp.waitEstablished(with: herald.ipv6)

        let names = network.namespaceNames
        let pids = [bird.pid, gobgp.pid]
        let interfaces = [topology.heraldLink.a.interface, topology.heraldLink.b.interface,
                          topology.peerLink.a.interface, topology.peerLink.b.interface]
        #expect(names.count == 3)
        #expect(pids.allSatisfy(processExists))

        network.shutdown()

        let namespaces = try Command.check(["ip", "netns", "list"]).stdout
        for name in names {
            #expect(!namespaces.split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == name },
                    "namespace \(name) left behind")
        }
        for pid in pids { #expect(!processExists(pid), "process \(pid) left behind") }
        let links = try Command.check(["ip", "-o", "link", "show"]).stdout
        for interface in interfaces { #expect(!links.contains(" \(interface)@") && !links.contains(" \(interface):")) }
        #expect(!FileManager.default.fileExists(atPath: network.directory))
    }
}
