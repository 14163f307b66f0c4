import IP
import Testing

// The readers against output captured from the Debian daemons (BIRD 2.0.12, GoBGP 3.10, FRR 8.4).
// These run everywhere, without root or daemons; HarnessTests prove the same against live ones.

private func address(_ text: String) throws -> IPAddress { try IPAddress(parsing: text) }
private func prefix(_ text: String) throws -> IPPrefix { try IPPrefix(parsing: text) }

@Suite struct ParserTests {
    @Test func birdRoutes() throws {
        let text = """
            BIRD 2.0.12 ready.
            Table master4:
            100.64.250.1/32      blackhole [static4 22:55:52.092] * (200)
            \tType: static univ
            100.64.251.1/32      unicast [n0 22:56:09.208] * (100) [AS65002i]
            \tvia 100.64.200.1 on h1l1a
            \tType: BGP univ
            \tBGP.origin: IGP
            \tBGP.as_path: 65002
            \tBGP.next_hop: 100.64.200.1
            \tBGP.med: 10
            \tBGP.local_pref: 100
            \tBGP.community: (65002,7) (65535,6)
            \tBGP.large_community: (65002, 1, 2) (65002, 3, 4)
                                 unicast [n1 22:56:10.000 from 100.64.200.9] (100) [AS65010?]
            \tvia 100.64.200.1 on h1l1a
            \tType: BGP univ
            \tBGP.origin: Incomplete
            \tBGP.as_path: 65002 {65010 65011}
            \tBGP.next_hop: fd64::2 fe80::1
            \tBGP.local_pref: 100

            """
        let paths = try BIRD.parseRoutes(text, neighbors: ["n0": address("100.64.200.1")])
        #expect(paths == [
            ObservedPath(prefix: try prefix("100.64.251.1/32"), nextHop: try address("100.64.200.1"), asPath: [65002], origin: .igp,
                         med: 10, localPref: 100, communities: [Community(65002, 7), Community(65535, 6)],
                         largeCommunities: [LargeCommunity(65002, 1, 2), LargeCommunity(65002, 3, 4)], stale: true,
                         neighbor: try address("100.64.200.1")),
            ObservedPath(prefix: try prefix("100.64.251.1/32"), nextHop: try address("fd64::2"), asPath: [65002, 65010, 65011],
                         origin: .incomplete, localPref: 100, neighbor: try address("100.64.200.9")),
        ])
    }

    @Test func birdProtocols() throws {
        let text = """
            BIRD 2.0.12 ready.
            Name       Proto      Table      State  Since         Info
            device1    Device     ---        up     22:55:52.093
            n0         BGP        ---        up     22:56:01.624  Established
              BGP state:          Established
                Neighbor address: 100.64.200.1
            n1         BGP        ---        start  22:56:01.624  Active        Socket: Connection refused
              BGP state:          Active
                Neighbor address: 100.64.200.5
                Last error:       Socket: Connection refused
            """
        let n0 = BIRD.parseProtocol(text, name: "n0", neighbor: Neighbor(address: try address("100.64.200.1"), asn: 65002))
        let n1 = BIRD.parseProtocol(text, name: "n1", neighbor: Neighbor(address: try address("100.64.200.5"), asn: 65003))
        #expect(n0.state == .established && n0.lastError == nil)
        #expect(n1.state == .active && n1.lastError == "Socket: Connection refused")
    }

    @Test func gobgpRIB() throws {
        let text = """
            {"100.64.250.1/32":[{"nlri":{"prefix":"100.64.250.1/32"},"age":1795733764,"best":true,"attrs":[{"type":1,"value":0},\
            {"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[65001]}]},{"type":3,"nexthop":"100.64.200.0"},\
            {"type":4,"metric":50},{"type":8,"communities":[4259905578]},\
            {"type":32,"value":[{"ASN":65001,"LocalData1":1,"LocalData2":2}]}],"stale":false,"source-id":"100.64.200.0",\
            "neighbor-ip":"100.64.200.0"}],\
            "fd64:250::1/128":[{"nlri":{"prefix":"fd64:250::1/128"},"age":1795733764,"best":true,"attrs":[{"type":1,"value":2},\
            {"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[65001,65009]}]},{"type":5,"value":200},\
            {"type":14,"nexthop":"fd64:200::1","afi":2,"safi":1,"value":[{"prefix":"fd64:250::1/128"}]}],"stale":true}]}
            """
        #expect(try GoBGP.parseRIB(text) == [
            ObservedPath(prefix: try prefix("100.64.250.1/32"), nextHop: try address("100.64.200.0"), asPath: [65001], origin: .igp,
                         med: 50, communities: [Community(65001, 42)], largeCommunities: [LargeCommunity(65001, 1, 2)],
                         neighbor: try address("100.64.200.0")),
            ObservedPath(prefix: try prefix("fd64:250::1/128"), nextHop: try address("fd64:200::1"), asPath: [65001, 65009],
                         origin: .incomplete, localPref: 200, stale: true),
        ])
        #expect(try GoBGP.parseRIB("{}").isEmpty)
    }

    @Test func gobgpNeighbors() throws {
        let text = """
            [{"conf":{"local_asn":65002,"neighbor_address":"100.64.200.0","peer_asn":65001,"type":1},\
            "state":{"neighbor_address":"100.64.200.0","peer_asn":65001,"session_state":6}},\
            {"conf":{"neighbor_address":"fd64::1","peer_asn":65003},"state":{"session_state":3}},\
            {"conf":{"neighbor_address":"100.64.200.4","peer_asn":65004},"state":{}}]
            """
        #expect(try GoBGP.parseNeighbors(text) == [
            NeighborStatus(address: try address("100.64.200.0"), state: .established, remoteASN: 65001),
            NeighborStatus(address: try address("fd64::1"), state: .active, remoteASN: 65003),
            NeighborStatus(address: try address("100.64.200.4"), state: .idle, remoteASN: 65004),
        ])
    }

    @Test func frrRoutesWithAddPath() throws {
        let text = """
            {"vrfId": 0, "routerId": "100.64.201.3", "localAS": 65003,
             "routes": { "100.127.9.0/24": [{"prefix":"100.127.9.0/24","version":1,"advertisedTo":{"100.64.201.2":{}}},
              {"aspath":{"string":"65002","segments":[{"type":"as-sequence","list":[65002]}],"length":1},"origin":"incomplete",
               "metric":2,"valid":true,"addpathRxId":2,"addpathTxId":0,"nexthops":[{"ip":"100.64.201.2","afi":"ipv4","used":true}],
               "peer":{"peerId":"100.64.201.2","routerId":"100.64.201.0","type":"external"}},
              {"aspath":{"string":"65002 65009","segments":[{"type":"as-sequence","list":[65002,65009]}],"length":2},"origin":"IGP",
               "metric":1,"localpref":150,"valid":true,"bestpath":{"overall":true},"addpathRxId":1,"stale":true,
               "community":{"string":"65001:42 no-export","list":["65001:42","no-export"]},
               "largeCommunity":{"string":"65001:1:2","list":["65001:1:2"]},
               "nexthops":[{"ip":"fd64::1","afi":"ipv6","scope":"global","used":true},{"ip":"fe80::1","afi":"ipv6","scope":"link-local"}],
               "peer":{"peerId":"100.64.201.2","routerId":"100.64.201.0","type":"external"}}]
             } }
            """
        let peer = try address("100.64.201.2")
        #expect(try FRR.parseRoutes(text) == [
            ObservedPath(prefix: try prefix("100.127.9.0/24"), nextHop: try address("fd64::1"), asPath: [65002, 65009], origin: .igp,
                         med: 1, localPref: 150, communities: [Community(65001, 42), Community(raw: 0xFFFF_FF01)],
                         largeCommunities: [LargeCommunity(65001, 1, 2)], pathID: 1, stale: true, neighbor: peer),
            ObservedPath(prefix: try prefix("100.127.9.0/24"), nextHop: peer, asPath: [65002], origin: .incomplete, med: 2,
                         pathID: 2, neighbor: peer),
        ])
    }

    @Test func frrNeighbors() throws {
        let text = """
            {"100.64.200.0":{"remoteAs":65001,"localAs":65003,"bgpState":"Active",
              "lastNotificationReason":"OPEN Message Error/Bad Peer AS"},
             "fd64::1":{"remoteAs":65004,"bgpState":"Established"}}
            """
        #expect(try FRR.parseNeighbors(text) == [
            NeighborStatus(address: try address("100.64.200.0"), state: .active, remoteASN: 65001,
                           lastError: "OPEN Message Error/Bad Peer AS"),
            NeighborStatus(address: try address("fd64::1"), state: .established, remoteASN: 65004),
        ])
    }

    static func everyOption() throws -> DaemonConfig {
        DaemonConfig(
            asn: 65001, routerID: IPv4Address(100, 64, 0, 1), localIPv4: try address("100.64.0.1"), localIPv6: try address("fd64::1"),
            neighbors: [Neighbor(address: try address("100.64.0.0"), asn: 65002, password: "s3cret", multihopTTL: 3, passive: true,
                                 addPathReceive: true)],
            routes: [OriginatedRoute(prefix: try prefix("100.127.0.1/32"), nextHop: try address("100.64.0.1"),
                                     communities: [Community(65001, 1)], largeCommunities: [LargeCommunity(65001, 2, 3)], med: 7,
                                     localPref: 200),
                     OriginatedRoute(prefix: try prefix("fd64:ffff::1/128"), communities: [Community(65001, 4)])],
            gracefulRestart: true, holdTime: 30)
    }

    /// The daemons' own config checkers (`bird -p`, `gobgpd -d`, `bgpd -C`) accept every option.
    @Test(.interop(.bird, .gobgp, .frr))
    func daemonsAcceptEveryOption() throws {
        guard try Interop.ready(.bird, .gobgp, .frr) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let config = try Self.everyOption()
        try BIRD.validate(config, directory: network.directory("bird"))
        try GoBGP.validate(config, directory: network.directory("gobgp"))
        try FRR.validate(config, directory: network.directory("frr"))
        var plain = config
        plain.gracefulRestart = false
        plain.neighbors[0].passive = false
        plain.neighbors[0].multihopTTL = nil
        try BIRD.validate(plain, directory: network.directory("bird"))
        try GoBGP.validate(plain, directory: network.directory("gobgp"))
        try FRR.validate(plain, directory: network.directory("frr"))
        var gtsm = plain
        gtsm.neighbors[0].gtsmHops = 2
        try BIRD.validate(gtsm, directory: network.directory("bird"))
        try GoBGP.validate(gtsm, directory: network.directory("gobgp"))
        try FRR.validate(gtsm, directory: network.directory("frr"))
    }

    @Test func configsCarryEveryOption() throws {
        let config = try Self.everyOption()
        let bird = BIRD.configuration(config)
        for line in ["neighbor 100.64.0.0 as 65002;", "password \"s3cret\";", "multihop 3;", "passive on;", "add paths rx;",
                     "graceful restart on;", "hold time 30;", "route 100.127.0.1/32 via 100.64.0.1;", "bgp_med = 7;",
                     "bgp_local_pref = 200;", "bgp_community.add((65001,1));", "bgp_large_community.add((65001,2,3));",
                     "next hop address fd64::1;"] {
            #expect(bird.contains(line), "BIRD config lacks \(line)")
        }
        let gobgp = GoBGP.configuration(config)
        for line in ["peer-as = 65002", "auth-password = \"s3cret\"", "multihop-ttl = 3", "passive-mode = true", "receive = true",
                     "[neighbors.graceful-restart.config]", "hold-time = 30", "keepalive-interval = 10"] {
            #expect(gobgp.contains(line), "GoBGP config lacks \(line)")
        }
        let frr = FRR.configuration(config)
        for line in ["neighbor 100.64.0.0 remote-as 65002", "neighbor 100.64.0.0 password s3cret", "neighbor 100.64.0.0 ebgp-multihop 3",
                     "neighbor 100.64.0.0 passive", "bgp graceful-restart", "timers bgp 10 30", "network 100.127.0.1/32 route-map ORIGINATE-0",
                     " set metric 7", " set local-preference 200", " set community 65001:1", " set large-community 65001:2:3",
                     " set ip next-hop 100.64.0.1", " set ipv6 next-hop global fd64::1"] {
            #expect(frr.contains(line), "FRR config lacks \(line)")
        }
    }
}
