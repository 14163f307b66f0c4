import Testing
@testable import BFD

/// The packets a list of actions sends.
func sent(_ actions: [BFDAction]) -> [BFDControlPacket] {
    actions.compactMap { if case .send(let p) = $0 { p } else { nil } }
}
func transitions(_ actions: [BFDAction]) -> [BFDTransition] {
    actions.compactMap { if case .stateChanged(let t) = $0 { t } else { nil } }
}
func armed(_ timer: BFDTimer, _ actions: [BFDAction]) -> UInt64? {
    actions.compactMap { if case .arm(timer, let us) = $0 { us } else { nil } }.last
}

/// Two sessions wired back to back: what one sends, the other receives (no sockets).
struct Pair {
    var a = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 0xA, seed: 1)
    var b = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 0xB, seed: 2)

    /// Delivers every packet in `actions` to the other side, until nothing more is sent.
    mutating func deliver(from aSide: Bool, _ actions: [BFDAction], now: UInt64) {
        var queue = sent(actions).map { (aSide, $0) }
        while !queue.isEmpty {
            let (fromA, packet) = queue.removeFirst()
            let out = fromA ? b.receive(packet, now: now) : a.receive(packet, now: now)
            queue += sent(out).map { (!fromA, $0) }
        }
    }
}

@Suite("BFD session state machine (RFC 5880 §6.8)")
struct SessionTranscriptTests {
    @Test("Three-way handshake: Down → Init → Up on both sides, then a Poll Sequence to the fast rate")
    func handshake() {
        var a = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 0xA, seed: 1)
        var b = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 0xB, seed: 2)

        // A starts: one Down packet at the slow rate (§6.8.3: ≥ 1 s while not Up).
        let start = a.start(now: 0)
        let first = sent(start)
        #expect(first == [BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 0xA, yourDiscriminator: 0,
                                           desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 300_000)])
        #expect((750_000...1_000_000).contains(armed(.transmit, start)!))

        // B hears Down: Down → Init, answers at once with Init and A's discriminator.
        let b1 = b.receive(first[0], now: 10)
        #expect(transitions(b1).map { [$0.from, $0.to] } == [[.down, .`init`]])
        #expect(armed(.detection, b1) == 3_000_000)  // 3 × max(300 ms, A's 1 s)
        let initPacket = sent(b1)[0]
        #expect(initPacket.state == .`init` && initPacket.yourDiscriminator == 0xA && initPacket.myDiscriminator == 0xB)

        // A hears Init: Down → Up; it advertises 300 ms now and polls (§6.8.3).
        let a1 = a.receive(initPacket, now: 20)
        #expect(transitions(a1).map { [$0.from, $0.to] } == [[.down, .up]])
        let upPacket = sent(a1)[0]
        #expect(upPacket.state == .up && upPacket.poll && !upPacket.final)
        #expect(upPacket.desiredMinTxInterval == 300_000)
        #expect(a.polling && a.hasBeenUp)

        // B hears Up with Poll: Init → Up, a Final answer, and B's own Poll in its Up packet.
        let b2 = b.receive(upPacket, now: 30)
        #expect(transitions(b2).map { [$0.from, $0.to] } == [[.`init`, .up]])
        let bPackets = sent(b2)
        #expect(bPackets.count == 2)
        #expect(bPackets[0].state == .up && bPackets[0].poll && !bPackets[0].final)   // state change, polling
        #expect(bPackets[1].final && !bPackets[1].poll)                                // the answer to A's Poll
        #expect(b.detectionTime == 900_000)                                            // 3 × max(300, 300) ms

        // A: the Up+Poll needs a Final; the Final ends A's poll.
        let a2 = a.receive(bPackets[0], now: 40)
        #expect(sent(a2).map(\.final) == [true])
        _ = a.receive(bPackets[1], now: 41)
        #expect(!a.polling)
        _ = b.receive(sent(a2)[0], now: 42)
        #expect(!b.polling)
        #expect(a.state == .up && b.state == .up)
        #expect(a.transmitInterval == 300_000 && b.transmitInterval == 300_000)
        #expect(a.detectionTime == 900_000 && a.remoteDiscriminator == 0xB)

        // Periodic packets: no P, no F, jittered 75–100 % of 300 ms.
        let tick = a.transmitTimerExpired(now: 300_000)
        #expect(sent(tick).map { [$0.poll, $0.final] } == [[false, false]])
        #expect((225_000...300_000).contains(armed(.transmit, tick)!))
    }

    @Test("Coming Up at 50 ms: the next packet goes out at the fast rate, not at the slow one already scheduled")
    func fastRateStartsAtOnce() {
        let fast = BFDConfiguration(desiredMinTxInterval: 50_000, requiredMinRxInterval: 50_000, detectMultiplier: 3)
        var a = BFDSession(configuration: fast, localDiscriminator: 0xA, seed: 1)
        var b = BFDSession(configuration: fast, localDiscriminator: 0xB, seed: 2)
        let start = a.start(now: 0)
        #expect(armed(.transmit, start)! >= 750_000)  // the slow rate while not Up (§6.8.3)
        let b1 = b.receive(sent(start)[0], now: 10)
        // A comes Up: its Up packet polls with 50 ms, and its next periodic packet is armed at
        // 37.5–50 ms. Without that, the packet armed at the slow rate (up to a second away) would
        // be the next: the peer, whose Detection Time is 3 × 50 ms once it answered the Poll,
        // would declare the session down (BIRD did, 150 ms after Up).
        let a1 = a.receive(sent(b1)[0], now: 20)
        #expect(transitions(a1).map(\.to) == [.up])
        #expect((37_500...50_000).contains(armed(.transmit, a1) ?? 0), "\(a1)")
        // B hears Up+Poll and comes Up: it too re-arms at the fast rate.
        let b2 = b.receive(sent(a1)[0], now: 30)
        #expect(transitions(b2).map(\.to) == [.up])
        #expect((37_500...50_000).contains(armed(.transmit, b2) ?? 0), "\(b2)")
        // A lower Required Min RX from the peer also takes effect at once.
        var c = BFDSession(configuration: fast, localDiscriminator: 0xC, seed: 3)
        _ = c.start(now: 0)
        var slowPeer = BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 0xD, yourDiscriminator: 0,
                                        desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 2_000_000)
        _ = c.receive(slowPeer, now: 5)
        #expect(c.transmitInterval == 2_000_000)
        slowPeer.requiredMinRxInterval = 1_000_000
        #expect((750_000...1_000_000).contains(armed(.transmit, c.receive(slowPeer, now: 6)) ?? 0))
    }

    @Test("Detection time: remote multiplier × max(local Required Min RX, remote Desired Min TX)")
    func detectionTime() {
        var s = BFDSession(configuration: BFDConfiguration(desiredMinTxInterval: 300_000, requiredMinRxInterval: 300_000, detectMultiplier: 3),
                           localDiscriminator: 1, seed: 3)
        _ = s.receive(BFDControlPacket(state: .down, detectMultiplier: 5, myDiscriminator: 9, yourDiscriminator: 0,
                                       desiredMinTxInterval: 100_000, requiredMinRxInterval: 10_000), now: 0)
        #expect(s.detectionTime == 1_500_000)  // 5 × max(300 ms, 100 ms)
        _ = s.receive(BFDControlPacket(state: .`init`, detectMultiplier: 2, myDiscriminator: 9, yourDiscriminator: 1,
                                       desiredMinTxInterval: 2_000_000, requiredMinRxInterval: 10_000), now: 1)
        #expect(s.detectionTime == 4_000_000)  // 2 × max(300 ms, 2 s)
        // Our transmit interval follows the peer's Required Min RX when it is slower than ours.
        _ = s.receive(BFDControlPacket(state: .up, detectMultiplier: 3, myDiscriminator: 9, yourDiscriminator: 1,
                                       desiredMinTxInterval: 300_000, requiredMinRxInterval: 500_000), now: 2)
        #expect(s.state == .up)
        #expect(s.transmitInterval == 500_000)
    }

    @Test("Silence for the detection time takes Up to Down with diagnostic 1 and forgets the remote discriminator")
    func detectionExpiry() {
        var pair = Pair()
        pair.deliver(from: true, pair.a.start(now: 0), now: 0)
        #expect(pair.a.state == .up && pair.b.state == .up)
        // A stale timer (the deadline moved on) only re-arms for the remainder.
        let early = pair.a.detectionTimerExpired(now: 500_000)
        #expect(early == [.arm(.detection, microseconds: 400_000)])
        let expiry = pair.a.detectionTimerExpired(now: 900_000)
        #expect(transitions(expiry) == [BFDTransition(from: .up, to: .down, diagnostic: .controlDetectionTimeExpired, detectionTime: 900_000)])
        let down = sent(expiry)[0]
        #expect(down.state == .down && down.diagnostic == .controlDetectionTimeExpired && down.yourDiscriminator == 0)
        #expect(down.desiredMinTxInterval == 1_000_000 && !down.poll)  // back to the slow rate
        #expect(pair.a.remoteDiscriminator == 0 && pair.a.hasBeenUp)
        // B hears A's Down: Up → Down with diagnostic 3, reporting the detection time that was
        // in force (900 ms), not the one A's slow-rate Down packet implies (3 s).
        let b = pair.b.receive(down, now: 900_001)
        #expect(transitions(b) == [BFDTransition(from: .up, to: .down, diagnostic: .neighborSignaledSessionDown, detectionTime: 900_000)])
        #expect(pair.b.detectionTime == 3_000_000)
        #expect(pair.b.state == .down)
    }

    @Test("Recovery after a failure: Down → Init → Up again, diagnostic cleared in packets")
    func recovery() {
        var pair = Pair()
        pair.deliver(from: true, pair.a.start(now: 0), now: 0)
        let expiry = pair.a.detectionTimerExpired(now: 900_000)
        #expect(pair.a.state == .down)
        // Both ends alive: A's Down packet restarts the three-way handshake at once.
        pair.deliver(from: true, expiry, now: 900_000)
        #expect(pair.a.state == .up && pair.b.state == .up)
        pair.deliver(from: false, pair.b.transmitTimerExpired(now: 1_000_000), now: 1_000_000)
        pair.deliver(from: true, pair.a.transmitTimerExpired(now: 1_100_000), now: 1_100_000)
        #expect(pair.a.state == .up && pair.b.state == .up)
        #expect(pair.a.localDiagnostic == BFDDiagnostic.none)
    }

    @Test("AdminDown: the peer goes Down with diagnostic 3; packets are ignored while AdminDown; AdminUp restarts")
    func adminDown() {
        var pair = Pair()
        pair.deliver(from: true, pair.a.start(now: 0), now: 0)
        let actions = pair.a.adminDown(now: 10)
        #expect(actions.contains(.stop(.detection)))
        #expect(transitions(actions).map(\.diagnostic) == [.administrativelyDown])
        #expect(sent(actions)[0].state == .adminDown && sent(actions)[0].diagnostic == .administrativelyDown)
        pair.deliver(from: true, actions, now: 10)
        #expect(pair.b.state == .down && pair.b.localDiagnostic == .neighborSignaledSessionDown)
        // While AdminDown, A ignores B entirely (§6.8.6).
        let ignored = pair.a.receive(BFDControlPacket(state: .`init`, detectMultiplier: 3, myDiscriminator: 0xB, yourDiscriminator: 0xA,
                                                      desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 300_000), now: 20)
        #expect(ignored.isEmpty && pair.a.state == .adminDown)
        #expect(pair.a.detectionTimerExpired(now: 10_000_000).isEmpty)
        pair.deliver(from: true, pair.a.adminUp(now: 30), now: 30)
        #expect(pair.a.state == .up && pair.b.state == .up)
    }

    @Test("A packet for another discriminator is discarded")
    func wrongDiscriminator() {
        var s = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 5, seed: 1)
        let out = s.receive(BFDControlPacket(state: .`init`, detectMultiplier: 3, myDiscriminator: 9, yourDiscriminator: 6,
                                             desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 1_000_000), now: 0)
        #expect(out.isEmpty && s.state == .down && s.remoteDiscriminator == 0)
    }

    @Test("Reconfiguring while Up polls; a slower TX waits for the Final (§6.8.3)")
    func reconfigure() {
        var pair = Pair()
        pair.deliver(from: true, pair.a.start(now: 0), now: 0)
        #expect(!pair.a.polling && pair.a.transmitInterval == 300_000)
        let actions = pair.a.reconfigure(BFDConfiguration(desiredMinTxInterval: 600_000, requiredMinRxInterval: 300_000, detectMultiplier: 3), now: 5)
        #expect(actions.isEmpty)
        #expect(pair.a.polling)
        #expect(pair.a.transmitInterval == 300_000)  // unchanged until the Final
        let tick = pair.a.transmitTimerExpired(now: 10)
        #expect(sent(tick).map(\.poll) == [true] && sent(tick)[0].desiredMinTxInterval == 600_000)
        pair.deliver(from: true, tick, now: 10)
        #expect(!pair.a.polling && pair.a.transmitInterval == 600_000)
        #expect(pair.b.detectionTime == 1_800_000)
    }

    @Test("Jitter stays within 75–100 % (75–90 % with Detect Mult 1) and varies", arguments: [UInt8(1), 3])
    func jitter(_ multiplier: UInt8) {
        var s = BFDSession(configuration: BFDConfiguration(desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 1_000_000, detectMultiplier: multiplier),
                           localDiscriminator: 1, seed: 99)
        var seen = Set<UInt64>()
        for i in 0..<2_000 {
            let delay = armed(.transmit, s.transmitTimerExpired(now: UInt64(i)))!
            #expect(delay >= 750_000 && delay <= (multiplier == 1 ? 900_000 : 1_000_000))
            seen.insert(delay / 10_000)
        }
        #expect(seen.count > 10)
    }

    @Test("No periodic packets while the peer's Required Min RX is zero (§6.8.7)")
    func remoteMinRxZero() {
        var s = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 1, seed: 1)
        _ = s.receive(BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 9, yourDiscriminator: 0,
                                       desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 0), now: 0)
        let tick = s.transmitTimerExpired(now: 1)
        #expect(sent(tick).isEmpty && armed(.transmit, tick) != nil)
    }
}
