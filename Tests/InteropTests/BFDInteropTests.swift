import BGPSpeaker
import Foundation
import IP
import Testing
import TestSupport

// BFD with BIRD 2 (`protocol bfd` + `bfd on` in the BGP protocol) over a veth pair between two
// test namespaces. Cutting BFD (nftables drops UDP 3784 both ways inside BIRD's namespace, so
// BGP's TCP keeps working and only BFD can notice) must take Herald's BGP session down within
// the detection time, with the BFD reason; removing the rule brings both back.

private let heraldASN: UInt32 = 4_200_000_001
private let birdASN: UInt32 = 65010

/// Unix time in ms, the clock Herald stamps `lastError.at` with. Detection is measured between
/// the cut and Herald's own stamp, so a busy test runner that polls late does not count.
private func wallMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// Drops matching packets in and out of the router's namespace (nftables table
/// `herald_bfd_cut`); returns the wall time (ms) when the rules were in place.
private func cut(_ ns: NetworkNamespace, _ input: String, _ output: String) async throws -> Int64 {
    let nft = Interop.nft()
    try ns.check([nft, "add table inet herald_bfd_cut"])
    try ns.check([nft, "add chain inet herald_bfd_cut input { type filter hook input priority 0 ; }"])
    try ns.check([nft, "add chain inet herald_bfd_cut output { type filter hook output priority 0 ; }"])
    // One transaction for both directions.
    let rules = "add rule inet herald_bfd_cut input \(input)\nadd rule inet herald_bfd_cut output \(output)\n"
    let file = NSTemporaryDirectory() + "herald-bfd-cut-\(getpid()).nft"
    try rules.write(toFile: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: file) }
    try ns.check([nft, "-f", file])
    return wallMilliseconds()
}

/// Removes the rules and waits until BFD is Up again on BIRD's side.
private func restore(_ bird: BIRD, _ link: Link) async throws {
    try bird.namespace.check([Interop.nft(), "delete table inet herald_bfd_cut"])
    _ = try await eventually("BIRD's BFD session Up again", timeout: .seconds(30)) { try bird.bfdState(of: link.a.ipv4) == "Up" ? true : nil }
}


@Suite(.serialized, .timeLimit(.minutes(3)), .timingSensitive)
struct BFDInteropTests {
    @Test(.interop(.bird, .nft))
    func birdBFDCutTakesBGPDownWithinTheDetectionTime() async throws {
        guard try Interop.ready(.bird, .nft) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let h = try await HeraldUnderTest.start(in: link.a.namespace, settings: SpeakerSettings(
            asn: heraldASN, routerID: link.a.ipv4.v4, listenAddresses: [link.a.ipv4], holdTime: 9, connectRetryTime: 2,
            idleHoldTime: 1, maximumIdleHoldTime: 2))
        defer { h.loop.shutdown() }
        try await h.speaker.addPeer(PeerSettings(name: "bird", address: link.b.ipv4, asn: birdASN, localAddress: link.a.ipv4,
                                                 families: [.ipv4], bfd: PeerBFDSettings(minTx: 300, minRx: 300, multiplier: 3)))
        var neighbor = Neighbor(address: link.a.ipv4, asn: heraldASN, families: [.ipv4])
        neighbor.bfd = true
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(asn: birdASN, on: link.b, neighbors: [neighbor]),
                                        network: network)
        defer { bird.stop() }

        // Both come up; BIRD shows the session Up, Herald shows 300 ms × 3 = 900 ms.
        try await bird.waitEstablished(with: link.a.ipv4)
        try await h.waitEstablished("bird")
        _ = try await eventually("BIRD's BFD session with Herald Up") { try bird.bfdState(of: link.a.ipv4) == "Up" ? true : nil }
        let up = try await h.waitPeer("bird", "BFD Up at 300 ms × 3") { $0.bfd?.state == "up" && $0.bfd?.detectionTime == 900 }
        #expect(up.bfd?.transmitInterval == 300 && up.bfd?.remoteDiscriminator != nil && up.bfd?.packetsDiscarded == 0)

        // 1. The link dies: every packet to and from Herald is dropped inside BIRD's namespace
        //    (the veth keeps its carrier, so no kernel on either side notices). BGP's TCP is frozen
        //    with a 9 s hold time: only BFD can notice, within its 900 ms.
        let cut1 = try await cut(bird.namespace, "ip saddr \(link.a.ipv4) drop", "ip daddr \(link.a.ipv4) drop")
        let down = try await h.waitPeer("bird", "BGP torn down by BFD", timeout: .seconds(5)) { $0.state != .established }
        let detected = (down.lastError?.at ?? .max) - cut1
        print("BFD interop (BIRD), link cut: Herald's BGP session went down \(detected) ms after the cut; negotiated detection time 900 ms; reason: \(down.lastError?.reason ?? "-")")
        #expect(down.lastError?.reason == "BFD down (detection time 900 ms)")
        #expect(down.lastError?.notification?.code == 6 && down.lastError?.notification?.subcode == 10)  // Cease / BFD Down (RFC 9384)
        #expect(down.bfd?.state == "down" && down.bfd?.lastDiagnostic == "control detection time expired")
        // The last packet before the cut came at most one transmit interval earlier, so the
        // session ends between 900 − 300 and 900 ms after the cut, plus the time to apply the rule.
        #expect(detected < 1_200)
        _ = try await eventually("BIRD's BFD session Down") { try bird.bfdState(of: link.a.ipv4) != "Up" ? true : nil }
        try await restore(bird, link)
        try await h.waitEstablished("bird", timeout: .seconds(40))
        try await bird.waitEstablished(with: link.a.ipv4)

        // 2. Only BFD is cut (UDP 3784 both ways) while TCP still works: both ends detect the
        //    failure, and whichever closes BGP first (Herald on its timer, or BIRD with a Cease
        //    over the working TCP connection), Herald's session is down within the detection time.
        let flaps = try #require(await h.speaker.peer(named: "bird")).counters.flaps
        let cut2 = try await cut(bird.namespace, "udp dport 3784 drop", "udp dport 3784 drop")
        let down2 = try await h.waitPeer("bird", "BGP down after BFD was cut", timeout: .seconds(5)) { $0.counters.flaps > flaps }
        let detected2 = (down2.lastError?.at ?? .max) - cut2
        print("BFD interop (BIRD), UDP 3784 dropped: Herald's BGP session went down \(detected2) ms after the cut; reason: \(down2.lastError?.reason ?? "-")")
        #expect(detected2 < 1_200)
        _ = try await h.waitPeer("bird", "Herald's BFD Down") { $0.bfd?.state != "up" }
        try await restore(bird, link)
        try await h.waitEstablished("bird", timeout: .seconds(40))
        try await bird.waitEstablished(with: link.a.ipv4)
        await h.stop()
    }

    /// IPv6 (hop limit 255 out, IPV6_RECVHOPLIMIT checked in), and a frozen router rather than a
    /// cut link: SIGSTOP on BIRD stops its BFD and its BGP alike; Herald notices in the detection
    /// time, not the hold time, and both come back after SIGCONT.
    @Test(.interop(.bird))
    func ipv6FrozenBIRDIsDetectedByBFD() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let h = try await HeraldUnderTest.start(in: link.a.namespace, settings: SpeakerSettings(
            asn: heraldASN, routerID: link.a.ipv4.v4, listenAddresses: [link.a.ipv6], holdTime: 9, connectRetryTime: 2,
            idleHoldTime: 1, maximumIdleHoldTime: 2))
        defer { h.loop.shutdown() }
        try await h.speaker.addPeer(PeerSettings(name: "bird", address: link.b.ipv6, asn: birdASN, localAddress: link.a.ipv6,
                                                 families: [.ipv6], bfd: PeerBFDSettings(minTx: 200, minRx: 200, multiplier: 3)))
        var neighbor = Neighbor(address: link.a.ipv6, asn: heraldASN, families: [.ipv6])
        neighbor.bfd = true
        var config = DaemonConfig(asn: birdASN, on: link.b, neighbors: [neighbor])
        config.bfdTimers = (minRx: 200, minTx: 200, multiplier: 3)
        let bird = try await BIRD.start(in: link.b.namespace, config: config, network: network)
        defer { bird.stop() }

        try await h.waitEstablished("bird")
        _ = try await eventually("BIRD's BFD session with Herald Up") { try bird.bfdState(of: link.a.ipv6) == "Up" ? true : nil }
        let up = try await h.waitPeer("bird", "BFD Up at 200 ms × 3") { $0.bfd?.state == "up" && $0.bfd?.detectionTime == 600 }
        #expect(up.bfd?.transmitInterval == 200 && up.bfd?.packetsDiscarded == 0)

        kill(bird.pid, SIGSTOP)
        let frozen = wallMilliseconds()
        let down = try await h.waitPeer("bird", "BGP torn down by BFD", timeout: .seconds(5)) { $0.state != .established }
        let detected = (down.lastError?.at ?? .max) - frozen
        kill(bird.pid, SIGCONT)
        print("BFD interop (BIRD, IPv6), router frozen: Herald's BGP session went down \(detected) ms after SIGSTOP; negotiated detection time 600 ms; reason: \(down.lastError?.reason ?? "-")")
        #expect(down.lastError?.reason == "BFD down (detection time 600 ms)")
        #expect(detected < 900)

        try await h.waitPeer("bird", "BFD Up again", timeout: .seconds(30)) { $0.bfd?.state == "up" }
        try await h.waitEstablished("bird", timeout: .seconds(40))
        try await bird.waitEstablished(with: link.a.ipv6)
        await h.stop()
    }

    /// FRR's bfdd (run on its own with a configured peer) against Herald, beside FRR's bgpd: BFD
    /// comes Up at 300 ms × 3; when the link is cut, Herald's BFD closes the BGP session within
    /// the detection time (bgpd, without zebra, knows nothing of BFD: only Herald acts on it).
    @Test(.interop(.frr, .bfdd, .nft))
    func frrBFDDCutTakesBGPDownWithinTheDetectionTime() async throws {
        guard try Interop.ready(.frr, .bfdd, .nft) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let h = try await HeraldUnderTest.start(in: link.a.namespace, settings: SpeakerSettings(
            asn: heraldASN, routerID: link.a.ipv4.v4, listenAddresses: [link.a.ipv4], holdTime: 9, connectRetryTime: 2,
            idleHoldTime: 1, maximumIdleHoldTime: 2))
        defer { h.loop.shutdown() }
        try await h.speaker.addPeer(PeerSettings(name: "frr", address: link.b.ipv4, asn: birdASN, localAddress: link.a.ipv4,
                                                 families: [.ipv4], bfd: PeerBFDSettings(minTx: 300, minRx: 300, multiplier: 3)))
        let frr = try await FRR.start(in: link.b.namespace, config: DaemonConfig(
            asn: birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: heraldASN, families: [.ipv4])]), network: network)
        defer { frr.stop() }
        let bfdd = try await BFDD.start(in: link.b.namespace, peer: link.a.ipv4, local: link.b.ipv4, minRx: 300, minTx: 300,
                                        multiplier: 3, network: network)
        defer { bfdd.stop() }

        try await h.waitEstablished("frr")
        _ = try await eventually("bfdd's session with Herald up") { try bfdd.peers()[link.a.ipv4.description] == "up" ? true : nil }
        let up = try await h.waitPeer("frr", "BFD Up at 300 ms × 3") { $0.bfd?.state == "up" && $0.bfd?.detectionTime == 900 }
        #expect(up.bfd?.transmitInterval == 300 && up.bfd?.packetsDiscarded == 0)

        let cutAt = try await cut(link.b.namespace, "ip saddr \(link.a.ipv4) drop", "ip daddr \(link.a.ipv4) drop")
        let down = try await h.waitPeer("frr", "BGP torn down by BFD", timeout: .seconds(5)) { $0.state != .established }
        let detected = (down.lastError?.at ?? .max) - cutAt
        print("BFD interop (FRR bfdd), link cut: Herald's BGP session went down \(detected) ms after the cut; negotiated detection time 900 ms; reason: \(down.lastError?.reason ?? "-")")
        #expect(down.lastError?.reason == "BFD down (detection time 900 ms)")
        #expect(detected < 1_200)
        _ = try await eventually("bfdd's session down") { try bfdd.peers()[link.a.ipv4.description] != "up" ? true : nil }

        try link.b.namespace.check([Interop.nft(), "delete table inet herald_bfd_cut"])
        _ = try await eventually("bfdd's session up again", timeout: .seconds(30)) { try bfdd.peers()[link.a.ipv4.description] == "up" ? true : nil }
        try await h.waitPeer("frr", "BFD Up again", timeout: .seconds(30)) { $0.bfd?.state == "up" }
        try await h.waitEstablished("frr", timeout: .seconds(40))
        await h.stop()
    }

    /// The whole product: `herald serve` (the built binary, real port 3784) configured through
    /// the API with `bfd`, BIRD with `protocol bfd`: the API, the CLI, the history and /metrics
    /// show the session; a link cut closes BGP with the BFD reason; both come back.
    @Test(.interop(.bird, .nft))
    func heraldServeWithBFDThroughTheAPI() async throws {
        guard try Interop.ready(.bird, .nft) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: heraldASN)
        defer { _ = herald.stop() }
        var neighbor = Neighbor(address: link.a.ipv4, asn: heraldASN, families: [.ipv4])
        neighbor.bfd = true
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(asn: birdASN, on: link.b, neighbors: [neighbor]),
                                        network: network)
        defer { bird.stop() }
        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","local_address":"\#(link.a.ipv4)","asn":\#(birdASN),"bfd":{"enabled":true}}"#, status: 201)

        let up = try await eventually("the API shows BGP established and BFD up at 900 ms") { () -> (Double?, Bool)? in
            let peer = try herald.must("GET", "/v1/peers/bird", status: 200).json
            let session = (peer["bfd"] as? [String: Any])?["session"] as? [String: Any]
            return peer["state"] as? String == "established" && session?["state"] as? String == "up" && session?["detection_time"] as? Double == 900
                ? (session?["transmit_interval"] as? Double, session?["remote_discriminator"] != nil) : nil
        }
        #expect(up.0 == 300 && up.1)
        _ = try await eventually("BIRD's BFD session Up") { try bird.bfdState(of: link.a.ipv4) == "Up" ? true : nil }
        let cli = try link.a.namespace.run([HeraldProcess.binary, "peers"])
        #expect(cli.succeeded && cli.stdout.contains("up 900ms"), "\(cli)")
        // The status page, rendered by headless Chromium in Herald's namespace, shows it too.
        if let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let dom = try link.a.namespace.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                                "--no-first-run", "--user-data-dir=\(try network.directory("chromium"))",
                                                "--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:8179/?live=0"], timeout: .seconds(60))
            #expect(dom.stdout.contains(#"<td class="bfd up">up 900 ms</td>"#), "\(dom.stdout.suffix(3000))")
        } else if Interop.isRequired {
            Issue.record("chromium is missing (Debian package chromium)")
        }
        let metrics = try herald.must("GET", "/metrics", status: 200).body
        #expect(metrics.contains(#"herald_bfd_session_state{peer="bird",state="up"} 1"#) && metrics.contains(#"herald_bfd_detection_time_seconds{peer="bird"} 0.9"#), "\(metrics)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let file = try network.directory("metrics") + "/metrics.txt"
            try metrics.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try Command.run(["sh", "-c", "/usr/bin/promtool check metrics < \(file)"])
            #expect(check.succeeded && check.stdout.isEmpty && check.stderr.isEmpty, "\(check)")
        }

        let cutAt = try await cut(link.b.namespace, "ip saddr \(link.a.ipv4) drop", "ip daddr \(link.a.ipv4) drop")
        let (down, at) = try await eventually("the API shows the BFD reason", timeout: .seconds(5), every: .milliseconds(50)) { () -> (String, String)? in
            let peer = try herald.must("GET", "/v1/peers/bird", status: 200).json
            let error = peer["last_error"] as? [String: Any]
            return peer["state"] as? String != "established" ? (error?["reason"] as? String ?? "-", error?["at"] as? String ?? "") : nil
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let detected = formatter.date(from: at).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) - cutAt } ?? .max
        print("BFD interop (herald serve + BIRD), link cut: Herald closed the session \(detected) ms after the cut (last_error.at)")
        #expect(down == "BFD down (detection time 900 ms)")
        #expect(detected < 1_200)
        let events = try herald.must("GET", "/v1/peers/bird/events", status: 200).json["events"] as? [[String: Any]] ?? []
        let reasons = events.compactMap { $0["reason"] as? String }
        #expect(reasons.contains("BFD up") && reasons.contains("BFD down: control detection time expired")
            && reasons.contains("BFD down (detection time 900 ms)"), "\(reasons)")

        try await restore(bird, link)
        _ = try await eventually("the API shows BGP established and BFD up again", timeout: .seconds(40)) { () -> Bool? in
            let peer = try herald.must("GET", "/v1/peers/bird", status: 200).json
            let session = (peer["bfd"] as? [String: Any])?["session"] as? [String: Any]
            return peer["state"] as? String == "established" && session?["state"] as? String == "up" ? true : nil
        }
        #expect(herald.stop() == 0)
    }
}
