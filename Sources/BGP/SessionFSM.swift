public import IP

// The BGP finite state machine of RFC 4271 §8 as a value: one `handle(_:)` per input returns the
// actions the session driver performs. No sockets, no clocks: timers are armed and stopped by
// action, and their expiry comes back as an event.
//
// Deliberate simplifications (documented in docs/bgp.md):
// - DelayOpen (RFC 4271 §8.1.1 optional attributes 22–24) is not implemented.
// - Header, OPEN and UPDATE message errors (events 21, 22, 28) are one event, `messageError`,
//   carrying the error whose NOTIFICATION is sent.
// - Each TCP connection has its own SessionFSM; the driver asks `resolveCollision` which of two
//   connections to keep (RFC 4271 §6.8) and sends `.openCollisionDump` to the loser.
// - An expiry of a timer that is not armed (a race in the driver) is ignored.

/// The timers the driver runs for a session.
public enum SessionTimer: String, Hashable, Sendable, CaseIterable, Comparable {
    case connectRetry
    case hold
    case keepalive
    /// RFC 4271 §8.1.1 IdleHoldTimer: the back-off before an automatic restart.
    case idleHold
    /// How long a session must stay Established before the back-off is forgotten.
    case stableSession

    public static func < (a: SessionTimer, b: SessionTimer) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// RFC 4271 §8.1 events (numbers in comments).
public enum SessionEvent: Hashable, Sendable {
    case manualStart                      // 1
    /// Event 2, with an RFC 9003 shutdown communication for the peer's operator.
    /// `cease`: the RFC 4486 subcode sent from OpenSent on — Administrative Shutdown (the default),
    /// Administrative Reset (the operator restarts it), Peer De-configured or Other Configuration
    /// Change — so the peer's log says why.
    case manualStop(communication: String? = nil, cease: CeaseReason = .administrativeShutdown)
    case automaticStart                   // 3
    /// Event 8: the speaker itself stops the session (e.g. maximum prefixes reached); a
    /// NOTIFICATION Cease with `reason` is sent if a connection is up, and automatic restart
    /// with back-off still applies.
    case automaticStop(reason: CeaseReason, detail: String)
    case manualStartPassive               // 4
    case automaticStartPassive            // 5
    case connectRetryTimerExpired         // 9
    case holdTimerExpired                 // 10
    /// RFC 9687 Event 29 (SendHoldTimer_Expires): the driver saw no byte leave for `seconds`
    /// while it had data to send — the peer stopped reading (TCP zero window).
    case sendHoldTimerExpired(seconds: Int)
    case keepaliveTimerExpired            // 11
    case idleHoldTimerExpired             // 13
    case stableSessionTimerExpired
    /// Event 16: the connection we initiated is up.
    case tcpConnectionAcknowledged
    /// Event 17: the peer's connection was accepted.
    case tcpConnectionConfirmed
    /// Event 18, with what happened ("TCP connection reset by peer").
    case tcpConnectionFails(String)
    case bgpOpen(OpenMessage)             // 19
    /// Events 21, 22, 28: a message failed to decode; its NOTIFICATION is sent.
    case messageError(BGPError)
    case openCollisionDump                // 23
    case notificationMessage(NotificationMessage)  // 24, 25
    case keepaliveMessage                 // 26
    case updateMessage                    // 27

    var name: String {
        switch self {
        case .manualStart: "ManualStart"
        case .manualStop: "ManualStop"
        case .automaticStart: "AutomaticStart"
        case .automaticStop: "AutomaticStop"
        case .manualStartPassive: "ManualStart (passive)"
        case .automaticStartPassive: "AutomaticStart (passive)"
        case .connectRetryTimerExpired: "ConnectRetryTimer expiry"
        case .holdTimerExpired: "HoldTimer expiry"
        case .sendHoldTimerExpired: "SendHoldTimer expiry"
        case .keepaliveTimerExpired: "KeepaliveTimer expiry"
        case .idleHoldTimerExpired: "IdleHoldTimer expiry"
        case .stableSessionTimerExpired: "stable-session timer expiry"
        case .tcpConnectionAcknowledged: "TCP connection acknowledged"
        case .tcpConnectionConfirmed: "TCP connection confirmed"
        case .tcpConnectionFails: "TCP connection failure"
        case .bgpOpen: "OPEN"
        case .messageError: "message error"
        case .openCollisionDump: "OpenCollisionDump"
        case .notificationMessage: "NOTIFICATION"
        case .keepaliveMessage: "KEEPALIVE"
        case .updateMessage: "UPDATE"
        }
    }

    var timer: SessionTimer? {
        switch self {
        case .connectRetryTimerExpired: .connectRetry
        case .holdTimerExpired: .hold
        case .keepaliveTimerExpired: .keepalive
        case .idleHoldTimerExpired: .idleHold
        case .stableSessionTimerExpired: .stableSession
        default: nil
        }
    }
}

/// What the driver does.
public enum SessionAction: Hashable, Sendable {
    /// Open a TCP connection to the peer.
    case connect
    case send(BGPMessage)
    case arm(SessionTimer, seconds: Int)
    case stop(SessionTimer)
    /// Close the TCP connection (after sending anything queued before this action).
    case closeConnection
    /// The session is up with these parameters.
    case established(SessionParameters)
    /// The session (or the attempt) ended; the reason is for people.
    case down(reason: String)
}

/// Which side opened a TCP connection.
public enum ConnectionOrigin: Hashable, Sendable {
    /// We connected to the peer.
    case outgoing
    /// The peer connected to us.
    case incoming
}

/// RFC 4271 §6.8 collision outcome for the connection an FSM runs.
public enum CollisionDecision: Hashable, Sendable {
    /// No collision to resolve in this state.
    case noCollision
    /// Close this FSM's connection (send it `.openCollisionDump`).
    case dumpThisConnection
    /// Keep this connection; close the other one.
    case dumpOtherConnection
}

public struct SessionConfiguration: Hashable, Sendable {
    /// The OPEN we send.
    public var localOpen: OpenMessage
    public var expectations: PeerExpectations
    /// RFC 4271 §10: 120 s suggested.
    public var connectRetryTime: Int
    /// RFC 4271 §8.2.2: the hold time used until the OPEN arrives ("4 minutes is suggested").
    public var largeHoldTime: Int
    /// Wait for the peer to connect instead of connecting (RFC 4271 §8.1.1 PassiveTcpEstablishment).
    public var passive: Bool
    /// Start again by itself after a failure (RFC 4271 §8.1.1 AllowAutomaticStart).
    public var automaticRestart: Bool
    /// RFC 4271 §8.1.1 DampPeerOscillations: double the idle hold time after each failure.
    public var dampPeerOscillations: Bool
    /// The first idle hold time, in seconds.
    public var idleHoldTime: Int
    /// The ceiling of the doubled idle hold time.
    public var maximumIdleHoldTime: Int
    /// Seconds Established after which past failures are forgotten.
    public var stableSessionTime: Int
    /// Seconds between KEEPALIVEs when shorter than a third of the negotiated hold time; nil:
    /// a third of it (RFC 4271 §10).
    public var configuredKeepaliveTime: Int?

    /// RFC 4271 §4.4/§10: KEEPALIVEs at most a third of the hold time apart, so a configured
    /// interval is capped by the hold time the peer agreed to; none with a hold time of 0.
    public func keepaliveTime(holdTime: UInt16) -> UInt16 {
        let third = holdTime / 3
        guard let configured = configuredKeepaliveTime, configured > 0 else { return third }
        return min(third, UInt16(clamping: configured))
    }

    public init(localOpen: OpenMessage, expectations: PeerExpectations = .init(), connectRetryTime: Int = 120, largeHoldTime: Int = 240,
                passive: Bool = false, automaticRestart: Bool = true, dampPeerOscillations: Bool = true,
                idleHoldTime: Int = 5, maximumIdleHoldTime: Int = 120, stableSessionTime: Int = 300,
                configuredKeepaliveTime: Int? = nil) {
        self.localOpen = localOpen
        self.expectations = expectations
        self.connectRetryTime = connectRetryTime
        self.largeHoldTime = largeHoldTime
        self.passive = passive
        self.automaticRestart = automaticRestart
        self.dampPeerOscillations = dampPeerOscillations
        self.idleHoldTime = idleHoldTime
        self.maximumIdleHoldTime = maximumIdleHoldTime
        self.stableSessionTime = stableSessionTime
        self.configuredKeepaliveTime = configuredKeepaliveTime
    }
}

/// RFC 4271 §8 session state machine.
public struct SessionFSM: Sendable {
    public enum State: Hashable, Sendable, CustomStringConvertible {
        case idle
        case connect
        case active
        case openSent
        case openConfirm(SessionParameters)
        case established(SessionParameters)

        public var description: String {
            switch self {
            case .idle: "Idle"
            case .connect: "Connect"
            case .active: "Active"
            case .openSent: "OpenSent"
            case .openConfirm: "OpenConfirm"
            case .established: "Established"
            }
        }
    }

    public private(set) var configuration: SessionConfiguration
    public private(set) var state: State = .idle
    /// RFC 4271 §8.1.1 ConnectRetryCounter: failures since the last manual start.
    public private(set) var connectRetryCounter = 0
    /// Failures since the session was last stable; drives the idle hold back-off.
    public private(set) var consecutiveFailures = 0
    /// Timers currently armed.
    public private(set) var armedTimers: Set<SessionTimer> = []
    private var holdSeconds = 0
    private var passive: Bool
    private var automaticRestart: Bool

    public init(configuration: SessionConfiguration) {
        self.configuration = configuration
        passive = configuration.passive
        automaticRestart = configuration.automaticRestart
    }

    /// RFC 4724 §3: the restart our OPEN announced is over, so the OPENs of this FSM's later
    /// connections clear the Restart State bit. The Forwarding State bits stay as configured
    /// (they say whether forwarding survives a reset, not whether one happened). An OPEN
    /// already sent is not affected: negotiation only asks whether the capability was sent.
    public mutating func endRestart() {
        configuration.localOpen.parameters = configuration.localOpen.parameters.map { parameter in
            guard case .capabilities(let capabilities) = parameter else { return parameter }
            return .capabilities(capabilities.map { capability in
                guard case .gracefulRestart(var gr) = capability else { return capability }
                gr.restarting = false
                return .gracefulRestart(gr)
            })
        }
    }

    /// The idle hold time the next automatic restart waits (RFC 4271 §8.1.1 DampPeerOscillations).
    public var currentIdleHoldTime: Int {
        guard configuration.dampPeerOscillations, consecutiveFailures > 1 else { return configuration.idleHoldTime }
        let doublings = min(consecutiveFailures - 1, 20)
        return min(configuration.idleHoldTime << doublings, configuration.maximumIdleHoldTime)
    }

    // MARK: - Collision detection

    /// RFC 4271 §6.8 (with RFC 6286 §2.3 for equal identifiers): decide between this FSM's
    /// connection, opened by `origin`, and another connection on which the peer sent an OPEN
    /// with `peerIdentifier`. Only OpenSent/OpenConfirm connections collide; an Established
    /// session is kept and the new connection closed.
    public func resolveCollision(thisConnection origin: ConnectionOrigin, peerIdentifier: IPv4Address, peerASN: UInt32) -> CollisionDecision {
        switch state {
        case .idle, .connect, .active: return .noCollision
        case .established: return .dumpOtherConnection
        case .openSent, .openConfirm:
            let keep = Self.collisionSurvivor(localIdentifier: configuration.localOpen.bgpIdentifier, localASN: configuration.localOpen.asn,
                                              peerIdentifier: peerIdentifier, peerASN: peerASN)
            return keep == origin ? .dumpOtherConnection : .dumpThisConnection
        }
    }

    /// RFC 4271 §6.8: the connection opened by the speaker with the higher BGP Identifier
    /// survives; RFC 6286 §2.3: with equal identifiers, the one with the larger AS number.
    public static func collisionSurvivor(localIdentifier: IPv4Address, localASN: UInt32, peerIdentifier: IPv4Address, peerASN: UInt32) -> ConnectionOrigin {
        if localIdentifier != peerIdentifier { return localIdentifier.value > peerIdentifier.value ? .outgoing : .incoming }
        return localASN > peerASN ? .outgoing : .incoming
    }

    // MARK: - Events

    public mutating func handle(_ event: SessionEvent) -> [SessionAction] {
        if let timer = event.timer {
            // A timer that is not armed has been stopped or re-armed: its expiry is stale.
            guard armedTimers.contains(timer) else { return [] }
            armedTimers.remove(timer)
        }
        if case .stableSessionTimerExpired = event {
            consecutiveFailures = 0
            return []
        }
        switch state {
        case .idle: return idle(event)
        case .connect: return connect(event)
        case .active: return active(event)
        case .openSent: return openSent(event)
        case .openConfirm(let parameters): return openConfirm(event, parameters)
        case .established(let parameters): return established(event, parameters)
        }
    }

    // RFC 4271 §8.2.2 Idle state.
    private mutating func idle(_ event: SessionEvent) -> [SessionAction] {
        switch event {
        case .manualStart, .manualStartPassive:
            connectRetryCounter = 0
            consecutiveFailures = 0
            automaticRestart = configuration.automaticRestart
            passive = configuration.passive
            if case .manualStartPassive = event { passive = true }
            var actions = stopIfArmed(.idleHold)
            actions += start()
            return actions
        case .automaticStart, .automaticStartPassive:
            // RFC 4271 §8.1.1: with DampPeerOscillations, automatic starts wait for the IdleHoldTimer.
            guard !armedTimers.contains(.idleHold) else { return [] }
            if case .automaticStartPassive = event { passive = true }
            return start()
        case .idleHoldTimerExpired:
            return start()
        case .manualStop:
            automaticRestart = false
            connectRetryCounter = 0
            return stopIfArmed(.idleHold)
        default:
            // RFC 4271 §8.2.2: any other event in Idle changes nothing. An incoming connection
            // is refused by the driver.
            return []
        }
    }

    private mutating func start() -> [SessionAction] {
        if passive {
            state = .active
            return [arm(.connectRetry, configuration.connectRetryTime)]
        }
        state = .connect
        return [arm(.connectRetry, configuration.connectRetryTime), .connect]
    }

    // RFC 4271 §8.2.2 Connect state (no DelayOpen).
    private mutating func connect(_ event: SessionEvent) -> [SessionAction] {
        if case .connectRetryTimerExpired = event {
            return [.closeConnection, arm(.connectRetry, configuration.connectRetryTime), .connect]
        }
        return connecting(event, in: "Connect")
    }

    // RFC 4271 §8.2.2 Active state.
    private mutating func active(_ event: SessionEvent) -> [SessionAction] {
        if case .connectRetryTimerExpired = event {
            if passive { return [arm(.connectRetry, configuration.connectRetryTime)] }
            state = .connect
            return [arm(.connectRetry, configuration.connectRetryTime), .connect]
        }
        return connecting(event, in: "Active")
    }

    /// The events that RFC 4271 §8.2.2 answers alike in Connect and Active, while no connection
    /// is up yet (the ConnectRetryTimer, which differs, is handled by the state): a connection
    /// sends our OPEN, a stop or a failure ends the attempt without a NOTIFICATION.
    private mutating func connecting(_ event: SessionEvent, in name: String) -> [SessionAction] {
        switch event {
        case .manualStart, .automaticStart, .manualStartPassive, .automaticStartPassive:
            return []
        case .manualStop(let communication, let cease):
            return stopped(communication, cease: cease, sendNotification: false)
        case .automaticStop(_, let detail):
            return fail("stopped automatically: \(detail)")
        case .tcpConnectionAcknowledged, .tcpConnectionConfirmed:
            return sendOpen()
        case .tcpConnectionFails(let detail):
            return fail("\(detail) while in \(name)")
        default:
            return fail("unexpected \(event.name) in \(name)")
        }
    }

    private mutating func sendOpen() -> [SessionAction] {
        state = .openSent
        holdSeconds = configuration.largeHoldTime
        var actions = stopIfArmed(.connectRetry)
        actions.append(.send(.open(configuration.localOpen)))
        actions.append(arm(.hold, configuration.largeHoldTime))
        return actions
    }

    // RFC 4271 §8.2.2 OpenSent state.
    private mutating func openSent(_ event: SessionEvent) -> [SessionAction] {
        if let actions = openedSession(event, in: "OpenSent") { return actions }
        switch event {
        case .tcpConnectionFails(let detail):
            // RFC 4271 §8.2.2: back to Active, listening, with the ConnectRetryTimer running.
            state = .active
            var actions: [SessionAction] = [.closeConnection]
            actions += stopAll()
            actions.append(arm(.connectRetry, configuration.connectRetryTime))
            actions.append(.down(reason: "\(detail) while in OpenSent"))
            return actions
        case .bgpOpen(let open):
            switch SessionParameters.negotiate(local: configuration.localOpen, remote: open, expectations: configuration.expectations) {
            case .failure(let error):
                return fail("OPEN refused: \(sentText(error))", sending: NotificationMessage(error))
            case .success(var parameters):
                parameters.keepaliveTime = configuration.keepaliveTime(holdTime: parameters.holdTime)
                state = .openConfirm(parameters)
                var actions: [SessionAction] = [.send(.keepalive)]
                actions += restartHoldAndKeepalive(parameters)
                return actions
            }
        default:
            return fsmError(.unexpectedMessageInOpenSent, event)
        }
    }

    // RFC 4271 §8.2.2 OpenConfirm state.
    private mutating func openConfirm(_ event: SessionEvent, _ parameters: SessionParameters) -> [SessionAction] {
        if let actions = openedSession(event, in: "OpenConfirm") { return actions }
        switch event {
        case .keepaliveTimerExpired:
            return [.send(.keepalive), arm(.keepalive, Int(parameters.keepaliveTime))]
        case .tcpConnectionFails(let detail):
            return fail("\(detail) while in OpenConfirm")
        case .keepaliveMessage:
            state = .established(parameters)
            var actions: [SessionAction] = []
            if parameters.holdTime > 0 { actions.append(arm(.hold, Int(parameters.holdTime))) }
            actions.append(arm(.stableSession, configuration.stableSessionTime))
            actions.append(.established(parameters))
            return actions
        default:
            return fsmError(.unexpectedMessageInOpenConfirm, event)
        }
    }

    // RFC 4271 §8.2.2 Established state.
    private mutating func established(_ event: SessionEvent, _ parameters: SessionParameters) -> [SessionAction] {
        if let actions = openedSession(event, in: nil) { return actions }
        switch event {
        case .keepaliveTimerExpired:
            return [.send(.keepalive), arm(.keepalive, Int(parameters.keepaliveTime))]
        case .keepaliveMessage, .updateMessage:
            // RFC 4271 §8.2.2: each KEEPALIVE or UPDATE restarts the HoldTimer (unless it is 0).
            return parameters.holdTime > 0 ? [arm(.hold, Int(parameters.holdTime))] : []
        case .tcpConnectionFails(let detail):
            return fail("\(detail) while in Established")
        default:
            return fsmError(.unexpectedMessageInEstablished, event)
        }
    }

    /// The events that RFC 4271 §8.2.2 answers alike in OpenSent, OpenConfirm and Established —
    /// once our OPEN is out, a stop, an expiry or a bad message ends the session with its
    /// NOTIFICATION — or nil for the events the state decides itself. `name` is the state the
    /// reasons mention; an Established session's reasons name none.
    private mutating func openedSession(_ event: SessionEvent, in name: String?) -> [SessionAction]? {
        switch event {
        case .manualStart, .automaticStart, .manualStartPassive, .automaticStartPassive,
             .tcpConnectionAcknowledged, .tcpConnectionConfirmed:
            // A second connection is tracked by the driver for collision detection (§6.8).
            return []
        case .manualStop(let communication, let cease):
            return stopped(communication, cease: cease, sendNotification: true)
        case .automaticStop(let reason, let detail):
            return fail(Self.automaticStopReason(reason, detail), sending: NotificationMessage(code: .cease, subcode: reason.rawValue))
        case .holdTimerExpired:
            return fail("hold timer expired after \(holdSeconds) s" + (name.map { " in \($0)" } ?? ""),
                        sending: NotificationMessage(code: .holdTimerExpired, subcode: 0))
        case .sendHoldTimerExpired(let seconds):
            return sendHoldExpired(seconds)
        case .messageError(let error):
            return fail("sent NOTIFICATION \(sentText(error))", sending: NotificationMessage(error))
        case .notificationMessage(let notification):
            return fail("peer sent NOTIFICATION \(notification)" + (name.map { " while in \($0)" } ?? ""))
        case .openCollisionDump:
            let closed = name == nil ? "the Established session" : "this connection"
            return fail("connection collision: \(closed) was closed (RFC 4271 §6.8)",
                        sending: NotificationMessage(code: .cease, subcode: CeaseReason.connectionCollisionResolution.rawValue))
        default:
            return nil
        }
    }

    // MARK: - Helpers

    /// RFC 9687 §4: close the connection rather than keep buffering for a peer that reads
    /// nothing. The NOTIFICATION (code 8) is best effort: it queues behind what is stuck.
    private mutating func sendHoldExpired(_ seconds: Int) -> [SessionAction] {
        fail("send hold timer expired: the peer took no data for \(seconds) s (RFC 9687)",
             sending: NotificationMessage(code: .sendHoldTimerExpired, subcode: 0))
    }

    private mutating func restartHoldAndKeepalive(_ parameters: SessionParameters) -> [SessionAction] {
        // RFC 4271 §8.2.2: a negotiated hold time of zero means neither timer runs.
        guard parameters.holdTime > 0 else {
            return stopIfArmed(.hold)
        }
        holdSeconds = Int(parameters.holdTime)
        return [arm(.keepalive, Int(parameters.keepaliveTime)), arm(.hold, Int(parameters.holdTime))]
    }

    private mutating func arm(_ timer: SessionTimer, _ seconds: Int) -> SessionAction {
        armedTimers.insert(timer)
        return .arm(timer, seconds: seconds)
    }

    /// `.stop(timer)` if it is armed, nothing otherwise.
    private mutating func stopIfArmed(_ timer: SessionTimer) -> [SessionAction] {
        armedTimers.remove(timer) == nil ? [] : [.stop(timer)]
    }

    private mutating func stopAll() -> [SessionAction] {
        armedTimers.filter { $0 != .idleHold }.sorted().flatMap { stopIfArmed($0) }
    }

    private func sentText(_ error: BGPError) -> String {
        let base = "\(error.code.rawValue)/\(error.subcode) (\(NotificationMessage.name(code: error.code.rawValue, subcode: error.subcode)))"
        return error.reason.isEmpty ? base : "\(base): \(error.reason)"
    }

    /// RFC 6608: an event the state does not expect is a Finite State Machine Error.
    private mutating func fsmError(_ subcode: FSMError, _ event: SessionEvent) -> [SessionAction] {
        let error = BGPError.fsm(subcode, "unexpected \(event.name) in \(state)")
        return fail("sent NOTIFICATION \(sentText(error))", sending: NotificationMessage(error))
    }

    /// The operator stopped the session: a Cease/Administrative Shutdown if a connection is up,
    /// no automatic restart, no back-off.
    private mutating func stopped(_ communication: String?, cease: CeaseReason, sendNotification: Bool) -> [SessionAction] {
        automaticRestart = false
        connectRetryCounter = 0
        consecutiveFailures = 0
        var actions: [SessionAction] = []
        if sendNotification {
            // RFC 9003: only Administrative Shutdown and Reset carry a shutdown communication.
            let notification: NotificationMessage = switch cease {
            case .administrativeShutdown, .administrativeReset: .administrativeShutdown(communication, reset: cease == .administrativeReset)
            default: NotificationMessage(code: .cease, subcode: cease.rawValue)
            }
            actions.append(.send(.notification(notification)))
        }
        actions.append(.closeConnection)
        actions += stopAll()
        state = .idle
        let text = communication.map { ": '\($0)'" } ?? ""
        let who = switch cease {
        case .administrativeReset: "reset by operator"
        case .peerDeconfigured: "peer deleted"
        case .otherConfigurationChange: "reset for a configuration change"
        default: "stopped by operator"
        }
        actions.append(.down(reason: who + text))
        return actions
    }

    /// The reason recorded for an AutomaticStop. BFD Down speaks for itself ("BFD down
    /// (detection time 900 ms)"); others say the stop was automatic.
    static func automaticStopReason(_ reason: CeaseReason, _ detail: String) -> String {
        reason == .bfdDown ? detail : "stopped automatically: \(detail)"
    }

    /// A failure: NOTIFICATION (if any), close, stop timers, Idle, and — with automatic restart —
    /// the IdleHoldTimer with the damped back-off (RFC 4271 §8.1.1).
    private mutating func fail(_ reason: String, sending notification: NotificationMessage? = nil) -> [SessionAction] {
        var actions: [SessionAction] = []
        if let notification { actions.append(.send(.notification(notification))) }
        actions.append(.closeConnection)
        actions += stopAll()
        state = .idle
        connectRetryCounter += 1
        consecutiveFailures += 1
        actions.append(.down(reason: reason))
        if automaticRestart { actions.append(arm(.idleHold, currentIdleHoldTime)) }
        return actions
    }
}
