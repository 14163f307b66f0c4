import TestSupport
import Testing
@testable import BGP
import IP

/// FSM transcripts: one event in, the exact actions out, line after line.
private let localOpen = OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 1), capabilities: [.multiprotocol(.ipv4Unicast)])
private let peerOpen = OpenMessage(asn: 65002, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 2), capabilities: [.multiprotocol(.ipv4Unicast)])
private let parameters = try! SessionParameters.negotiate(local: localOpen, remote: peerOpen, expectations: PeerExpectations(peerASN: 65002)).get()

@Suite struct SessionFSMTests {
    static let configuration = SessionConfiguration(localOpen: localOpen, expectations: PeerExpectations(peerASN: 65002))

    struct Transcript {
        var fsm: SessionFSM
        init(_ configuration: SessionConfiguration = SessionFSMTests.configuration) { fsm = SessionFSM(configuration: configuration) }

        mutating func step(_ event: SessionEvent, _ expected: [SessionAction], then state: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
            let actions = fsm.handle(event)
            #expect(actions == expected, sourceLocation: sourceLocation)
            #expect(fsm.state.description == state, sourceLocation: sourceLocation)
        }

        /// Idle → Established over an outgoing connection.
        mutating func establish() {
            step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
            step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
            step(.bgpOpen(peerOpen), [.send(.keepalive), .arm(.keepalive, seconds: 30), .arm(.hold, seconds: 90)], then: "OpenConfirm")
            step(.keepaliveMessage, [.arm(.hold, seconds: 90), .arm(.stableSession, seconds: 300), .established(parameters)], then: "Established")
        }
    }

    @Test func activeOpenToEstablishedThenHoldTimerExpires() {
        var t = Transcript()
        t.establish()
        t.step(.keepaliveTimerExpired, [.send(.keepalive), .arm(.keepalive, seconds: 30)], then: "Established")
        t.step(.updateMessage, [.arm(.hold, seconds: 90)], then: "Established")
        t.step(.keepaliveMessage, [.arm(.hold, seconds: 90)], then: "Established")
        t.step(.holdTimerExpired, [
            .send(.notification(NotificationMessage(code: .holdTimerExpired, subcode: 0))), .closeConnection,
            .stop(.keepalive), .stop(.stableSession), .down(reason: "hold timer expired after 90 s"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
        t.step(.idleHoldTimerExpired, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        #expect(t.fsm.connectRetryCounter == 1)
    }

    /// RFC 9687 Event 29 in Established: NOTIFICATION 8/0 (best effort), close, Idle with the
    /// idle hold back-off — the same path as a hold timer expiry, for the other direction.
    /// A configured keepalive interval reaches the session (RFC 4271 §10): used when shorter than
    /// a third of the negotiated hold time, capped at that third otherwise.
    @Test func configuredKeepaliveIsUsedUpToAThirdOfTheHoldTime() {
        var configuration = Self.configuration
        configuration.configuredKeepaliveTime = 10
        var t = Transcript(configuration)
        var agreed = parameters
        agreed.keepaliveTime = 10
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.bgpOpen(peerOpen), [.send(.keepalive), .arm(.keepalive, seconds: 10), .arm(.hold, seconds: 90)], then: "OpenConfirm")
        t.step(.keepaliveMessage, [.arm(.hold, seconds: 90), .arm(.stableSession, seconds: 300), .established(agreed)], then: "Established")
        t.step(.keepaliveTimerExpired, [.send(.keepalive), .arm(.keepalive, seconds: 10)], then: "Established")
        #expect(configuration.keepaliveTime(holdTime: 9) == 3, "a peer that agreed to 9 s caps it at 3 s")
        #expect(configuration.keepaliveTime(holdTime: 0) == 0, "no keepalives with hold time 0")
        configuration.configuredKeepaliveTime = nil
        #expect(configuration.keepaliveTime(holdTime: 90) == 30)
    }

    @Test func sendHoldTimerExpiryClosesTheSession() {
        var t = Transcript()
        t.establish()
        t.step(.sendHoldTimerExpired(seconds: 480), [
            .send(.notification(NotificationMessage(code: .sendHoldTimerExpired, subcode: 0))), .closeConnection,
            .stop(.hold), .stop(.keepalive), .stop(.stableSession),
            .down(reason: "send hold timer expired: the peer took no data for 480 s (RFC 9687)"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
        #expect(NotificationMessage(code: .sendHoldTimerExpired, subcode: 0).description == "8/0 (Send Hold Timer Expired)")
    }

    @Test func passiveWaitsForThePeer() {
        var t = Transcript()
        t.step(.manualStartPassive, [.arm(.connectRetry, seconds: 120)], then: "Active")
        t.step(.connectRetryTimerExpired, [.arm(.connectRetry, seconds: 120)], then: "Active")
        t.step(.tcpConnectionConfirmed, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.tcpConnectionFails("TCP connection reset by peer"), [
            .closeConnection, .stop(.hold), .arm(.connectRetry, seconds: 120), .down(reason: "TCP connection reset by peer while in OpenSent"),
        ], then: "Active")
    }

    @Test func activeConnectRetriesThenFallsBackToConnect() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.connectRetryTimerExpired, [.closeConnection, .arm(.connectRetry, seconds: 120), .connect], then: "Connect")
    }

    @Test func peerSendsAdministrativeShutdown() {
        var t = Transcript()
        t.establish()
        t.step(.notificationMessage(.administrativeShutdown("maintenance")), [
            .closeConnection, .stop(.hold), .stop(.keepalive), .stop(.stableSession),
            .down(reason: "peer sent NOTIFICATION 6/2 (Administrative Shutdown): 'maintenance'"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    @Test func connectionResetInOpenConfirm() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.bgpOpen(peerOpen), [.send(.keepalive), .arm(.keepalive, seconds: 30), .arm(.hold, seconds: 90)], then: "OpenConfirm")
        t.step(.tcpConnectionFails("TCP connection reset by peer"), [
            .closeConnection, .stop(.hold), .stop(.keepalive), .down(reason: "TCP connection reset by peer while in OpenConfirm"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    @Test func openWithTheWrongASIsRefused() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        let wrong = OpenMessage(asn: 65003, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 2), capabilities: [])
        t.step(.bgpOpen(wrong), [
            .send(.notification(NotificationMessage(code: .openMessageError, subcode: 2, data: [0xfd, 0xeb]))), .closeConnection, .stop(.hold),
            .down(reason: "OPEN refused: 2/2 (Bad Peer AS): peer is AS65003, expected AS65002"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    @Test func holdTimeZeroRunsNoTimers() {
        var t = Transcript()
        let peer = OpenMessage(asn: 65002, holdTime: 0, bgpIdentifier: IPv4Address(192, 0, 2, 2), capabilities: [.multiprotocol(.ipv4Unicast)])
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.bgpOpen(peer), [.send(.keepalive), .stop(.hold)], then: "OpenConfirm")
        let p = try! SessionParameters.negotiate(local: localOpen, remote: peer).get()
        t.step(.keepaliveMessage, [.arm(.stableSession, seconds: 300), .established(p)], then: "Established")
        t.step(.updateMessage, [], then: "Established")
    }

    @Test func operatorStopSendsShutdownCommunicationAndDoesNotRestart() {
        var t = Transcript()
        t.establish()
        t.step(.manualStop(communication: "moving to new rack"), [
            .send(.notification(.administrativeShutdown("moving to new rack"))), .closeConnection,
            .stop(.hold), .stop(.keepalive), .stop(.stableSession), .down(reason: "stopped by operator: 'moving to new rack'"),
        ], then: "Idle")
        t.step(.automaticStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
    }

    @Test func unexpectedMessagesAreFSMErrors() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.updateMessage, [
            .send(.notification(NotificationMessage(code: .finiteStateMachineError, subcode: 1))), .closeConnection, .stop(.hold),
            .down(reason: "sent NOTIFICATION 5/1 (Unexpected Message in OpenSent): unexpected UPDATE in OpenSent"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")

        var e = Transcript()
        e.establish()
        let actions = e.fsm.handle(.bgpOpen(peerOpen))
        #expect(actions.first == .send(.notification(NotificationMessage(code: .finiteStateMachineError, subcode: 3))))
    }

    @Test func decodeErrorSendsItsNotification() {
        var t = Transcript()
        t.establish()
        let error = BGPError.update(.malformedAttributeList, .resetSession, "two MP_REACH_NLRI")
        t.step(.messageError(error), [
            .send(.notification(NotificationMessage(code: .updateMessageError, subcode: 1))), .closeConnection,
            .stop(.hold), .stop(.keepalive), .stop(.stableSession),
            .down(reason: "sent NOTIFICATION 3/1 (Malformed Attribute List): two MP_REACH_NLRI"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    @Test func dampPeerOscillationsDoublesTheIdleHoldTime() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        var holds: [Int] = []
        for _ in 0..<7 {
            let actions = t.fsm.handle(.tcpConnectionFails("connection refused"))
            #expect(actions.contains(.down(reason: "connection refused while in Connect")))
            guard case .arm(.idleHold, let seconds)? = actions.last else { Issue.record("no idle hold"); return }
            holds.append(seconds)
            // While the IdleHoldTimer runs, automatic starts are ignored (RFC 4271 §8.1.1).
            #expect(t.fsm.handle(.automaticStart) == [])
            t.step(.idleHoldTimerExpired, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        }
        #expect(holds == [5, 10, 20, 40, 80, 120, 120])
        #expect(t.fsm.connectRetryCounter == 7)

        // A session that stays up long enough forgets the failures.
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.bgpOpen(peerOpen), [.send(.keepalive), .arm(.keepalive, seconds: 30), .arm(.hold, seconds: 90)], then: "OpenConfirm")
        t.step(.keepaliveMessage, [.arm(.hold, seconds: 90), .arm(.stableSession, seconds: 300), .established(parameters)], then: "Established")
        t.step(.stableSessionTimerExpired, [], then: "Established")
        #expect(t.fsm.consecutiveFailures == 0)
        #expect(t.fsm.currentIdleHoldTime == 5)
    }

    @Test func withoutDampingTheIdleHoldTimeStaysFixed() {
        var configuration = Self.configuration
        configuration.dampPeerOscillations = false
        var t = Transcript(configuration)
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        for _ in 0..<3 {
            #expect(t.fsm.handle(.tcpConnectionFails("connection refused")).last == .arm(.idleHold, seconds: 5))
            _ = t.fsm.handle(.idleHoldTimerExpired)
        }
    }

    @Test func withoutAutomaticRestartAFailureStaysIdle() {
        var configuration = Self.configuration
        configuration.automaticRestart = false
        var t = Transcript(configuration)
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        t.step(.tcpConnectionFails("connection refused"), [.closeConnection, .stop(.connectRetry), .down(reason: "connection refused while in Connect")], then: "Idle")
    }

    @Test func maximumPrefixesStopsAndRestartsWithBackOff() {
        var t = Transcript()
        t.establish()
        t.step(.automaticStop(reason: .maximumNumberOfPrefixesReached, detail: "peer sent more than 1000 prefixes"), [
            .send(.notification(NotificationMessage(code: .cease, subcode: 1))), .closeConnection,
            .stop(.hold), .stop(.keepalive), .stop(.stableSession),
            .down(reason: "stopped automatically: peer sent more than 1000 prefixes"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    /// RFC 5882 §4.3 / RFC 9384: BFD Down ends the session with Cease/10 at once, and the
    /// reason names BFD and its detection time as they are (not "stopped automatically").
    @Test func bfdDownClosesWithCeaseTenAndRestarts() {
        var t = Transcript()
        t.establish()
        t.step(.automaticStop(reason: .bfdDown, detail: "BFD down (detection time 900 ms)"), [
            .send(.notification(NotificationMessage(code: .cease, subcode: 10))), .closeConnection,
            .stop(.hold), .stop(.keepalive), .stop(.stableSession),
            .down(reason: "BFD down (detection time 900 ms)"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")
    }

    @Test func staleTimerExpiriesAreIgnored() {
        var t = Transcript()
        t.establish()
        t.step(.connectRetryTimerExpired, [], then: "Established")
        t.step(.idleHoldTimerExpired, [], then: "Established")
    }

    @Test func collisionKeepsTheConnectionOfTheHigherIdentifier() {
        var t = Transcript()
        t.step(.manualStart, [.arm(.connectRetry, seconds: 120), .connect], then: "Connect")
        #expect(t.fsm.resolveCollision(thisConnection: .outgoing, peerIdentifier: IPv4Address(192, 0, 2, 2), peerASN: 65002) == .noCollision)
        t.step(.tcpConnectionAcknowledged, [.stop(.connectRetry), .send(.open(localOpen)), .arm(.hold, seconds: 240)], then: "OpenSent")
        t.step(.bgpOpen(peerOpen), [.send(.keepalive), .arm(.keepalive, seconds: 30), .arm(.hold, seconds: 90)], then: "OpenConfirm")
        // Peer 192.0.2.2 > us 192.0.2.1: the peer's connection (incoming to us) survives.
        #expect(t.fsm.resolveCollision(thisConnection: .outgoing, peerIdentifier: IPv4Address(192, 0, 2, 2), peerASN: 65002) == .dumpThisConnection)
        #expect(t.fsm.resolveCollision(thisConnection: .incoming, peerIdentifier: IPv4Address(192, 0, 2, 2), peerASN: 65002) == .dumpOtherConnection)
        // A peer with a lower identifier loses to our outgoing connection.
        #expect(t.fsm.resolveCollision(thisConnection: .outgoing, peerIdentifier: IPv4Address(192, 0, 2, 0), peerASN: 65002) == .dumpOtherConnection)
        // RFC 6286 §2.3: equal identifiers, the larger AS keeps its connection.
        #expect(SessionFSM.collisionSurvivor(localIdentifier: IPv4Address(1), localASN: 65001, peerIdentifier: IPv4Address(1), peerASN: 65002) == .incoming)
        t.step(.openCollisionDump, [
            .send(.notification(NotificationMessage(code: .cease, subcode: 7))), .closeConnection, .stop(.hold), .stop(.keepalive),
            .down(reason: "connection collision: this connection was closed (RFC 4271 §6.8)"), .arm(.idleHold, seconds: 5),
        ], then: "Idle")

        var e = Transcript()
        e.establish()
        #expect(e.fsm.resolveCollision(thisConnection: .outgoing, peerIdentifier: IPv4Address(192, 0, 2, 2), peerASN: 65002) == .dumpOtherConnection)
    }

    // MARK: - State × event

    static let events: [(String, SessionEvent)] = [
        ("ManualStart", .manualStart), ("ManualStop", .manualStop()), ("AutomaticStop", .automaticStop(reason: .maximumNumberOfPrefixesReached, detail: "limit")), ("AutomaticStart", .automaticStart), ("ManualStartPassive", .manualStartPassive),
        ("ConnectRetry", .connectRetryTimerExpired), ("Hold", .holdTimerExpired), ("Keepalive", .keepaliveTimerExpired), ("IdleHold", .idleHoldTimerExpired),
        ("TcpAck", .tcpConnectionAcknowledged), ("TcpConfirmed", .tcpConnectionConfirmed), ("TcpFails", .tcpConnectionFails("reset")),
        ("BGPOpen", .bgpOpen(peerOpen)), ("MsgError", .messageError(.header(.badMessageLength))), ("CollisionDump", .openCollisionDump),
        ("Notif", .notificationMessage(NotificationMessage(code: .cease, subcode: 0))), ("KeepAliveMsg", .keepaliveMessage), ("UpdateMsg", .updateMessage),
    ]

    static let setups: [(String, [SessionEvent])] = [
        ("Idle", []),
        ("Connect", [.manualStart]),
        ("Active", [.manualStartPassive]),
        ("OpenSent", [.manualStart, .tcpConnectionAcknowledged]),
        ("OpenConfirm", [.manualStart, .tcpConnectionAcknowledged, .bgpOpen(peerOpen)]),
        ("Established", [.manualStart, .tcpConnectionAcknowledged, .bgpOpen(peerOpen), .keepaliveMessage]),
    ]

    /// Next state for each event above, in order.
    static let matrix: [String: [String]] = [
        "Idle": ["Connect", "Idle", "Idle", "Connect", "Active", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle"],
        "Connect": ["Connect", "Idle", "Idle", "Connect", "Connect", "Connect", "Connect", "Connect", "Connect", "OpenSent", "OpenSent", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle"],
        "Active": ["Active", "Idle", "Idle", "Active", "Active", "Active", "Active", "Active", "Active", "OpenSent", "OpenSent", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle", "Idle"],
        "OpenSent": ["OpenSent", "Idle", "Idle", "OpenSent", "OpenSent", "OpenSent", "Idle", "OpenSent", "OpenSent", "OpenSent", "OpenSent", "Active", "OpenConfirm", "Idle", "Idle", "Idle", "Idle", "Idle"],
        "OpenConfirm": ["OpenConfirm", "Idle", "Idle", "OpenConfirm", "OpenConfirm", "OpenConfirm", "Idle", "OpenConfirm", "OpenConfirm", "OpenConfirm", "OpenConfirm", "Idle", "Idle", "Idle", "Idle", "Idle", "Established", "Idle"],
        "Established": ["Established", "Idle", "Idle", "Established", "Established", "Established", "Idle", "Established", "Established", "Established", "Established", "Idle", "Idle", "Idle", "Idle", "Idle", "Established", "Established"],
    ]

    @Test(arguments: setups.map(\.0))
    func stateByEvent(_ stateName: String) {
        let setup = Self.setups.first { $0.0 == stateName }!.1
        let expected = Self.matrix[stateName]!
        for (index, (eventName, event)) in Self.events.enumerated() {
            var fsm = SessionFSM(configuration: Self.configuration)
            for e in setup { _ = fsm.handle(e) }
            #expect(fsm.state.description == stateName)
            let actions = fsm.handle(event)
            #expect(fsm.state.description == expected[index], "\(stateName) × \(eventName)")
            // Every transition to Idle from a non-Idle state says why.
            if stateName != "Idle", expected[index] == "Idle" {
                #expect(actions.contains { if case .down = $0 { true } else { false } }, "\(stateName) × \(eventName) has no reason")
            }
            // Timers the driver was told to arm are exactly those the FSM believes armed.
            var armed = Set<SessionTimer>()
            var replay = SessionFSM(configuration: Self.configuration)
            for e in setup + [event] {
                for action in replay.handle(e) {
                    if case .arm(let timer, _) = action { armed.insert(timer) }
                    if case .stop(let timer) = action { armed.remove(timer) }
                }
                if let timer = e.timer, armed.contains(timer), replay.armedTimers.contains(timer) == false { armed.remove(timer) }
            }
            #expect(armed == fsm.armedTimers, "\(stateName) × \(eventName) timers")
        }
    }
}

/// Random event sequences (seeded): the FSM's own view of armed timers matches the arm/stop
/// actions it emitted, Idle runs no timer but the idle hold, and every drop to Idle says why.
@Suite struct SessionFSMPropertyTests {
    @Test(arguments: 0..<4)
    func randomEventSequences(_ batch: Int) {
        var rng = SeededGenerator(seed: 0xF5A0 + UInt64(batch))
        let events = SessionFSMTests.events.map(\.1) + [.stableSessionTimerExpired, .automaticStartPassive]
        for run in 0..<200 {
            var fsm = SessionFSM(configuration: SessionFSMTests.configuration)
            var armed = Set<SessionTimer>()
            for step in 0..<60 {
                let event = events[Int.random(in: 0..<events.count, using: &rng)]
                let before = fsm.state
                if let timer = event.timer, armed.contains(timer) { armed.remove(timer) }
                let actions = fsm.handle(event)
                for action in actions {
                    if case .arm(let timer, let seconds) = action {
                        armed.insert(timer)
                        #expect(seconds > 0, "batch \(batch) run \(run) step \(step)")
                    }
                    if case .stop(let timer) = action { armed.remove(timer) }
                }
                #expect(armed == fsm.armedTimers, "batch \(batch) run \(run) step \(step): \(before) × \(event.name)")
                if fsm.state == .idle {
                    #expect(armed.isSubset(of: [.idleHold]), "batch \(batch) run \(run) step \(step)")
                    if before != .idle {
                        #expect(actions.contains { if case .down = $0 { true } else { false } }, "batch \(batch) run \(run) step \(step)")
                    }
                }
            }
        }
    }
}
