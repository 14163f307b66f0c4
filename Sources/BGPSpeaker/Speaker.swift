public import IP
public import Logging
public import Sockets

/// Herald's BGP speaker: peers, the Loc-RIB of routes Herald originates, and per peer an
/// Adj-RIB-Out and Adj-RIB-In, with sessions driven by `SessionFSM` on the shared `EventLoop`.
///
/// ```swift
/// let speaker = Speaker(settings: SpeakerSettings(asn: 64512, routerID: id, listenAddresses: [.v4(.any)]), loop: loop)
/// try await speaker.start()
/// try await speaker.addPeer(PeerSettings(name: "tor1", address: tor, asn: 65000))
/// await speaker.apply(announce: [Route(prefix: p, path: Path(communities: [c]))], withdraw: [])
/// for await event in await speaker.events() { … }
/// await speaker.shutdown(mode: .withdraw(message: "herald stopping"))
/// ```
///
/// A front door: all protocol state lives on the event loop thread (sessions, timers and
/// sockets are loop-confined, in `SpeakerCore`), and each call hops there with `loop.submit`.
public final class Speaker: Sendable {
    public let loop: EventLoop
    let core: SpeakerCore

    public init(settings: SpeakerSettings, loop: EventLoop, logger: Logger = Logger(label: "herald.bgp")) {
        self.loop = loop
        self.core = SpeakerCore(loop: loop, settings: settings, logger: logger)
    }

    deinit {
        // The core is loop-confined: let its last reference go on the loop thread, so that it is
        // never destroyed while the loop is still running one of its callbacks.
        let core = self.core
        loop.execute { _ = core }
    }

    /// Binds the listeners (a port that cannot be bound is logged once; outgoing sessions still
    /// run) and starts the peers added so far; the restart time of `SpeakerSettings.restarting`
    /// counts from here.
    public func start() async throws {
        let core = self.core
        try await loop.submit {
            guard !core.started else { return }
            core.started = true
            core.startListening()
            // The peers added so far connect now, with the whole table in hand.
            for peer in core.peers.values.sorted(by: { $0.settings.name < $1.settings.name }) where !core.stopped { peer.start() }
            core.scheduleRestartEnd()
            core.startMD5Diagnosis()
        }
    }

    /// Applies changed speaker settings at run time: a new ASN or router ID resets every session
    /// (Cease/Other Configuration Change); a new listener address or port rebinds; the rest
    /// applies to sessions established from now on.
    @discardableResult
    public func updateSettings(_ settings: SpeakerSettings) async throws -> SettingsChange {
        let core = self.core
        return try await loop.submit { core.updateSettings(settings) }
    }

    // MARK: - Peers

    /// Applies a peer change (`SpeakerConfiguration` decides what it does to the session) and
    /// says what it did; throws without changing anything when the change cannot be applied.
    @discardableResult
    public func apply(_ change: SpeakerConfiguration.PeerChange) async throws -> SpeakerConfiguration.PeerEffect {
        let core = self.core
        return try await loop.submit { try core.apply(change) }
    }

    public func addPeer(_ peer: PeerSettings) async throws { try await apply(.add(peer)) }

    /// Applies a changed configuration: a change of anything sent in OPEN or of the TCP
    /// settings resets the session; labels re-export; `enabled: false` shuts it down (Cease).
    public func updatePeer(_ peer: PeerSettings) async throws { try await apply(.update(peer)) }

    /// Cease/Peer De-configured (6/3) and forget the peer.
    public func removePeer(named name: String) async throws { try await apply(.remove(name: name)) }

    /// The configuration the speaker runs: its settings and peers.
    public func configuration() async -> SpeakerConfiguration? {
        let core = self.core
        return try? await loop.submit { core.configuration }
    }

    public enum SoftResetDirection: Sendable {
        /// Ask the peer to send its routes again (ROUTE-REFRESH, RFC 2918).
        case inbound
        /// Send our routes again.
        case outbound
        case both
    }

    public func softReset(peer name: String, _ direction: SoftResetDirection = .both) async throws {
        let core = self.core
        try await loop.submit {
            let peer = try core.peer(name)
            if direction != .outbound { peer.requestRefresh() }
            if direction != .inbound { peer.resendAll(family: nil) }
        }
    }

    /// Closes the session with Cease/Administrative Reset-like shutdown and starts again.
    public func hardReset(peer name: String, message: String? = nil) async throws {
        let core = self.core
        try await loop.submit { try core.peer(name).hardReset(communication: message ?? "hard reset by operator") }
    }

    // MARK: - Routes

    /// Announces (or replaces) routes and withdraws prefixes in one step; each established peer
    /// gets the difference within milliseconds.
    public func apply(announce: [Route], withdraw: [IPPrefix]) async {
        let core = self.core
        _ = try? await loop.submit { core.apply(announce: announce, withdraw: withdraw) }
    }

    /// Says that about this many new prefixes of each family are coming (a bulk load handed over
    /// in slices), so the Loc-RIB grows once instead of doubling and rehashing its way up.
    public func reserveCapacity(additionalIPv4: Int, additionalIPv6: Int) async {
        let core = self.core
        _ = try? await loop.submit {
            core.locRIB.reserveCapacity(ipv4: core.locRIB.count(of: .ipv4) + additionalIPv4,
                                        ipv6: core.locRIB.count(of: .ipv6) + additionalIPv6)
        }
    }

    public func announce(_ route: Route) async { await apply(announce: [route], withdraw: []) }
    public func announce(_ routes: [Route]) async { await apply(announce: routes, withdraw: []) }
    public func withdraw(_ prefix: IPPrefix) async { await apply(announce: [], withdraw: [prefix]) }
    public func withdraw(_ prefixes: [IPPrefix]) async { await apply(announce: [], withdraw: prefixes) }

    /// Makes every path this speaker exports worse (`penalty`), or puts them back (nil): each
    /// established peer is sent the whole table again with the new attributes.
    public func setPathPenalty(_ penalty: PathPenalty?) async {
        let core = self.core
        _ = try? await loop.submit {
            guard core.pathPenalty != penalty else { return }
            core.pathPenalty = penalty
            for peer in core.peers.values { peer.resendAll(family: nil) }
        }
    }

    /// The penalty in force, if any.
    public func pathPenalty() async -> PathPenalty? {
        let core = self.core
        return try? await loop.submit { core.pathPenalty }
    }

    // MARK: - State

    public func snapshot() async -> SpeakerSnapshot {
        let core = self.core
        return (try? await loop.submit { core.snapshot() })
            ?? SpeakerSnapshot(asn: 0, routerID: .any, listening: [], listenError: "event loop stopped", locRIBPrefixes: 0, peers: [])
    }

    public func peer(named name: String) async -> PeerSnapshot? {
        let core = self.core
        return try? await loop.submit { core.peers[name]?.snapshot() }
    }

    /// The peer's Adj-RIB-Out, what it has been sent, as a view to page through off the loop.
    public func advertisedView(peer name: String) async throws -> RIBView {
        let core = self.core
        return try await loop.submit { try core.peer(name).advertisedView() }
    }

    /// The peer's Adj-RIB-In, what it announced to us (display only), as a view.
    public func receivedView(peer name: String) async throws -> RIBView {
        let core = self.core
        return try await loop.submit { try core.peer(name).receivedView() }
    }

    /// Every advertised route in order, built off the loop (small tables and tests; the API pages).
    public func advertisedRoutes(peer name: String) async throws -> [RIBEntry] {
        try await advertisedView(peer: name).allEntries()
    }

    /// Every received route in order, built off the loop.
    public func receivedRoutes(peer name: String) async throws -> [RIBEntry] {
        try await receivedView(peer: name).allEntries()
    }

    /// The bound listening sockets ("0.0.0.0:179").
    public func listeningAddresses() async -> [String] {
        let core = self.core
        return (try? await loop.submit { core.listeners.map(\.localAddress.description) }) ?? []
    }

    /// A new stream of state and route changes, from now on. Slow consumers lose the oldest
    /// events beyond 10,000 (a snapshot gives the current state).
    public func events() async -> AsyncStream<SpeakerEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: SpeakerEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        let core = self.core
        let loop = self.loop
        let id: Int? = try? await loop.submit {
            guard !core.stopped else { return nil }
            let id = core.nextSubscriber
            core.nextSubscriber += 1
            core.subscribers[id] = continuation
            return id
        }
        if let id {
            continuation.onTermination = { _ in loop.execute { core.subscribers[id] = nil } }
        } else {
            continuation.finish()
        }
        return stream
    }

    /// Stops every session: `.withdraw` sends Cease/Administrative Shutdown with the message
    /// (RFC 8203) so peers drop our routes; `.gracefulRestart` just closes the connections so
    /// graceful-restart helpers keep them until the next process sends End-of-RIB.
    /// Returns once the BFD AdminDown packets are out (up to two transmit intervals, ≤ 2 s), so
    /// that a process may shut its loop down next.
    public func shutdown(mode: ShutdownMode) async {
        let core = self.core
        let adminDown = (try? await loop.submit { core.shutdown(mode) }) ?? .zero
        if adminDown > .zero { try? await Task.sleep(for: adminDown + .milliseconds(20)) }
    }
}
