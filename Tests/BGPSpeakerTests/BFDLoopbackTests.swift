import BFD
import BGPSpeaker
import Foundation
import Glibc
import IP
import Logging
import Sockets
import Synchronization
import Testing
import TestSupport

// BFD between two Herald speakers over loopback (127.0.0.1 ⇄ 127.0.0.2), each on its own event
// loop so that one can be frozen: a frozen loop sends nothing, which is what a dead link or a
// hung process looks like to the other end. The UDP port is a test port (RFC 5881 says 3784).

private struct BFDPair {
    let loopA: EventLoop, loopB: EventLoop
    let a: Speaker, b: Speaker

    static func make(port: UInt16, bfdA: PeerBFDSettings? = PeerBFDSettings(), bfdB: PeerBFDSettings? = PeerBFDSettings()) async throws -> BFDPair {
        var logger = Logger(label: "bfd-test")
        logger.logLevel = .warning
        let loopA = try EventLoop(name: "bfd-a"), loopB = try EventLoop(name: "bfd-b")
        let a = Speaker(settings: SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 1), listenAddresses: [ip("127.0.0.1")],
                                                  listenPort: 0, holdTime: 9, connectRetryTime: 1, idleHoldTime: 1, maximumIdleHoldTime: 1,
                                                  bfdPort: port),
                        loop: loopA, logger: logger)
        try await a.start()
        let bgpPort = UInt16(await a.listeningAddresses().first!.split(separator: ":").last!)!
        let b = Speaker(settings: SpeakerSettings(asn: 65002, routerID: IPv4Address(10, 0, 0, 2), holdTime: 9, connectRetryTime: 1,
                                                  idleHoldTime: 1, maximumIdleHoldTime: 1, bfdPort: port),
                        loop: loopB, logger: logger)
        try await b.start()
        try await a.addPeer(PeerSettings(name: "b", address: ip("127.0.0.2"), asn: 65002, localAddress: ip("127.0.0.1"), passive: true, bfd: bfdA))
        try await b.addPeer(PeerSettings(name: "a", address: ip("127.0.0.1"), asn: 65001, port: bgpPort, localAddress: ip("127.0.0.2"), bfd: bfdB))
        return BFDPair(loopA: loopA, loopB: loopB, a: a, b: b)
    }

    func waitUp() async throws {
        _ = try await eventually("BGP Established and BFD Up on both ends", timeout: .seconds(20)) {
            let sa = await a.peer(named: "b"), sb = await b.peer(named: "a")
            return sa?.state == .established && sb?.state == .established && sa?.bfd?.state == "up" && sb?.bfd?.state == "up" ? true : nil
        }
    }

    func close() async {
        await a.shutdown(mode: .withdraw(message: nil))
        await b.shutdown(mode: .withdraw(message: nil))
        try? await Task.sleep(for: .milliseconds(50))
        loopA.shutdown()
        loopB.shutdown()
    }
}

@Suite("BFD between two speakers over loopback", .serialized, .timeLimit(.minutes(2)), .timingSensitive)
struct BFDLoopbackTests {
    @Test("BFD comes up with BGP and shows the negotiated figures")
    func comesUp() async throws {
        let pair = try await BFDPair.make(port: 23_784)
        try await pair.waitUp()
        let a = try #require(await pair.a.peer(named: "b")?.bfd)
        let b = try #require(await pair.b.peer(named: "a")?.bfd)
        #expect(a.remoteDiscriminator == b.localDiscriminator && b.remoteDiscriminator == a.localDiscriminator)
        // The poll sequence after Up takes both ends to 300 ms × 3.
        _ = try await eventually("the fast rate on both ends") {
            let a = await pair.a.peer(named: "b")?.bfd, b = await pair.b.peer(named: "a")?.bfd
            return a?.transmitInterval == 300 && b?.transmitInterval == 300 && a?.detectionTime == 900 && b?.detectionTime == 900 ? true : nil
        }
        #expect(a.packetsIn > 0 && a.packetsOut > 0 && a.packetsDiscarded == 0)
        #expect(a.lastDiagnostic == nil)
        await pair.close()
    }

    @Test("A silent peer: BFD Down tears BGP down within the detection time, and both come back")
    func silentPeerTearsBGPDown() async throws {
        let pair = try await BFDPair.make(port: 23_785)
        try await pair.waitUp()
        _ = try await eventually("the fast rate") { await pair.a.peer(named: "b")?.bfd?.detectionTime == 900 ? true : nil }
        // Freeze B's loop for 2.5 s: no BFD packets and no BGP keepalives (hold time 9 s, so only
        // BFD can notice).
        // Measured on Herald's clocks: from the moment B's loop stops (stamped on that loop) to
        // A's lastError stamp, so a test runner that polls late does not count.
        let frozenAt = Mutex<Int64>(0)
        pair.loopB.execute {
            frozenAt.withLock { $0 = Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
            usleep(2_500_000)
        }
        let down = try await eventually("A's BGP session torn down by BFD", timeout: .seconds(5)) {
            let s = await pair.a.peer(named: "b")
            return s?.state != .established ? s : nil
        }
        let detected = (down.lastError?.at ?? .max) - frozenAt.withLock { $0 }
        print("BFD loopback: BGP torn down \(detected) ms after the peer went silent (detection time 900 ms)")
        #expect(down.lastError?.reason == "BFD down (detection time 900 ms)")
        #expect(down.lastError?.notification?.code == 6 && down.lastError?.notification?.subcode == 10)  // Cease / BFD Down
        #expect(down.bfd?.state == "down" && down.bfd?.lastDiagnostic == "control detection time expired")
        // The last packet came at most one transmit interval before the freeze.
        #expect(detected < 1_200)
        // Not early: at least detection time − one interval (the last packet may precede the
        // freeze by up to 300 ms), less the lag of a loaded test machine between freezing the peer
        // and recording when.
        #expect(detected >= 400)
        // B wakes up to A's Cease (BFD Down) on TCP and A's BFD Down packets (diagnostic 3), in
        // whichever order the loop reads them: its session ends for one or the other. A BFD
        // reason names the detection time that was in force, not the slow rate A now advertises.
        let b = try await eventually("B's BGP session closed") {
            let s = await pair.b.peer(named: "a")
            return s?.lastError != nil ? s : nil
        }
        let reason = b.lastError?.reason ?? ""
        #expect(reason == "BFD down (neighbor signaled session down; detection time 900 ms)"
            || reason == "BFD down (detection time 900 ms)" || reason.contains("NOTIFICATION 6/10"), "\(reason)")
        // BFD and BGP come back through the normal FSM.
        try await pair.waitUp()
        #expect(await pair.a.peer(named: "b")?.counters.flaps == 1)
        await pair.close()
    }

    @Test("A peer that signals AdminDown does not take BGP down (RFC 5882 §3.2); BGP stays up while BFD stays Down")
    func adminDownKeepsBGP() async throws {
        let pair = try await BFDPair.make(port: 23_786)
        try await pair.waitUp()
        // B turns BFD off: it sends AdminDown.
        var settings = PeerSettings(name: "a", address: ip("127.0.0.1"), asn: 65001, localAddress: ip("127.0.0.2"))
        settings.port = UInt16(await pair.a.listeningAddresses().first!.split(separator: ":").last!)!
        try await pair.b.updatePeer(settings)
        let a = try await eventually("A's BFD down on AdminDown") {
            let s = await pair.a.peer(named: "b")
            return s?.bfd?.state == "down" ? s : nil
        }
        #expect(a.bfd?.remoteState == "admin_down" && a.bfd?.lastDiagnostic == "neighbor signaled session down")
        try await Task.sleep(for: .milliseconds(1_500))
        let still = try #require(await pair.a.peer(named: "b"))
        // B repeats AdminDown twice more, one transmit interval apart, then falls silent.
        #expect((still.bfd?.packetsIn ?? 0) - (a.bfd?.packetsIn ?? 0) == 2)
        #expect(still.state == .established && still.counters.flaps == 0)
        // A's BFD stays Down (never Up again with a silent peer): no effect on BGP either.
        #expect(still.bfd?.state == "down")
        await pair.close()
    }

    @Test("GTSM: a packet with TTL 254 is discarded, the same packet with TTL 255 is accepted (RFC 5881 §5)")
    func gtsm() async throws {
        let port: UInt16 = 23_787
        let pair = try await BFDPair.make(port: port, bfdB: nil)
        let packet = BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 77, yourDiscriminator: 0,
                                      desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 1_000_000).encoded()
        for ttl in [254, 255] {
            try await pair.loopB.submit {
                let socket = try DatagramSocket(bindingTo: SocketAddress(ip("127.0.0.2"), port: 0), ttl: ttl, on: pair.loopB, onReceive: nil)
                try socket.send(packet, to: SocketAddress(ip("127.0.0.1"), port: port))
                socket.close()
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let bfd = try await eventually("A hears the TTL 255 packet") {
            let s = await pair.a.peer(named: "b")?.bfd
            return s?.state == "init" ? s : nil
        }
        #expect(bfd.packetsDiscarded == 1 && bfd.packetsIn == 1 && bfd.remoteDiscriminator == 77)
        await pair.close()
    }

    /// A's peer b has a local address, peer c none: c's wildcard socket replaces b's specific one
    /// (without SO_REUSEADDR the kernel refuses a wildcard beside it) and serves both sessions;
    /// removing c leaves b Up on it. Nobody else can bind A's BFD port, not even with
    /// SO_REUSEADDR (which let any local process take the packets before). The other ends are
    /// scripted: a wildcard speaker cannot share the namespace with other speakers on the port.
    @Test("A wildcard and a specific link share one receive socket that nobody else can bind")
    func sharedReceiver() async throws {
        let port: UInt16 = 23_788
        var logger = Logger(label: "bfd-test")
        logger.logLevel = .warning
        let loop = try EventLoop(name: "bfd-shared")
        let a = Speaker(settings: SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 1), bfdPort: port), loop: loop, logger: logger)
        try await a.start()
        try await a.addPeer(PeerSettings(name: "b", address: ip("127.0.0.2"), asn: 65002, localAddress: ip("127.0.0.1"), passive: true,
                                         bfd: PeerBFDSettings()))
        try await a.addPeer(PeerSettings(name: "c", address: ip("127.0.0.3"), asn: 65003, passive: true, bfd: PeerBFDSettings()))
        for name in ["b", "c"] {
            let bfd = await a.peer(named: name)?.bfd
            #expect(bfd?.error == nil, "\(name): \(bfd?.error ?? "-")")
        }
        // The scripted ends: Down, then Up with A's discriminator (RFC 5880 §6.8.6), then Up every
        // 100 ms (A's detection time: 3 × 300 ms).
        let stop = Mutex(false)
        let senders = Task.detached {
            let scripted: [String: DatagramSocket] = try await loop.submit {
                var sockets: [String: DatagramSocket] = [:]
                for (name, source) in [("b", "127.0.0.2"), ("c", "127.0.0.3")] {
                    sockets[name] = try DatagramSocket(bindingTo: SocketAddress(ip(source), port: 0), ttl: 255, on: loop, onReceive: nil)
                }
                return sockets
            }
            defer { _ = try? loopSubmitClose(loop, scripted) }
            while !stop.withLock({ $0 }) {
                for (name, discriminator) in [("b", UInt32(201)), ("c", UInt32(301))] {
                    let seen = await a.peer(named: name)?.bfd
                    let yours = seen?.localDiscriminator ?? 0
                    let state: BFDState = yours == 0 || seen?.state == "down" ? .down : .up
                    let packet = BFDControlPacket(state: state, detectMultiplier: 3, myDiscriminator: discriminator,
                                                  yourDiscriminator: state == .down ? 0 : yours,
                                                  desiredMinTxInterval: 300_000, requiredMinRxInterval: 300_000).encoded()
                    try? await loop.submit { try scripted[name]?.send(packet, to: SocketAddress(ip("127.0.0.1"), port: port)) }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        _ = try await eventually("both of A's sessions Up") {
            let sb = await a.peer(named: "b")?.bfd?.state, sc = await a.peer(named: "c")?.bfd?.state
            return sb == "up" && sc == "up" ? true : nil
        }
        for address in ["0.0.0.0", "127.0.0.1"] {
            let outcome = Self.bindWithReuseAddress(address, port: port)
            #expect(outcome == EADDRINUSE, "another socket bound \(address):\(port) beside A's (errno \(outcome))")
        }
        try await a.removePeer(named: "c")
        try await Task.sleep(for: .milliseconds(1_200))
        let still = try #require(await a.peer(named: "b")?.bfd)
        #expect(still.state == "up" && still.packetsDiscarded == 0 && still.error == nil)
        stop.withLock { $0 = true }
        try await senders.value
        await a.shutdown(mode: .withdraw(message: nil))
        loop.shutdown()
    }

    /// 0 when a UDP socket with SO_REUSEADDR could bind `address:port`, else the errno.
    private static func bindWithReuseAddress(_ address: String, port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = inet_addr(address)
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return rc == 0 ? 0 : errno
    }

    /// ::2 is not configured anywhere (only ::1 is on lo), so the bind fails; the peer is ::1, so
    /// nothing could leave the host even if it did not.
    @Test("A local address that is not on the host: the session says why and stays Down")
    func missingLocalAddress() async throws {
        var logger = Logger(label: "bfd-test")
        logger.logLevel = .critical
        let loop = try EventLoop(name: "bfd-missing")
        let a = Speaker(settings: SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 1), bfdPort: 23_789), loop: loop, logger: logger)
        try await a.start()
        try await a.addPeer(PeerSettings(name: "r", address: ip("::1"), asn: 65002, localAddress: ip("::2"), passive: true,
                                         bfd: PeerBFDSettings()))
        let bfd = try #require(await a.peer(named: "r")?.bfd)
        #expect(bfd.state == "down" && bfd.packetsOut == 0)
        #expect(bfd.error?.contains("cannot open BFD sockets on ::2") == true, "\(bfd.error ?? "-")")
        await a.shutdown(mode: .withdraw(message: nil))
        loop.shutdown()
    }
}

/// Closes the scripted ends' sockets on their loop (DatagramSocket is loop-confined).
private func loopSubmitClose(_ loop: EventLoop, _ sockets: [String: DatagramSocket]) throws {
    loop.execute { for socket in sockets.values { socket.close() } }
}
