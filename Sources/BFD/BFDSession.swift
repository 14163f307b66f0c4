// The BFD session state machine, asynchronous mode (RFC 5880 §6.2, §6.8).
//
// A value: one `mutating` method per input (start, a received packet, a timer expiry, an
// operator action), each given the current monotonic time in microseconds, each returning the
// actions for the driver (send a packet, arm or stop a timer, report a state change). No
// sockets, no clock, no randomness from outside: the transmit jitter comes from a seeded
// generator inside the value, so transcripts are reproducible.
//
// Not implemented on purpose: Demand mode (§6.6: we never set D, and ignore a peer's D bit, as
// BIRD and FRR do not use it by default), the Echo function (§6.4), authentication (§6.7).

/// Local timer settings (RFC 5880 §6.8.1 bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval,
/// bfd.DetectMult). Intervals in microseconds.
public struct BFDConfiguration: Sendable, Hashable {
    public var desiredMinTxInterval: UInt32
    public var requiredMinRxInterval: UInt32
    public var detectMultiplier: UInt8

    public init(desiredMinTxInterval: UInt32 = 300_000, requiredMinRxInterval: UInt32 = 300_000, detectMultiplier: UInt8 = 3) {
        self.desiredMinTxInterval = desiredMinTxInterval
        self.requiredMinRxInterval = requiredMinRxInterval
        self.detectMultiplier = detectMultiplier
    }
}

/// The session's two timers.
public enum BFDTimer: Sendable, Hashable {
    /// Periodic transmission (§6.8.7).
    case transmit
    /// The Detection Time since the last valid packet (§6.8.4).
    case detection
}

/// A state change, with the figures that explain it.
public struct BFDTransition: Sendable, Hashable {
    public var from: BFDState
    public var to: BFDState
    public var diagnostic: BFDDiagnostic
    /// The Detection Time in force when the change happened (µs); 0 before any packet arrived.
    public var detectionTime: UInt64
}

/// What the driver does for the session.
public enum BFDAction: Sendable, Hashable {
    case send(BFDControlPacket)
    case arm(BFDTimer, microseconds: UInt64)
    case stop(BFDTimer)
    case stateChanged(BFDTransition)
}

/// A small deterministic generator (SplitMix64) for the transmit jitter.
struct SplitMix64: Sendable, Hashable {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One BFD session (RFC 5880 §6.8.1 state variables) in asynchronous mode, active role.
public struct BFDSession: Sendable, Hashable {
    /// §6.8.3: "When bfd.SessionState is not Up, the system MUST set bfd.DesiredMinTxInterval
    /// to a value of not less than one second (1,000,000 microseconds)."
    public static let slowTransmitInterval: UInt32 = 1_000_000

    public private(set) var configuration: BFDConfiguration
    public let localDiscriminator: UInt32
    public private(set) var state: BFDState = .down
    public private(set) var remoteState: BFDState = .down
    public private(set) var remoteDiscriminator: UInt32 = 0
    /// bfd.LocalDiag: sent in every packet; why the session last left Up.
    public private(set) var localDiagnostic: BFDDiagnostic = .none
    public private(set) var remoteDiagnostic: BFDDiagnostic = .none
    /// bfd.RemoteMinRxInterval: §6.8.1 says it starts at 1 µs.
    public private(set) var remoteMinRxInterval: UInt32 = 1
    /// The peer's last Desired Min TX Interval (0 until a packet arrives).
    public private(set) var remoteDesiredMinTxInterval: UInt32 = 0
    public private(set) var remoteDetectMultiplier: UInt8 = 0
    /// A Poll Sequence is in progress: periodic packets carry P until a packet with F arrives.
    public private(set) var polling = false
    /// True once the session has been Up (RFC 5882 §3.2: a client should not act on a session
    /// that never came up).
    public private(set) var hasBeenUp = false
    /// When the last valid packet arrived (µs of the caller's monotonic clock).
    public private(set) var lastReceived: UInt64?
    /// When the Detection Time runs out, while a packet has been received.
    public private(set) var detectionDeadline: UInt64?

    /// Values advertised in our packets (bfd.DesiredMinTxInterval / bfd.RequiredMinRxInterval).
    private var advertisedDesiredMinTx: UInt32
    private var advertisedRequiredMinRx: UInt32
    /// Values in force: they follow the advertised ones at once, except where §6.8.3 says an
    /// increase in TX (or a decrease in RX) waits for the Poll Sequence to finish.
    private var activeDesiredMinTx: UInt32
    private var activeRequiredMinRx: UInt32
    private var random: SplitMix64

    public init(configuration: BFDConfiguration, localDiscriminator: UInt32, seed: UInt64) {
        precondition(localDiscriminator != 0, "RFC 5880 §6.8.1: bfd.LocalDiscr must be nonzero")
        precondition(configuration.detectMultiplier > 0)
        self.configuration = configuration
        self.localDiscriminator = localDiscriminator
        let tx = max(configuration.desiredMinTxInterval, Self.slowTransmitInterval)
        advertisedDesiredMinTx = tx
        activeDesiredMinTx = tx
        advertisedRequiredMinRx = configuration.requiredMinRxInterval
        activeRequiredMinRx = configuration.requiredMinRxInterval
        random = SplitMix64(state: seed)
    }

    // MARK: - Negotiated figures

    /// §6.8.7: periodic packets go out every max(bfd.DesiredMinTxInterval, bfd.RemoteMinRxInterval).
    public var transmitInterval: UInt32 { max(activeDesiredMinTx, remoteMinRxInterval) }

    /// §6.8.4 (asynchronous mode): "the remote system's bfd.DetectMult multiplied by the agreed
    /// transmit interval of the remote system (the greater of bfd.RequiredMinRxInterval and the
    /// last received Desired Min TX Interval)". 0 before the first packet.
    public var detectionTime: UInt64 {
        UInt64(remoteDetectMultiplier) * UInt64(max(activeRequiredMinRx, remoteDesiredMinTxInterval))
    }

    // MARK: - Inputs

    /// Starts transmitting (Down state, slow rate).
    public mutating func start(now: UInt64) -> [BFDAction] {
        var actions: [BFDAction] = []
        transmit(&actions)
        return actions
    }

    /// The transmit timer fired: one periodic packet, and the next one armed.
    public mutating func transmitTimerExpired(now: UInt64) -> [BFDAction] {
        var actions: [BFDAction] = []
        transmit(&actions)
        return actions
    }

    /// The detection timer fired.
    public mutating func detectionTimerExpired(now: UInt64) -> [BFDAction] {
        guard let deadline = detectionDeadline else { return [] }
        if now < deadline { return [.arm(.detection, microseconds: deadline - now)] }
        detectionDeadline = nil
        var actions: [BFDAction] = []
        // §6.8.1 bfd.RemoteDiscr: "MUST be set to zero if no Control packet has been received
        // from the remote system in the past Detection Time."
        let detection = detectionTime
        remoteDiscriminator = 0
        remoteState = .down
        // §6.8.4: "If ... Detection Time passes without the receipt of a BFD Control packet,
        // [and] bfd.SessionState is Init or Up, the session has gone down -- the local system
        // MUST set bfd.SessionState to Down and bfd.LocalDiag to 1."
        if state == .`init` || state == .up {
            change(to: .down, diagnostic: .controlDetectionTimeExpired, detectionTime: detection, &actions)
        }
        return actions
    }

    /// A decoded packet arrived for this session (RFC 5880 §6.8.6, after the checks in
    /// `BFDControlPacket.init(decoding:)` and the GTSM check of RFC 5881 §5 in the driver).
    public mutating func receive(_ packet: BFDControlPacket, now: UInt64) -> [BFDAction] {
        var actions: [BFDAction] = []
        // §6.8.6: a Your Discriminator that is not ours selects no session: discard.
        if packet.yourDiscriminator != 0, packet.yourDiscriminator != localDiscriminator { return [] }
        // A peer that goes down advertises its slow rate in the same packet; the figure that
        // explains a Down is the one that was in force until now.
        let previousDetection = detectionTime
        let previousInterval = transmitInterval
        remoteDiscriminator = packet.myDiscriminator
        remoteState = packet.state
        remoteDiagnostic = packet.diagnostic
        remoteDetectMultiplier = packet.detectMultiplier
        // §6.8.6: "If the Final (F) bit is set and the local system has sent a Poll, ... terminate
        // the Poll Sequence": values waiting for it take effect.
        if packet.final, polling {
            polling = false
            activeDesiredMinTx = advertisedDesiredMinTx
            activeRequiredMinRx = advertisedRequiredMinRx
        }
        // §6.8.7: a lower Required Min RX from the peer lets us transmit faster at once (the
        // next timer uses the new interval).
        remoteMinRxInterval = packet.requiredMinRxInterval
        remoteDesiredMinTxInterval = packet.desiredMinTxInterval
        lastReceived = now

        // §6.8.6: "If bfd.SessionState is AdminDown, discard the packet."
        guard state != .adminDown else { return [] }

        if packet.state == .adminDown {
            // "If received state is AdminDown: if bfd.SessionState is not Down, set bfd.LocalDiag
            // to 3 (Neighbor signaled session down) and bfd.SessionState to Down."
            if state != .down {
                change(to: .down, diagnostic: .neighborSignaledSessionDown, detectionTime: previousDetection, &actions)
            }
        } else {
            switch state {
            case .down:
                // "If received State is Down, set bfd.SessionState to Init; else if received
                // State is Init, set bfd.SessionState to Up."
                if packet.state == .down {
                    change(to: .`init`, diagnostic: localDiagnostic, detectionTime: detectionTime, &actions)
                } else if packet.state == .`init` {
                    change(to: .up, diagnostic: .none, detectionTime: detectionTime, &actions)
                }
            case .`init`:
                // "If received State is Init or Up, set bfd.SessionState to Up."
                if packet.state == .`init` || packet.state == .up {
                    change(to: .up, diagnostic: .none, detectionTime: detectionTime, &actions)
                }
            case .up:
                // "If received State is Down, set bfd.LocalDiag to 3 (Neighbor signaled session
                // down) and bfd.SessionState to Down."
                if packet.state == .down {
                    change(to: .down, diagnostic: .neighborSignaledSessionDown, detectionTime: previousDetection, &actions)
                }
            case .adminDown:
                break
            }
        }

        // §6.8.6: "If the Poll (P) bit is set, send a BFD Control packet to the remote system
        // with the Poll (P) bit clear, and the Final (F) bit set" — at once (§6.8.7).
        if packet.poll { actions.append(.send(makePacket(final: true))) }

        // §6.8.4: restart the detection timer on every valid packet.
        let detection = detectionTime
        detectionDeadline = now + detection
        actions.append(.arm(.detection, microseconds: detection))
        // A shorter interval takes effect now, not after the packet already scheduled at the old
        // one (up to a second away while the session came up): the peer's Detection Time
        // shrinks with it.
        if transmitInterval < previousInterval { actions.append(.arm(.transmit, microseconds: jittered(transmitInterval))) }
        return actions
    }

    /// New local timer settings. While Up, a Poll Sequence tells the peer (§6.8.3).
    public mutating func reconfigure(_ new: BFDConfiguration, now: UInt64) -> [BFDAction] {
        precondition(new.detectMultiplier > 0)
        configuration = new
        var actions: [BFDAction] = []
        updateAdvertised(&actions)
        return actions
    }

    /// The operator takes the session down (§6.8.16): AdminDown with diagnostic 7; the peer
    /// sees AdminDown and must not take its clients down because of it (RFC 5882 §3.2).
    public mutating func adminDown(now: UInt64) -> [BFDAction] {
        guard state != .adminDown else { return [] }
        var actions: [BFDAction] = []
        change(to: .adminDown, diagnostic: .administrativelyDown, detectionTime: detectionTime, &actions)
        return actions
    }

    /// Leaves AdminDown (§6.8.16: "set bfd.SessionState to Down").
    public mutating func adminUp(now: UInt64) -> [BFDAction] {
        guard state == .adminDown else { return [] }
        var actions: [BFDAction] = []
        change(to: .down, diagnostic: .none, detectionTime: detectionTime, &actions)
        return actions
    }

    // MARK: - Internals

    private mutating func change(to new: BFDState, diagnostic: BFDDiagnostic, detectionTime: UInt64, _ actions: inout [BFDAction]) {
        let old = state
        state = new
        localDiagnostic = diagnostic
        if new == .up { hasBeenUp = true }
        if new == .adminDown || new == .down && old == .adminDown {
            detectionDeadline = nil
            actions.append(.stop(.detection))
        }
        actions.append(.stateChanged(BFDTransition(from: old, to: new, diagnostic: diagnostic, detectionTime: detectionTime)))
        updateAdvertised(&actions)
        // Tell the peer at once rather than at the next (possibly one-second) tick.
        actions.append(.send(makePacket(final: false)))
    }

    /// Recomputes what we advertise from the configuration and the state (§6.8.3).
    private mutating func updateAdvertised(_ actions: inout [BFDAction]) {
        let tx = state == .up ? configuration.desiredMinTxInterval : max(configuration.desiredMinTxInterval, Self.slowTransmitInterval)
        let rx = configuration.requiredMinRxInterval
        guard tx != advertisedDesiredMinTx || rx != advertisedRequiredMinRx else { return }
        let oldTx = advertisedDesiredMinTx, oldRx = advertisedRequiredMinRx
        advertisedDesiredMinTx = tx
        advertisedRequiredMinRx = rx
        if state == .up {
            // §6.8.3: "If either bfd.DesiredMinTxInterval is changed or bfd.RequiredMinRxInterval
            // is changed, a Poll Sequence MUST be initiated"; an increased TX interval and a
            // decreased RX interval wait for it, the other directions apply at once.
            polling = true
            if rx > oldRx { activeRequiredMinRx = rx }
            if tx < oldTx {
                // Faster at once, and the next packet at the new interval: the peer answers the
                // Poll with its Final and from then on expects a packet within its Detection Time
                // (3 × 50 ms at 50 ms × 3), not at the one-second rate of a session coming up.
                let before = transmitInterval
                activeDesiredMinTx = tx
                if transmitInterval < before { actions.append(.arm(.transmit, microseconds: jittered(transmitInterval))) }
            }
        } else {
            // Not Up: no Poll Sequence is needed, the new values apply at once.
            polling = false
            activeDesiredMinTx = tx
            activeRequiredMinRx = rx
        }
    }

    private mutating func transmit(_ actions: inout [BFDAction]) {
        // §6.8.7: "A system MUST NOT periodically transmit BFD Control packets if
        // bfd.RemoteMinRxInterval is zero." Keep the timer so we resume when it changes.
        if remoteMinRxInterval != 0 {
            actions.append(.send(makePacket(final: false)))
        }
        actions.append(.arm(.transmit, microseconds: jittered(transmitInterval)))
    }

    /// §6.8.7: "the interval MUST be reduced by a random value of 0 to 25% ... If bfd.DetectMult
    /// is equal to 1, the interval between transmitted BFD Control packets MUST be no more than
    /// 90% of the negotiated transmission interval, and MUST be no less than 75%".
    private mutating func jittered(_ interval: UInt32) -> UInt64 {
        let full = UInt64(interval)
        let maximumPercent: UInt64 = configuration.detectMultiplier == 1 ? 90 : 100
        let percent = 75 + random.next() % (maximumPercent - 75 + 1)
        return max(1, full * percent / 100)
    }

    private func makePacket(final: Bool) -> BFDControlPacket {
        BFDControlPacket(
            diagnostic: localDiagnostic, state: state,
            // §6.8.7: "A BFD Control packet MUST NOT have both the Poll (P) and Final (F) bits set."
            poll: polling && !final, final: final,
            detectMultiplier: configuration.detectMultiplier,
            myDiscriminator: localDiscriminator, yourDiscriminator: remoteDiscriminator,
            desiredMinTxInterval: advertisedDesiredMinTx, requiredMinRxInterval: advertisedRequiredMinRx,
            requiredMinEchoRxInterval: 0)
    }
}
