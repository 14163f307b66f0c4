import BFD
import BGP
import Glibc
internal import IP
import Logging
import Sockets

/// The speaker's state on the event loop: peers, Loc-RIB, listeners, event subscribers.
/// Loop-confined; `Speaker` (the actor) reaches it with `loop.submit` / `loop.execute`.
final class SpeakerCore: @unchecked Sendable {
    let loop: EventLoop
    /// Settings and peers as configured: every change goes through it (`apply`).
    var configuration: SpeakerConfiguration
    var settings: SpeakerSettings { configuration.settings }
    let logger: Logger
    var peers: [String: PeerDriver] = [:]
    /// The Loc-RIB: each prefix's path set, interned in `pathSets` (most routes share one).
    var locRIB = PrefixMap<UInt32>()
    var pathSets = InternTable<[Path]>()
    /// Counts the `apply` calls that changed the Loc-RIB (see `PeerDriver.nextPending`).
    var locRIBVersion = 0
    var listeners: [Listener] = []
    var listenError: String?
    /// The kernel's TCP MD5 drop counters when last read, and the timer that reads them (`MD5Diagnosis`).
    var md5Baseline: KernelMD5Counters?
    var md5Timer: TimerHandle?
    var unknownSources: [IPAddress: Int64] = [:]
    var subscribers: [Int: AsyncStream<SpeakerEvent>.Continuation] = [:]
    var nextSubscriber = 0
    var stopped = false
    /// `start()` ran: the listeners are bound (or their failure reported).
    var started = false
    /// Makes every exported path worse while set (see `Speaker.setPathPenalty`).
    var pathPenalty: PathPenalty?
    /// `settings.restarting` until the restart time we advertise has passed since `start()`;
    /// each peer's own restart may end sooner (see `PeerDriver.restarting`).
    var restartUnderWay: Bool
    let bfd: BFDService

    init(loop: EventLoop, settings: SpeakerSettings, logger: Logger) {
        self.loop = loop
        // An empty configuration cannot be refused.
        self.configuration = try! SpeakerConfiguration(settings: settings)
        self.logger = logger
        restartUnderWay = settings.restarting
        bfd = BFDService(loop: loop, port: settings.bfdPort, logger: logger)
        bfd.onTransition = { [unowned self] link, transition in self.bfdTransition(link, transition) }
    }

    // MARK: - BFD

    /// Starts, updates or stops the peer's BFD session to match its settings. BFD runs while the
    /// peer is enabled, whatever the BGP state: it may come up before BGP does.
    func syncBFD(_ peer: PeerSettings) {
        if let settings = peer.bfd, peer.enabled, !stopped {
            bfd.update(name: peer.name, remote: peer.address, local: peer.localAddress, settings: settings)
        } else {
            bfd.remove(peer.name)
        }
    }

    /// RFC 5882 §4.3: BFD Down tears the BGP session down at once — but only a session that has
    /// been Up (§3.2: a BFD session that never came up says nothing about the path), and not
    /// when the peer signalled AdminDown (§3.2: that is not a path failure).
    func bfdTransition(_ link: BFDLink, _ transition: BFDTransition) {
        emit(.bfdStateChanged(peer: link.name, from: transition.from.description, to: transition.to.description,
                              diagnostic: transition.diagnostic.description))
        guard transition.from == .up, transition.to == .down, link.session.remoteState != .adminDown,
              let peer = peers[link.name] else { return }
        let milliseconds = (transition.detectionTime + 500) / 1_000
        let reason = transition.diagnostic == .controlDetectionTimeExpired
            ? "BFD down (detection time \(milliseconds) ms)"
            : "BFD down (\(transition.diagnostic); detection time \(milliseconds) ms)"
        peer.bfdDown(reason: reason)
    }

    /// RFC 4724 §4.2: a helper keeps our stale routes for the restart time we advertise and no
    /// longer; past it there is nothing left of the restart for the flags to describe.
    func scheduleRestartEnd() {
        guard restartUnderWay else { return }
        loop.scheduleTimer(after: .seconds(Int(settings.gracefulRestartTime))) { [weak self] in
            guard let self else { return }
            restartUnderWay = false
            for peer in peers.values { peer.endRestart() }
        }
    }

    func emit(_ event: SpeakerEvent) {
        for continuation in subscribers.values { continuation.yield(event) }
    }

    // MARK: - Listening

    /// The addresses to listen on: the configured ones, where `::` also means `0.0.0.0`, as in
    /// BIRD and FRR (an operator who writes `[::]:179` expects IPv4 peers to connect too). Each
    /// family gets its own socket (IPV6_V6ONLY stays on): an IPv4 peer then arrives with its IPv4
    /// address, and MD5 keys and GTSM minimum TTLs are set per family as for explicit addresses.
    static func listenAddresses(_ configured: [IPAddress]) -> [IPAddress] {
        var addresses = configured
        if configured.contains(.v6(.any)), !configured.contains(where: { $0.family == .ipv4 && $0.isUnspecified }) {
            addresses.append(.v4(.any))
        }
        return addresses
    }

    func startListening() {
        var port = settings.listenPort
        for address in Self.listenAddresses(settings.listenAddresses) {
            do {
                let listener = try Listener(bindingTo: SocketAddress(address, port: port), on: loop) { [weak self] connection in
                    self?.accept(connection)
                }
                // Port 0 (tests): the kernel's choice for the first socket, then the same for the
                // other family, so one port serves both.
                if port == 0 { port = listener.localAddress.port }
                listeners.append(listener)
                logger.info("BGP listening", metadata: ["address": "\(listener.localAddress)"])
            } catch {
                let text: String
                if error.errno == EACCES || error.errno == EPERM {
                    text = "cannot listen on \(SocketAddress(address, port: settings.listenPort)): port \(settings.listenPort) needs root or CAP_NET_BIND_SERVICE; running with outgoing sessions only"
                } else {
                    text = "cannot listen on \(SocketAddress(address, port: settings.listenPort)): \(error); running with outgoing sessions only"
                }
                listenError = text
                logger.warning("\(text)")
            }
        }
        for peer in peers.values { installListenerKey(peer) }
        updateListenerMinimumTTL()
    }

    /// RFC 5082 §3 from the first packet: when every enabled peer of a listener's family uses
    /// GTSM, the listener drops SYNs below the loosest of their minimum TTLs, so a sender too
    /// many hops away never gets a connection, let alone a byte read. Each accepted socket then
    /// gets its own peer's minimum (`PeerDriver.accept`) before anything is read. With one
    /// enabled peer of the family without GTSM the listener must take every TTL (0); a GTSM
    /// peer then relies on the accepted socket's minimum, as BIRD and FRR do.
    func updateListenerMinimumTTL() {
        for listener in listeners {
            let family = listener.localAddress.address.family
            let minimums = peers.values.filter { $0.settings.enabled && $0.settings.address.family == family }
                .map { $0.settings.ttlSecurity.map { 256 - $0 } ?? 0 }
            let minimum = minimums.min() ?? 0
            do {
                try listener.setMinimumTTL(minimum)
            } catch {
                logger.warning("GTSM minimum TTL could not be set on the listener; each accepted session still gets its own",
                               metadata: ["listener": "\(listener.localAddress)", "error": "\(error)"])
            }
        }
    }

    /// RFC 2385: the peer's key on every listener of its family. Fail closed: if it cannot be
    /// installed, inbound connections from the peer are refused.
    func installListenerKey(_ peer: PeerDriver, remove: Bool = false) {
        peer.listenerKeyError = nil
        for listener in listeners where listener.localAddress.address.family == peer.settings.address.family {
            let key = remove ? nil : peer.settings.password.map { Array($0.utf8) }
            guard key != nil || remove else { continue }
            do {
                try listener.setMD5Key(key, for: peer.settings.address)
            } catch {
                if !remove {
                    let text = "TCP MD5 key could not be installed on the listener (\(error)); inbound sessions are refused"
                    peer.listenerKeyError = text
                    peer.hint = text
                    logger.error("\(text)", metadata: ["peer": "\(peer.settings.name)"])
                }
            }
        }
    }

    func accept(_ connection: Connection) -> (any ConnectionDelegate)? {
        guard !stopped, let remote = connection.remoteAddress?.address else { return nil }
        let neighbour = SpeakerConfiguration.neighbour(remote)
        guard let peer = peers.values.first(where: { SpeakerConfiguration.neighbour($0.settings.address) == neighbour }) else {
            let now = wallClockMillis()
            if now - (unknownSources[remote] ?? -60_000) >= 60_000 {
                unknownSources[remote] = now
                logger.warning("closing BGP connection from an unknown address (logged once a minute per source)", metadata: ["source": "\(remote)"])
            }
            if unknownSources.count > 10_000 { unknownSources = unknownSources.filter { now - $0.value < 60_000 } }
            return nil
        }
        return peer.accept(connection)
    }

    // MARK: - Peers

    /// Applies a peer change: `configuration` decides whether it can be applied and what it
    /// does to the session (the same decision HeraldCore's committer made before it committed).
    @discardableResult
    func apply(_ change: SpeakerConfiguration.PeerChange) throws(SpeakerError) -> SpeakerConfiguration.PeerEffect {
        let old = configuration.peers[change.name]
        let effect = try configuration.apply(change)
        switch change {
        case .add(let settings):
            let peer = PeerDriver(core: self, settings: settings)
            peers[settings.name] = peer
            installListenerKey(peer)
            peer.reportedState = settings.enabled ? .idle : .disabled
            // Before `start()` the table may still be arriving (a process loads every peer, then
            // every route): a session up now would send part of it and End-of-RIB, and a
            // graceful-restart helper would drop the stale rest (RFC 4724 §4.2). `start()`
            // starts the peers.
            if started && !stopped { peer.start() }
            syncBFD(settings)
        case .update(let new):
            guard let peer = peers[new.name], let old else { break }
            if old.password != nil || old.address != new.address { installListenerKey(peer, remove: true) }
            peer.settings = new
            installListenerKey(peer)
            switch effect {
            case .disabled:
                peer.stop(communication: "peer disabled")
                peer.reportState()
            case .enabled:
                if started { peer.start() }
            case .reset:
                peer.hardReset(communication: "configuration changed", cease: .otherConfigurationChange)
            case .inPlace:
                if !new.enabled { peer.reportState() }
                if old.labels != new.labels { peer.reevaluateAll() }
                if old.maxPrefixes != new.maxPrefixes, let session = peer.session { peer.checkMaxPrefixes(session) }
            case .added, .removed:
                break
            }
            if old.bfd != new.bfd || old.enabled != new.enabled || old.address != new.address || old.localAddress != new.localAddress {
                syncBFD(new)
            }
        case .remove(let name):
            guard let peer = peers.removeValue(forKey: name) else { break }
            // RFC 4486 §4: the peer is no longer configured: Peer De-configured (6/3), which
            // carries no shutdown communication (RFC 9003 §2 has one for 6/2 and 6/4 only).
            peer.stop(communication: nil, cease: .peerDeconfigured)
            bfd.remove(name)
            installListenerKey(peer, remove: true)
            if let timer = peer.staleTimer { loop.cancelTimer(timer) }
        }
        updateListenerMinimumTTL()
        return effect
    }

    /// Applies new speaker settings. A new ASN or router ID is in every OPEN, so every session
    /// is reset at once (Cease/Other Configuration Change, RFC 4486); a new listener address or
    /// port rebinds the listeners; timers and graceful restart apply to sessions established
    /// from now on.
    func updateSettings(_ new: SpeakerSettings) -> SettingsChange {
        let effect = configuration.apply(settings: new)
        var change = SettingsChange()
        if effect.rebindsListeners, !stopped {
            for peer in peers.values { installListenerKey(peer, remove: true) }
            for listener in listeners { listener.close() }
            listeners = []
            listenError = nil
            startListening()
            change.listenersRebound = true
        }
        for peer in peers.values.sorted(by: { $0.settings.name < $1.settings.name }) {
            peer.speaker = settings
            guard !effect.identityChange.isEmpty, peer.settings.enabled, !stopped else { continue }
            if peer.session != nil { change.sessionsReset.append(peer.settings.name) }
            peer.hardReset(communication: "speaker " + effect.identityChange.joined(separator: ", "), cease: .otherConfigurationChange)
        }
        return change
    }

    func peer(_ name: String) throws(SpeakerError) -> PeerDriver {
        guard let peer = peers[name] else { throw .unknownPeer(name) }
        return peer
    }

    // MARK: - Loc-RIB

    func apply(announce: [Route], withdraw: [IPPrefix]) {
        var changed: [IPPrefix] = []
        var announced: [IPPrefix] = [], withdrawn: [IPPrefix] = []
        for prefix in withdraw {
            guard let old = locRIB.removeValue(forKey: prefix) else { continue }
            pathSets.release(old)
            changed.append(prefix)
            withdrawn.append(prefix)
        }
        for var route in announce {
            if route.paths.isEmpty {
                if let old = locRIB.removeValue(forKey: route.prefix) {
                    pathSets.release(old)
                    changed.append(route.prefix)
                    withdrawn.append(route.prefix)
                }
                continue
            }
            // Deterministic order: the first path is the one a peer without ADD-PATH gets.
            if route.paths.count > 1 { route.paths.sort { $0.nextHop < $1.nextHop } }
            let id = pathSets.retain(route.paths)
            let old = locRIB.updateValue(id, forKey: route.prefix)
            if let old { pathSets.release(old) }
            if old != id {
                changed.append(route.prefix)
                announced.append(route.prefix)
            }
        }
        guard !changed.isEmpty else { return }
        locRIBVersion += 1
        for peer in peers.values { peer.markDirty(changed) }
        emit(.routesChanged(announced: announced, withdrawn: withdrawn))
    }

    /// The Loc-RIB paths of `prefix`, if it is in the Loc-RIB.
    func paths(_ prefix: IPPrefix) -> [Path]? {
        locRIB[prefix].map { pathSets[$0] }
    }

    // MARK: - Snapshot and shutdown

    func snapshot() -> SpeakerSnapshot {
        SpeakerSnapshot(asn: settings.asn, routerID: settings.routerID, listening: listeners.map(\.localAddress.description),
                        listenError: listenError, locRIBPrefixes: locRIB.count,
                        peers: peers.values.map { $0.snapshot() }.sorted { $0.name < $1.name })
    }

    /// Stops every session as `mode` says; returns how long the BFD AdminDown packets still
    /// need the loop (see `BFDService.remove`).
    func shutdown(_ mode: ShutdownMode) -> Duration {
        guard !stopped else { return .zero }
        stopped = true
        if let md5Timer { loop.cancelTimer(md5Timer) }
        md5Timer = nil
        for listener in listeners { listener.close() }
        listeners = []
        for peer in peers.values {
            switch mode {
            case .withdraw(let message): peer.stop(communication: message)
            case .gracefulRestart: peer.drop()
            }
        }
        // BFD after BGP: for a graceful restart the peer must see the TCP session end first, so
        // that it is a graceful-restart helper (RFC 4724 §4.2) when BFD goes down, which a
        // router set to treat a BFD down during graceful restart as part of it (RFC 5882
        // §4.3.1, our C bit clear: BFD shares fate with this control plane; BIRD's `bfd
        // graceful`, FRR's `bfd check-control-plane-failure`) then does.
        let adminDown = bfd.shutdown()
        for continuation in subscribers.values { continuation.finish() }
        subscribers = [:]
        return adminDown
    }
}

/// What `Speaker.updateSettings` did.
public struct SettingsChange: Sendable, Hashable {
    /// Peers whose Established session was reset (ASN or router ID changed).
    public var sessionsReset: [String] = []
    /// The listeners were closed and bound again (address or port changed).
    public var listenersRebound = false

    public init() {}
}
