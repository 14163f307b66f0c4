import BGP
import CSystem
import Glibc
import IP
import Logging
import Sockets

/// A path as sent to one peer: the next hop and the other attributes.
struct OutPath: Hashable {
    var nextHop: BGP.NextHop
    var attributes: [PathAttribute]
}

/// A path received from a peer (Adj-RIB-In). Display only: never installed anywhere.
struct ReceivedPath {
    var attributes: [PathAttribute]
    var nextHop: IPAddress?
    var receivedAt: Int64
    var stale: Bool
    /// Its AS_PATH holds our own AS: a route of ours (or through us) echoed back, which RFC 4271
    /// §9.1.2 excludes from the decision process (kept for display, marked).
    var asLoop = false
}

/// The session driver for one peer: performs the `SessionFSM`'s actions on sockets and timers,
/// owns the peer's Adj-RIB-Out (what the peer should have, plus a dirty set) and Adj-RIB-In.
/// Loop-confined: every method runs on the speaker's event loop thread; the entry points that
/// `SpeakerCore` calls check it (`preconditionInEventLoop`), in release builds too.
final class PeerDriver: @unchecked Sendable {
    /// Weak: a callback that outlives the speaker finds nil instead of a dangling reference.
    weak var core: SpeakerCore?
    let loop: EventLoop
    /// The speaker's settings; a change takes effect with the next session (an ASN or router ID
    /// change resets the session at once: see `SpeakerCore.updateSettings`).
    var speaker: SpeakerSettings
    var settings: PeerSettings
    var logger: Logger
    /// RFC 4724 §3: our OPENs to this peer set the Restart State bit and each family's
    /// Forwarding State bit while the restart this process started from is under way for the
    /// peer, which is from the start until our End-of-RIB went out to it (§4.1: the initial
    /// transfer after the restart is complete, and §4.2: the peer then drops whatever of ours it
    /// kept as stale), or until the restart time we advertise has passed (§4.2: by then the peer
    /// has deleted our stale routes; see `SpeakerCore.restartUnderWay`), whichever comes first.
    /// A session that ends before our End-of-RIB leaves them set: the peer still holds our old
    /// routes as stale, and a clear F bit would make it delete them at once. A later session is
    /// a reset of a process that did not restart: no R, no F. BIRD (graceful recovery) and FRR
    /// (its startup timer) likewise set them only for a while after the start.
    var restarting: Bool

    var primary: SessionAttempt?
    var secondary: SessionAttempt?
    /// The Established attempt.
    var session: SessionAttempt?

    var reportedState: PeerState = .idle
    var establishedAt: Int64?
    var lastError: PeerError?
    var recentErrors: [RecentPeerError] = []
    static let recentErrorLimit = 10
    var hint: String?
    var negotiated: NegotiatedSession?
    var counters = PeerCounters()
    var refreshGuard = RouteRefreshGuard()
    /// Set when the MD5 key could not be put on a listener: inbound connections are refused.
    var listenerKeyError: String?
    /// The idle hold wait in progress (seconds, Unix ms when it ends), for the peer's status.
    var backoff: (seconds: Int, until: Int64)?

    // Adj-RIB-Out: what the peer has been sent. Per prefix an interned list of interned paths
    // (index i is path ID i+1 with ADD-PATH; without it one path, ID 0): a prefix costs one
    // dictionary entry of a few bytes, however long its attributes (see `InternTable`).
    var sent = PrefixMap<UInt32>()
    var sentSets = InternTable<[UInt32]>()
    var sentPaths = InternTable<OutPath>()
    /// A prefix was added to `sent` since the last view was taken (see `RIBView.version`).
    var sentGainedPrefixes = false
    var advertisedVersion = RIBView.nextVersion()
    /// Counts resets of the Adj-RIB-Out, so that a flush interrupted by the session closing
    /// (a failed write closes it synchronously) knows to stop.
    var adjRIBOutEpoch = 0
    var dirty: Set<IPPrefix> = []
    /// The initial transfer: a walk through the Loc-RIB as it was when the session came up,
    /// written before `dirty`. See `nextPending`. The Loc-RIB is a copy-on-write value, so
    /// taking it costs the loop nothing at session start however large the table (the loop
    /// copies it once only if the Loc-RIB changes during the transfer).
    var transfer: PrefixMap<UInt32>.Iterator?
    /// `SpeakerCore.locRIBVersion` when `transfer` was taken.
    var transferVersion = 0
    /// Dirty prefixes taken out of `dirty` for writing, in order; `drainIndex` is the next one.
    /// (Draining a Set with `popFirst` rescans its emptied buckets each time: quadratic in the
    /// table, which a million-prefix transfer felt.)
    var draining: [IPPrefix] = []
    var drainIndex = 0
    /// Dirty prefixes to send even if the peer should already have them (route refresh).
    var forceResend: Set<IPPrefix> = []
    var fewerPaths: Set<IPPrefix> = []
    /// Prefixes not sent for lack of a next hop of their family (see `export`).
    var withoutNextHop: Set<IPPrefix> = []
    var withoutNextHopReported = false
    /// An address of the other family on the interface of the session's local address, read
    /// when the session came up; the next hop of "self" routes of that family when no
    /// `otherFamilyNextHop` is set.
    var learnedOtherFamilyNextHop: IPAddress?
    var endOfRIBPending: [AddressFamily] = []
    var flushScheduled = false

    // Adj-RIB-In.
    var received: [NLRI: ReceivedPath] = [:]
    var receivedGainedPrefixes = false
    var receivedVersion = RIBView.nextVersion()
    var staleTimer: TimerHandle?
    var maxPrefixReported = false
    /// The Adj-RIB-In reached its limit in this session (reported once).
    var adjRIBInFullReported = false

    init(core: SpeakerCore, settings: PeerSettings) {
        core.loop.preconditionInEventLoop()
        self.core = core
        self.loop = core.loop
        self.speaker = core.settings
        self.settings = settings
        self.restarting = core.restartUnderWay
        var logger = core.logger
        logger[metadataKey: "peer"] = "\(settings.name)"
        self.logger = logger
    }

    var isInternal: Bool { settings.asn == speaker.asn }

    // MARK: - Configuration

    func sessionConfiguration() -> SessionConfiguration {
        let s = speaker
        let families = settings.families.sorted { $0.rawValue < $1.rawValue }.map { AddressFamily.unicast($0) }
        var capabilities: [Capability] = families.map { .multiprotocol($0) }
        // RFC 8950 §3: on an IPv6 session, IPv4 routes may carry an IPv6 next hop, so "self"
        // reaches the router with no IPv4 address on the link. Used only when the router offers
        // it too.
        if settings.address.family == .ipv6 && settings.families.contains(.ipv4) {
            capabilities.append(.extendedNextHop([Self.ipv4OverIPv6]))
        }
        capabilities.append(.routeRefresh)
        capabilities.append(.fourOctetASN(s.asn))
        var addPath: [AddressFamily: AddPathDirection] = [:]
        for family in families {
            var direction: AddPathDirection = []
            if settings.addPathSend { direction.insert(.send) }
            if settings.addPathReceive { direction.insert(.receive) }
            if !direction.isEmpty { addPath[family] = direction }
        }
        if !addPath.isEmpty { capabilities.append(.addPath(addPath)) }
        if settings.gracefulRestart {
            // RFC 4724 §3: only the families of this session; RFC 8538 N bit. The Forwarding
            // State bit is always set: Herald forwards nothing, the routes' next hops (the
            // nodes) do, and no reset or restart of Herald touches them. A helper that holds our
            // routes as stale keeps them until our End-of-RIB; with the bit clear it must drop
            // them the moment the session is back (§4.2), a blackhole until we resend.
            capabilities.append(.gracefulRestart(GracefulRestart(
                restarting: restarting, notificationSupport: true, restartTime: s.gracefulRestartTime,
                families: families.map { GracefulRestart.Family($0, forwardingPreserved: true) })))
        }
        let open = OpenMessage(asn: s.asn, holdTime: settings.holdTime ?? s.holdTime, bgpIdentifier: s.routerID, capabilities: capabilities)
        return SessionConfiguration(
            localOpen: open, expectations: PeerExpectations(peerASN: settings.asn),
            connectRetryTime: settings.connectRetryTime ?? s.connectRetryTime, largeHoldTime: 240,
            passive: settings.passive, automaticRestart: true, dampPeerOscillations: true,
            idleHoldTime: s.idleHoldTime, maximumIdleHoldTime: s.maximumIdleHoldTime, stableSessionTime: 300,
            configuredKeepaliveTime: settings.keepaliveTime ?? s.keepaliveTime)
    }

    /// TTL / GTSM / MD5 for this peer's sockets.
    func socketOptions() -> SocketOptions {
        var options = SocketOptions()
        if let hops = settings.ttlSecurity {
            options.ttl = 255
            options.minimumTTL = 256 - hops
        } else if let ttl = settings.ebgpMultihop {
            options.ttl = ttl
        } else if !isInternal {
            options.ttl = 1
        }
        if let password = settings.password { options.md5Key = Array(password.utf8) }
        return options
    }

    var outgoingTTL: Int? { socketOptions().ttl }

    // MARK: - Start and stop

    func start() {
        loop.preconditionInEventLoop()
        guard settings.enabled, primary == nil else { return }
        let attempt = SessionAttempt(peer: self, configuration: sessionConfiguration(), origin: .outgoing)
        primary = attempt
        handle(attempt, .manualStart)
    }

    /// Cease on every connection — Administrative Shutdown (RFC 8203 message) unless `cease`
    /// says otherwise (RFC 4486: reset, de-configured, configuration change); no restart.
    func stop(communication: String?, cease: CeaseReason = .administrativeShutdown) {
        loop.preconditionInEventLoop()
        for attempt in [secondary, primary].compactMap({ $0 }) {
            handle(attempt, .manualStop(communication: communication, cease: cease))
            retire(attempt)
        }
        primary = nil
        secondary = nil
        reportState()
    }

    /// Closes every connection without a NOTIFICATION (graceful restart: peers keep our routes).
    func drop() {
        loop.preconditionInEventLoop()
        for attempt in [secondary, primary].compactMap({ $0 }) {
            retire(attempt)
            attempt.connection?.close()
            attempt.connection = nil
        }
        primary = nil
        secondary = nil
        sessionEnded(reason: "speaker shut down for a graceful restart", notification: nil)
        reportState()
    }

    /// The restart is over for this peer (see `restarting`): later OPENs leave R and F clear,
    /// also those of the attempts under way, whose OPEN was made when they began.
    func endRestart() {
        guard restarting else { return }
        restarting = false
        for attempt in [primary, secondary].compactMap({ $0 }) { attempt.fsm.endRestart() }
    }

    /// The peer's BFD session went from Up to Down: end the BGP session now (Cease/10, BFD
    /// Down, RFC 9384) instead of waiting for the hold timer; the FSM restarts it after the idle
    /// hold time, as after any failure.
    func bfdDown(reason: String) {
        loop.preconditionInEventLoop()
        logger.warning("\(reason): closing the BGP session")
        for attempt in [secondary, primary].compactMap({ $0 }) {
            switch attempt.fsm.state {
            case .openSent, .openConfirm, .established:
                handle(attempt, .automaticStop(reason: .bfdDown, detail: reason))
            case .idle, .connect, .active:
                continue
            }
        }
    }

    /// Closes the session with a Cease (Administrative Reset unless `cease` says otherwise) and
    /// starts again.
    func hardReset(communication: String?, cease: CeaseReason = .administrativeReset) {
        stop(communication: communication, cease: cease)
        start()
    }

    func retire(_ attempt: SessionAttempt) {
        attempt.retired = true
        attempt.cancelTimers(on: loop)
        if attempt === session { session = nil }
        if attempt === primary { primary = nil }
        if attempt === secondary { secondary = nil }
    }

    // MARK: - FSM

    func handle(_ attempt: SessionAttempt, _ event: SessionEvent) {
        if case .connectRetryTimerExpired = event, case .connect = attempt.fsm.state, attempt.connection != nil {
            noAnswer(attempt)
        }
        let actions = attempt.fsm.handle(event)
        perform(actions, attempt)
        if let parameters = attempt.openConfirmParameters { attempt.parameters = parameters }
        reportState()
    }

    func perform(_ actions: [SessionAction], _ attempt: SessionAttempt) {
        for action in actions {
            if attempt.retired {
                switch action {
                case .send(let message): send(message, on: attempt)
                case .closeConnection: attempt.closeConnection()
                default: break
                }
                continue
            }
            switch action {
            case .connect:
                if attempt.ignoreConnect {
                    attempt.ignoreConnect = false
                } else if attempt.connection == nil {
                    openConnection(attempt)
                }
            case .send(let message):
                send(message, on: attempt)
            case .arm(let timer, let seconds):
                if timer == .idleHold { backoff = (seconds, wallClockMillis() + Int64(seconds) * 1000) }
                if let old = attempt.timers[timer] { loop.cancelTimer(old) }
                attempt.timers[timer] = loop.scheduleTimer(after: .seconds(seconds)) { [weak self, weak attempt] in
                    guard let self, let attempt, !attempt.retired else { return }
                    attempt.timers[timer] = nil
                    self.handle(attempt, Self.expiry(timer))
                }
            case .stop(let timer):
                if timer == .idleHold { backoff = nil }
                if let old = attempt.timers.removeValue(forKey: timer) { loop.cancelTimer(old) }
            case .closeConnection:
                attempt.closeConnection()
            case .established(let parameters):
                established(attempt, parameters)
            case .down(let reason):
                down(attempt, reason)
            }
        }
    }

    static func expiry(_ timer: SessionTimer) -> SessionEvent {
        switch timer {
        case .connectRetry: .connectRetryTimerExpired
        case .hold: .holdTimerExpired
        case .keepalive: .keepaliveTimerExpired
        case .idleHold: .idleHoldTimerExpired
        case .stableSession: .stableSessionTimerExpired
        }
    }

    func openConnection(_ attempt: SessionAttempt) {
        let remote = SocketAddress(settings.address, port: settings.port)
        let local = settings.localAddress.map { SocketAddress($0, port: 0) }
        attempt.connectStartedAt = wallClockMillis()
        do {
            attempt.connection = try Connection.connect(to: remote, from: local, options: socketOptions(), on: loop, delegate: attempt)
            armSilentConnectHint(attempt)
        } catch {
            let reason: String
            if error.operation.contains("MD5") {
                // Fail closed: without the key the session must not start.
                reason = "TCP MD5 key could not be installed (\(error)); the session does not start without it"
                hint = reason
            } else {
                reason = "cannot connect: \(error)"
            }
            loop.execute { [weak self, weak attempt] in
                guard let self, let attempt, !attempt.retired else { return }
                self.handle(attempt, .tcpConnectionFails(reason))
            }
        }
    }

    /// The connect attempt timed out without any answer: say what usually causes that.
    func noAnswer(_ attempt: SessionAttempt) {
        var reason = "no answer from \(settings.address) port \(settings.port) within \(attempt.fsm.configuration.connectRetryTime) s"
        if let explanation = connectFailureExplanation() { reason += "; " + explanation }
        record(PeerError(at: wallClockMillis(), reason: reason, notification: nil))
        hint = reason
        logger.info("BGP connect attempt failed", metadata: ["reason": "\(reason)"])
    }

    func send(_ message: BGPMessage, on attempt: SessionAttempt) {
        guard let connection = attempt.connection else { return }
        connection.write(message.encoded(context: attempt.parameters?.sendContext ?? .initial))
        counters.messagesOut += 1
        if case .notification(let n) = message { attempt.notification = NotificationInfo(n, .sent) }
        if case .update = message { counters.updatesOut += 1 }
    }

    // MARK: - Connection events

    func connectionUp(_ attempt: SessionAttempt) {
        guard !attempt.retired else { return }
        if let local = attempt.connection?.localAddress {
            attempt.localAddress = local.address
            logger.debug("TCP connected", metadata: ["local": "\(local)"])
        }
        handle(attempt, .tcpConnectionAcknowledged)
    }

    func connectionFailed(_ attempt: SessionAttempt, _ reason: String, errno code: Int32?) {
        guard !attempt.retired else { return }
        attempt.closeConnection()
        var reason = reason
        if case .connect = attempt.fsm.state, let code, code == EHOSTUNREACH || code == ETIMEDOUT || code == ENETUNREACH,
           let explanation = connectFailureExplanation() {
            // An ICMP time-exceeded (TTL too small) comes back as "no route to host".
            reason += "; " + explanation
            hint = reason
        } else if let explanation = sourceAddressExplanation(attempt) {
            reason += "; " + explanation
            hint = reason
        }
        handle(attempt, .tcpConnectionFails(reason))
    }

    /// What usually makes an outgoing connection fail silently or with "no route to host".
    func connectFailureExplanation() -> String? {
        if settings.password != nil {
            return "a TCP MD5 password is set: check the MD5 password on both sides (a wrong or missing key drops the packets silently)"
        } else if settings.ttlSecurity != nil {
            return "GTSM (ttl_security) is on: check the hop count on both sides"
        } else if outgoingTTL == 1 {
            return "eBGP sends with TTL 1: if the peer is not directly connected, set ebgp_multihop (or ttl_security)"
        }
        return nil
    }

    /// A router closes a connection from a source address it has no neighbor for, often
    /// without a NOTIFICATION, right after our OPEN. With several addresses on the interface
    /// (IPv6 above all: temporary and stable addresses) the kernel's choice is not always the
    /// one the router knows, so name it.
    func sourceAddressExplanation(_ attempt: SessionAttempt) -> String? {
        guard settings.localAddress == nil, let local = attempt.localAddress, attempt.notification == nil else { return nil }
        switch attempt.fsm.state {
        case .openSent, .openConfirm:
            return "Herald connected from \(local), the source address the kernel chose: if the router's neighbor is another of this host's addresses, set local_address"
        default:
            return nil
        }
    }

    func connectionWritable(_ attempt: SessionAttempt) {
        if attempt === session { flush() }
    }

    /// An inbound connection from this peer's address. Returns its delegate, or nil to close it.
    func accept(_ connection: Connection) -> (any ConnectionDelegate)? {
        loop.preconditionInEventLoop()
        guard settings.enabled else {
            logger.info("refusing connection: peer is disabled")
            return nil
        }
        if let listenerKeyError {
            hint = listenerKeyError
            return nil
        }
        // Outgoing TTL / GTSM on the accepted socket before a byte is read (the listener's MD5
        // key is inherited). Fail closed, like MD5: a session whose TTL rules cannot be set is
        // refused rather than run without them.
        let options = socketOptions()
        do {
            try connection.setHopLimits(ttl: options.ttl, minimum: options.minimumTTL)
        } catch {
            hint = "inbound connection refused: its TTL / GTSM settings could not be applied (\(error))"
            logger.warning("refusing connection: TTL / GTSM settings could not be applied", metadata: ["error": "\(error)"])
            return nil
        }
        let attempt = SessionAttempt(peer: self, configuration: sessionConfiguration(), origin: .incoming)
        attempt.connection = connection
        attempt.ignoreConnect = true
        if let current = primary, current.isColliding {
            // RFC 4271 §6.8: keep both until the OPENs say which one survives.
            if let old = secondary {
                retire(old)
                old.closeConnection()
            }
            secondary = attempt
        } else {
            // Idle, Connect or Active: the peer's connection replaces any attempt of ours.
            if let old = primary {
                retire(old)
                old.closeConnection()
            }
            primary = attempt
        }
        loop.execute { [weak self, weak attempt] in
            guard let self, let attempt, !attempt.retired else { return }
            self.handle(attempt, .manualStart)
            if !attempt.retired { self.handle(attempt, .tcpConnectionConfirmed) }
        }
        return attempt
    }

    // MARK: - Receiving

    func didRead(_ attempt: SessionAttempt) {
        while !attempt.retired, attempt.connection != nil {
            let context = attempt.parameters?.receiveContext ?? .initial
            let length: Int?
            do {
                length = try MessageFraming.nextMessageLength(in: attempt.buffer[attempt.readIndex...], maxMessageLength: context.maxMessageLength)
            } catch {
                handle(attempt, .messageError(error))
                return
            }
            guard let length else { break }
            guard attempt.buffer.count - attempt.readIndex >= length else { break }
            let start = attempt.readIndex
            attempt.readIndex += length
            counters.messagesIn += 1
            let message: BGPMessage
            do {
                message = try BGPMessage.decode(attempt.buffer[start..<start + length], context: context)
            } catch {
                handle(attempt, .messageError(error))
                return
            }
            receive(message, on: attempt)
        }
        if attempt.readIndex > 0 && (attempt.readIndex == attempt.buffer.count || attempt.readIndex > 65536) {
            attempt.buffer.removeFirst(attempt.readIndex)
            attempt.readIndex = 0
        }
    }

    func receive(_ message: BGPMessage, on attempt: SessionAttempt) {
        switch message {
        case .open(let open):
            if let other = attempt === primary ? secondary : primary, !other.retired, other.isColliding {
                switch other.fsm.resolveCollision(thisConnection: other.origin, peerIdentifier: open.bgpIdentifier, peerASN: open.asn) {
                case .dumpThisConnection:
                    dump(other)
                case .dumpOtherConnection:
                    dump(attempt)
                    return
                case .noCollision:
                    break
                }
            }
            handle(attempt, .bgpOpen(open))
        case .keepalive:
            handle(attempt, .keepaliveMessage)
        case .update(let update):
            counters.updatesIn += 1
            handle(attempt, .updateMessage)
            if attempt === session, let parameters = attempt.parameters { process(update, parameters, attempt) }
        case .notification(let notification):
            attempt.notification = NotificationInfo(notification, .received)
            handle(attempt, .notificationMessage(notification))
        case .routeRefresh(let refresh):
            if attempt === session { routeRefreshRequested(refresh, on: attempt) }
        }
    }

    /// Closes the losing connection of a collision with Cease/7 (RFC 4271 §6.8).
    func dump(_ attempt: SessionAttempt) {
        let wasPrimary = attempt === primary
        retire(attempt)
        perform(attempt.fsm.handle(.openCollisionDump), attempt)
        if wasPrimary, let other = secondary {
            primary = other
            secondary = nil
        }
        logger.info("connection collision resolved", metadata: ["closed": "\(attempt.origin)"])
    }

    // MARK: - Session up and down

    func established(_ attempt: SessionAttempt, _ parameters: SessionParameters) {
        if attempt === secondary {
            if let old = primary {
                retire(old)
                old.closeConnection()
            }
            primary = attempt
            secondary = nil
        }
        attempt.parameters = parameters
        session = attempt
        peerGracefulRestartCache = parameters.peerGracefulRestart
        establishedAt = wallClockMillis()
        hint = nil
        maxPrefixReported = false
        adjRIBInFullReported = false
        let connection = attempt.connection
        learnedOtherFamilyNextHop = nil
        if settings.otherFamilyNextHop == nil, let local = connection?.localAddress?.address {
            learnedOtherFamilyNextHop = InterfaceAddresses.sibling(of: local, family: local.family == .ipv4 ? .ipv6 : .ipv4)
        }
        negotiated = NegotiatedSession(
            holdTime: parameters.holdTime, keepaliveTime: parameters.keepaliveTime, peerRouterID: parameters.peerIdentifier,
            fourOctetASN: parameters.fourOctetASN, capabilities: Self.capabilityNames(parameters),
            families: parameters.families.sorted().map(Self.familyName),
            addPathSend: parameters.addPathSend.sorted().map(Self.familyName),
            addPathReceive: parameters.addPathReceive.sorted().map(Self.familyName),
            localAddress: connection?.localAddress?.address, learnedOtherFamilyNextHop: learnedOtherFamilyNextHop,
            localPort: connection?.localAddress?.port,
            remotePort: connection?.remoteAddress?.port)
        logger.info("BGP session established", metadata: ["hold_time": "\(parameters.holdTime)"])
        // A restarting peer's stale routes stay until its End-of-RIB (RFC 4724 §4.2), unless it
        // no longer does graceful restart or did not keep forwarding state.
        if received.values.contains(where: \.stale) {
            let preserved = Set(parameters.peerGracefulRestart?.families.filter(\.forwardingPreserved).map(\.family) ?? [])
            removeStale { !preserved.contains(AddressFamily.unicast($0.prefix.family)) }
        }
        // Initial transfer: everything in the Loc-RIB, then End-of-RIB per family.
        resetAdjRIBOut()
        if let core {
            transfer = core.locRIB.makeIterator()
            transferVersion = core.locRIBVersion
        }
        // Grown once to the table's size: growing a million-entry dictionary by doubling
        // rehashes it again and again, which was a third of the transfer's CPU.
        if let core { sent.reserveCapacity(ipv4: core.locRIB.count(of: .ipv4), ipv6: core.locRIB.count(of: .ipv6)) }
        endOfRIBPending = exportFamilies(parameters).map { AddressFamily.unicast($0) }
        armSendHoldCheck(attempt, limit: speaker.sendHoldTime ?? max(480, 2 * Int(parameters.holdTime)))
        flush()
    }

    /// RFC 9687: once a second, while this attempt is the Established session, check how long
    /// its socket has refused every byte; past `limit` seconds the session ends (Event 29)
    /// instead of our buffers and Adj-RIB-Out waiting on a peer that stopped reading.
    func armSendHoldCheck(_ attempt: SessionAttempt, limit: Int) {
        if let old = attempt.sendHoldCheck { loop.cancelTimer(old) }
        attempt.sendHoldCheck = loop.scheduleTimer(after: .seconds(1)) { [weak self, weak attempt] in
            guard let self, let attempt else { return }
            attempt.sendHoldCheck = nil
            guard !attempt.retired, attempt === self.session, let connection = attempt.connection else { return }
            if let since = connection.sendStalledSince, EventLoop.now() &- since >= UInt64(limit) * 1_000_000_000 {
                self.logger.warning("peer takes no data: closing the session (RFC 9687 send hold timer)", metadata: [
                    "send_hold_time": "\(limit)", "unsent_bytes": "\(connection.bufferedBytes)",
                ])
                self.handle(attempt, .sendHoldTimerExpired(seconds: limit))
            } else {
                self.armSendHoldCheck(attempt, limit: limit)
            }
        }
    }

    /// The newest error, and the recent ones in order (bounded; a repeat counts, not grows).
    func record(_ error: PeerError) {
        lastError = error
        if let newest = recentErrors.first, newest.error.reason == error.reason, newest.error.notification == error.notification {
            recentErrors[0].error = error
            recentErrors[0].count += 1
            return
        }
        recentErrors.insert(RecentPeerError(error: error, count: 1, firstAt: error.at), at: 0)
        if recentErrors.count > Self.recentErrorLimit { recentErrors.removeLast() }
    }

    func down(_ attempt: SessionAttempt, _ reason: String) {
        if attempt === secondary, primary != nil {
            // A losing second connection: not the peer's session.
            retire(attempt)
            return
        }
        let notification = attempt.notification
        attempt.notification = nil
        attempt.parameters = nil
        let wasEstablished = attempt === session
        if wasEstablished { session = nil }
        record(PeerError(at: wallClockMillis(), reason: reason, notification: notification))
        logger.info("BGP session down", metadata: ["reason": "\(reason)"])
        if wasEstablished { sessionEnded(reason: reason, notification: notification) }
        reportState(reason: reason, notification: notification)
    }

    /// Empties the Adj-RIB-Out and its dirty state (a session begins or ends).
    func resetAdjRIBOut() {
        sent = [:]
        sentSets = InternTable()
        sentPaths = InternTable()
        adjRIBOutEpoch += 1
        dirty = []
        draining = []
        drainIndex = 0
        transfer = nil
        forceResend = []
        fewerPaths = []
        withoutNextHop = []
    }

    /// After an Established session ends: counters, Adj-RIB-Out, and the Adj-RIB-In
    /// (kept as stale for a graceful-restart peer, RFC 4724 §4.2 / RFC 8538).
    func sessionEnded(reason: String, notification: NotificationInfo?) {
        guard establishedAt != nil else { return }
        counters.flaps += 1
        establishedAt = nil
        resetAdjRIBOut()
        endOfRIBPending = []
        counters.prefixesAdvertised = 0
        counters.prefixesWithFewerPaths = 0
        let gr = negotiatedGracefulRestart
        negotiated = nil
        var keep = false
        if let gr {
            if let notification, notification.direction == .sent, notification.code == NotificationCode.cease.rawValue {
                keep = false  // we shut the session down on purpose
            } else if let notification {
                // RFC 8538 §4: with the N bit, any NOTIFICATION but Cease/Hard Reset keeps routes.
                keep = gr.notificationSupport && settings.gracefulRestart
                    && !(notification.code == NotificationCode.cease.rawValue && notification.subcode == CeaseReason.hardReset.rawValue)
            } else {
                keep = true
            }
        }
        if keep, !received.isEmpty, let gr {
            for key in received.keys { received[key]?.stale = true }
            if let old = staleTimer { loop.cancelTimer(old) }
            staleTimer = loop.scheduleTimer(after: .seconds(Int(max(gr.restartTime, 1)))) { [weak self] in
                self?.staleTimer = nil
                self?.removeStale { _ in true }
            }
            logger.info("keeping the peer's routes as stale (graceful restart)", metadata: ["restart_time": "\(gr.restartTime)"])
        } else {
            let count = received.count
            received = [:]
            counters.prefixesWithASLoop = 0
            counters.prefixesReceived = 0
            if count > 0 { core?.emit(.receivedRoutesChanged(peer: settings.name, announced: 0, withdrawn: count)) }
        }
        peerGracefulRestartCache = nil
    }

    /// The peer's graceful restart capability of the session that just ended.
    var peerGracefulRestartCache: GracefulRestart?
    var negotiatedGracefulRestart: GracefulRestart? { peerGracefulRestartCache }

    func removeStale(_ predicate: (NLRI) -> Bool) {
        let before = received.count
        received = received.filter { !($0.value.stale && predicate($0.key)) }
        counters.prefixesWithASLoop = received.values.reduce(0) { $0 + ($1.asLoop ? 1 : 0) }
        counters.prefixesReceived = received.count
        if received.count != before {
            core?.emit(.receivedRoutesChanged(peer: settings.name, announced: 0, withdrawn: before - received.count))
        }
    }

    // MARK: - State reporting

    var currentState: PeerState {
        guard settings.enabled else { return .disabled }
        guard let primary else { return .idle }
        switch primary.fsm.state {
        case .idle: return .idle
        case .connect: return .connect
        case .active: return .active
        case .openSent: return .openSent
        case .openConfirm: return .openConfirm
        case .established: return .established
        }
    }

    func reportState(reason: String? = nil, notification: NotificationInfo? = nil) {
        let state = currentState
        if state != reportedState || reason != nil {
            let from = reportedState
            reportedState = state
            core?.emit(.peerStateChanged(peer: settings.name, from: from, to: state, reason: reason, notification: notification))
        }
    }

    func snapshot() -> PeerSnapshot {
        loop.preconditionInEventLoop()
        var counters = self.counters
        counters.prefixesReceived = received.count
        counters.prefixesAdvertised = sent.count
        counters.prefixesWithFewerPaths = fewerPaths.count
        counters.prefixesWithoutNextHop = withoutNextHop.count
        counters.receivedLimit = adjRIBInLimit
        var snapshot = PeerSnapshot(name: settings.name, address: settings.address, asn: settings.asn, state: currentState,
                                    establishedAt: establishedAt, lastError: lastError, recentErrors: recentErrors, negotiated: negotiated, counters: counters, hint: hint,
                                    bfd: core?.bfd.snapshot(settings.name))
        if let primary {
            snapshot.consecutiveFailures = primary.fsm.consecutiveFailures
            if primary.fsm.armedTimers.contains(.idleHold), let backoff {
                snapshot.idleHoldSeconds = backoff.seconds
                snapshot.nextAttemptAt = backoff.until
            }
        }
        return snapshot
    }

    static func familyName(_ family: AddressFamily) -> String {
        switch family {
        case .ipv4Unicast: "ipv4-unicast"
        case .ipv6Unicast: "ipv6-unicast"
        default: "\(family)"
        }
    }

    static func capabilityNames(_ p: SessionParameters) -> [String] {
        var names: [String] = ["multiprotocol"]
        if p.routeRefresh { names.append("route-refresh") }
        if p.enhancedRouteRefresh { names.append("enhanced-route-refresh") }
        if p.fourOctetASN { names.append("four-octet-asn") }
        if !p.addPathSend.isEmpty || !p.addPathReceive.isEmpty { names.append("add-path") }
        if p.peerGracefulRestart != nil { names.append("graceful-restart") }
        if p.extendedMessages { names.append("extended-message") }
        if !p.extendedNextHop.isEmpty { names.append("extended-next-hop") }
        return names
    }
}

extension SessionAttempt {
    var openConfirmParameters: SessionParameters? {
        switch fsm.state {
        case .openConfirm(let p), .established(let p): p
        default: nil
        }
    }
}
