import BGP
import BGPSpeaker
import IP
import Logging
import Sockets
import Testing

/// Polls `probe` until it returns a value or `timeout` passes.
func eventually<T>(_ what: String, timeout: Duration = .seconds(10), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if let value = try await probe() { return value }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimeoutError(what: what, lastError: lastError.map { "\($0)" })
}

struct TimeoutError: Error, CustomStringConvertible {
    let what: String
    let lastError: String?
    var description: String { "timed out waiting for \(what)\(lastError.map { ": \($0)" } ?? "")" }
}

func ip(_ s: String) -> IPAddress { try! IPAddress(parsing: s) }
func prefix(_ s: String) -> IPPrefix { try! IPPrefix(parsing: s) }

/// Two speakers on loopback: A (listening, passive towards B) and B (connecting to A).
struct Pair {
    let loop: EventLoop
    let a: Speaker
    let b: Speaker

    static func make(asnA: UInt32 = 65001, asnB: UInt32 = 65002, peerA: (inout PeerSettings) -> Void = { _ in },
                     peerB: (inout PeerSettings) -> Void = { _ in }, hostB: String = "127.0.0.2") async throws -> Pair {
        let loop = try EventLoop(name: "speaker-test")
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let a = Speaker(settings: SpeakerSettings(asn: asnA, routerID: IPv4Address(10, 0, 0, 1), listenAddresses: [ip("127.0.0.1")],
                                                  listenPort: 0, holdTime: 9, connectRetryTime: 2, idleHoldTime: 1, maximumIdleHoldTime: 2),
                        loop: loop, logger: logger)
        try await a.start()
        let listening = await a.listeningAddresses()
        let port = UInt16(listening.first!.split(separator: ":").last!)!
        let b = Speaker(settings: SpeakerSettings(asn: asnB, routerID: IPv4Address(10, 0, 0, 2), holdTime: 9, connectRetryTime: 2,
                                                  idleHoldTime: 1, maximumIdleHoldTime: 2),
                        loop: loop, logger: logger)
        try await b.start()
        var pa = PeerSettings(name: "b", address: ip(hostB), asn: asnB, passive: true, families: [.ipv4, .ipv6])
        pa.otherFamilyNextHop = ip("fd00::1")
        peerA(&pa)
        var pb = PeerSettings(name: "a", address: ip("127.0.0.1"), asn: asnA, port: port, localAddress: ip(hostB), families: [.ipv4, .ipv6])
        peerB(&pb)
        try await a.addPeer(pa)
        try await b.addPeer(pb)
        return Pair(loop: loop, a: a, b: b)
    }

    func waitEstablished() async throws {
        _ = try await eventually("A ⇄ B Established") {
            let sa = await a.peer(named: "b"), sb = await b.peer(named: "a")
            return sa?.state == .established && sb?.state == .established ? true : nil
        }
    }

    func received(_ p: IPPrefix) async throws -> [RIBEntry] {
        try await b.receivedRoutes(peer: "a").filter { $0.prefix == p }
    }

    func close() async {
        await a.shutdown(mode: .withdraw(message: nil))
        await b.shutdown(mode: .withdraw(message: nil))
        try? await Task.sleep(for: .milliseconds(50))
        loop.shutdown()
    }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct SpeakerTests {
    @Test func ebgpAnnounceWithdrawAndAttributes() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let p = prefix("100.64.1.1/32")
        await pair.a.announce(Route(prefix: p, path: Path(communities: [Community(asn: 65001, value: 100)],
                                                             largeCommunities: [LargeCommunity(65001, 1, 2)], med: 50, localPreference: 300,
                                                             asPathPrepend: 2)))
        let entries = try await eventually("route at B") { try await pair.received(p).first }
        #expect(entries.nextHop == ip("127.0.0.1"))
        #expect(entries.asPath == [65001, 65001, 65001])
        #expect(entries.communities == [Community(asn: 65001, value: 100)])
        #expect(entries.largeCommunities == [LargeCommunity(65001, 1, 2)])
        #expect(entries.med == 50)
        #expect(entries.localPreference == nil)  // eBGP: no LOCAL_PREF
        let v6 = prefix("fd64::10/128")
        await pair.a.announce(Route(prefix: v6, path: Path()))
        let e6 = try await eventually("IPv6 route at B") { try await pair.received(v6).first }
        #expect(e6.nextHop == ip("fd00::1"))
        await pair.a.withdraw([p, v6])
        _ = try await eventually("withdrawal at B") { try await pair.b.receivedRoutes(peer: "a").isEmpty ? true : nil }
        let snap = try #require(await pair.a.peer(named: "b"))
        #expect(snap.negotiated?.families == ["ipv4-unicast", "ipv6-unicast"])
        #expect(snap.counters.updatesOut >= 4)
    }

    @Test func tenThousandPrefixesArriveComplete() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        // Announced before the session is up: the initial transfer carries them, then End-of-RIB.
        let routes = (0..<10_000).map { i in
            Route(prefix: IPPrefix(host: .v4(IPv4Address(UInt32(100) << 24 | UInt32(65) << 16 | UInt32(i)))),
                  path: Path(communities: [Community(asn: 65001, value: UInt16(i % 3))]))
        }
        await pair.a.announce(routes)
        try await pair.waitEstablished()
        _ = try await eventually("10,000 routes at B", timeout: .seconds(20)) {
            let count = try await pair.b.receivedRoutes(peer: "a").count
            return count == 10_000 ? true : nil
        }
        let snap = try #require(await pair.a.peer(named: "b"))
        #expect(snap.counters.prefixesAdvertised == 10_000)
        // Packed: three attribute sets, ~4 KiB messages hold several hundred /32s each.
        #expect(snap.counters.updatesOut < 100)
        await pair.a.withdraw(routes.map(\.prefix))
        _ = try await eventually("all withdrawn at B", timeout: .seconds(20)) { try await pair.b.receivedRoutes(peer: "a").isEmpty ? true : nil }
    }

    /// The initial transfer walks a snapshot of the Loc-RIB; changes made while it runs
    /// (withdrawals, new paths, new prefixes, path sets freed and their IDs reused) must still
    /// leave the peer with exactly the current table.
    @Test func changesDuringTheInitialTransferWin() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        func host(_ i: Int) -> IPPrefix { IPPrefix(host: .v4(IPv4Address(UInt32(100) << 24 | UInt32(66) << 16 | UInt32(i)))) }
        func path(_ tag: Int) -> Path { Path(communities: [Community(asn: 65001, value: UInt16(tag))]) }
        let count = 40_000
        await pair.a.announce((0..<count).map { Route(prefix: host($0), path: path($0 % 2)) })
        try await pair.waitEstablished()
        // At once, in slices, while the transfer is under way.
        for slice in stride(from: 0, to: count, by: 4_000) {
            let withdrawn = (slice..<slice + 1_000).map(host)
            let changed = (slice + 1_000..<slice + 2_000).map { Route(prefix: host($0), path: path(7)) }
            let added = (0..<100).map { Route(prefix: host(count + slice + $0), path: path(9)) }
            await pair.a.apply(announce: changed + added, withdraw: withdrawn)
        }
        var expected: [IPPrefix: UInt16] = [:]
        for i in 0..<count { expected[host(i)] = UInt16(i % 2) }
        for slice in stride(from: 0, to: count, by: 4_000) {
            for i in slice..<slice + 1_000 { expected[host(i)] = nil }
            for i in slice + 1_000..<slice + 2_000 { expected[host(i)] = 7 }
            for i in 0..<100 { expected[host(count + slice + i)] = 9 }
        }
        let final = expected
        let received = try await eventually("B holds exactly A's table", timeout: .seconds(40)) { () -> [IPPrefix: UInt16]? in
            var got: [IPPrefix: UInt16] = [:]
            for entry in try await pair.b.receivedRoutes(peer: "a") { got[entry.prefix] = entry.communities.first.map { UInt16(truncatingIfNeeded: $0.rawValue) } }
            return got == final ? got : nil
        }
        #expect(received.count == final.count)
        let snap = try #require(await pair.a.peer(named: "b"))
        #expect(snap.counters.prefixesAdvertised == final.count)
    }

    @Test func ibgpSendsLocalPrefAndEmptyASPath() async throws {
        let pair = try await Pair.make(asnA: 65001, asnB: 65001)
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let p = prefix("100.64.2.1/32"), q = prefix("100.64.2.2/32")
        await pair.a.announce([Route(prefix: p, path: Path(localPreference: 250)), Route(prefix: q, path: Path())])
        let e = try await eventually("route at B") { try await pair.received(p).first }
        #expect(e.asPath == [])
        #expect(e.localPreference == 250)
        let f = try await eventually("route at B") { try await pair.received(q).first }
        #expect(f.localPreference == 100)
    }

    @Test func addPathSendsEveryNextHop() async throws {
        let pair = try await Pair.make(peerA: { $0.addPathSend = true }, peerB: { $0.addPathReceive = true })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let p = prefix("100.64.3.1/32")
        let hops = ["127.0.0.11", "127.0.0.12", "127.0.0.13"].map { Path(nextHop: .address(ip($0))) }
        await pair.a.announce(Route(prefix: p, paths: hops))
        let paths = try await eventually("three paths at B") { () -> [RIBEntry]? in
            let r = try await pair.received(p)
            return r.count == 3 ? r : nil
        }
        #expect(Set(paths.compactMap(\.nextHop)) == Set(["127.0.0.11", "127.0.0.12", "127.0.0.13"].map(ip)))
        // Remove one next hop: only its path ID is withdrawn.
        await pair.a.announce(Route(prefix: p, paths: Array(hops.prefix(2))))
        _ = try await eventually("two paths at B") { try await pair.received(p).count == 2 ? true : nil }
    }

    @Test func withoutAddPathOnePathIsChosenAndCounted() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let p = prefix("100.64.4.1/32")
        await pair.a.announce(Route(prefix: p, paths: ["127.0.0.13", "127.0.0.11"].map { Path(nextHop: .address(ip($0))) }))
        let e = try await eventually("route at B") { try await pair.received(p).first }
        #expect(e.nextHop == ip("127.0.0.11"))
        let snap = try #require(await pair.a.peer(named: "b"))
        #expect(snap.counters.prefixesWithFewerPaths == 1)
    }

    @Test func peerSelectorLimitsWhichPeersGetAPath() async throws {
        let pair = try await Pair.make(peerA: { $0.labels = ["site": "x"] })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let yes = prefix("100.64.5.1/32"), no = prefix("100.64.5.2/32")
        await pair.a.announce([Route(prefix: yes, path: Path(peerSelector: ["site": "x"])), Route(prefix: no, path: Path(peerSelector: ["site": "y"]))])
        _ = try await eventually("selected route at B") { try await pair.received(yes).first }
        #expect(try await pair.received(no).isEmpty)
    }

    @Test func maxPrefixClosesWithCease() async throws {
        let pair = try await Pair.make(peerB: { $0.maxPrefixes = MaxPrefixLimit(5) })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        await pair.a.announce((1...10).map { Route(prefix: prefix("100.64.6.\($0)/32")) })
        let error = try await eventually("max-prefix at B") { () -> PeerError? in
            let e = await pair.b.peer(named: "a")?.lastError
            return e?.notification != nil ? e : nil
        }
        #expect(error.notification?.code == 6)
        #expect(error.notification?.subcode == 1)
        #expect(error.reason.contains("maximum number of prefixes"))
        let seenByA = try await eventually("A saw the Cease") { await pair.a.peer(named: "b")?.lastError?.notification }
        #expect(seenByA.direction == .received)
        #expect(seenByA.name.contains("Maximum Number of Prefixes"))
    }

    @Test func maxPrefixWarnOnlyKeepsTheSession() async throws {
        let pair = try await Pair.make(peerB: { $0.maxPrefixes = MaxPrefixLimit(5, action: .warn) })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        await pair.a.announce((1...10).map { Route(prefix: prefix("100.64.8.\($0)/32")) })
        let snap = try await eventually("warning at B") { () -> PeerSnapshot? in
            let s = await pair.b.peer(named: "a")
            return s?.hint?.contains("warn only") == true ? s : nil
        }
        #expect(snap.state == .established)
        _ = try await eventually("all ten kept") { try await pair.b.receivedRoutes(peer: "a").count == 10 ? true : nil }
    }

    @Test func adjRIBInAndRouteRefresh() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let p = prefix("100.64.7.1/32")
        await pair.b.announce(Route(prefix: p))
        let e = try await eventually("B's route in A's Adj-RIB-In") { try await pair.a.receivedRoutes(peer: "b").first }
        #expect(e.asPath == [65002])
        let before = try #require(await pair.b.peer(named: "a")).counters.updatesOut
        try await pair.a.softReset(peer: "b", .inbound)   // ROUTE-REFRESH to B → B resends
        _ = try await eventually("B resent after ROUTE-REFRESH") {
            (await pair.b.peer(named: "a")?.counters.updatesOut ?? 0) > before ? true : nil
        }
    }

    @Test func shutdownSendsAdministrativeShutdownWithMessage() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        try await pair.a.updatePeer({ var s = PeerSettings(name: "b", address: ip("127.0.0.2"), asn: 65002, passive: true, families: [.ipv4, .ipv6])
            s.otherFamilyNextHop = ip("fd00::1"); s.enabled = false; return s }())
        let n = try await eventually("B got the Cease") { await pair.b.peer(named: "a")?.lastError?.notification }
        #expect(n.code == 6 && n.subcode == 2)
        #expect(n.text == "peer disabled")
        #expect(await pair.a.peer(named: "b")?.state == .disabled)
    }

    /// The largest max-prefix limit the API takes (2^63 − 1) is a limit like any other: the
    /// session comes up and the peer can be read (one above it overflowed and trapped).
    @Test func theLargestMaxPrefixLimitIsALimitLikeAnyOther() async throws {
        let pair = try await Pair.make(peerB: { $0.maxPrefixes = MaxPrefixLimit(.max) })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        #expect(await pair.b.peer(named: "a")?.state == .established)
    }

    /// RFC 4486 §4: a deleted peer gets Cease/Peer De-configured (6/3).
    @Test func removingAPeerSendsPeerDeconfigured() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        try await pair.a.removePeer(named: "b")
        let n = try await eventually("B got the Cease") { await pair.b.peer(named: "a")?.lastError?.notification }
        #expect(n.code == 6 && n.subcode == 3, "\(n)")
        #expect(await pair.a.peer(named: "b") == nil)
    }

    /// `herald serve --shutdown withdraw`: stopping the speaker sends Cease/Administrative
    /// Shutdown (6/2, not the 6/4 of a hard reset) with the RFC 8203 message, so peers drop the
    /// routes at once (docs/speaker.md).
    @Test func withdrawShutdownSendsAdministrativeShutdownWithItsMessage() async throws {
        let pair = try await Pair.make()
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        await pair.a.shutdown(mode: .withdraw(message: "herald stopping"))
        let n = try await eventually("B got the Cease") { await pair.b.peer(named: "a")?.lastError?.notification }
        #expect(n.code == 6 && n.subcode == 2, "\(n)")
        #expect(n.text == "herald stopping")
    }

    @Test func unknownSourceIsClosed() async throws {
        // A expects B at 127.0.0.3, but B connects from 127.0.0.4: A closes it at once.
        let pair = try await Pair.make(peerB: { $0.localAddress = ip("127.0.0.4") }, hostB: "127.0.0.3")
        defer { Task { await pair.close() } }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await pair.a.peer(named: "b")?.state != .established)
        #expect(await pair.b.peer(named: "a")?.state != .established)
    }

    @Test func peerClosingTheConnectionIsReported() async throws {
        let pair = try await Pair.make(peerB: { $0.holdTime = 3 })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        await pair.a.shutdown(mode: .gracefulRestart)   // closes TCP without a NOTIFICATION
        let e = try await eventually("B noticed") { await pair.b.peer(named: "a")?.lastError }
        #expect(e.reason.contains("closed") || e.reason.contains("reset"))
    }
}
