public import BGPSpeaker
internal import BGP
internal import IP
public import Logging
public import Store

/// Connects the database side of Herald to the BGP speaker: configuration and route changes go
/// in (in commit order), session events come out into `peer_events` and `/v1/events`.
/// The mapping functions are pure and tested on their own.
public final class SpeakerBridge: Sendable {
    public let speaker: Speaker
    let store: Store
    let events: EventBus?
    let logger: Logger

    public init(speaker: Speaker, store: Store, events: EventBus?, logger: Logger) {
        self.speaker = speaker
        self.store = store
        self.events = events
        self.logger = logger
    }

    // MARK: - Mapping (pure)

    /// The speaker's settings from the stored speaker row. `restarting` sets the RFC 4724
    /// Restart State bit: Herald ran before on this database, so peers that kept our routes
    /// should wait for our End-of-RIB.
    public static func settings(_ s: SpeakerSettings, restarting: Bool) -> BGPSpeaker.SpeakerSettings {
        BGPSpeaker.SpeakerSettings(
            asn: s.asn, routerID: s.routerID, listenAddresses: [s.listen.address], listenPort: s.listen.port,
            holdTime: UInt16(clamping: s.holdTime), connectRetryTime: s.connectRetryTime,
            gracefulRestartTime: s.gracefulRestartEnabled ? UInt16(clamping: s.gracefulRestartTime) : 0, restarting: restarting)
    }

    public static func peerSettings(name: String, _ c: PeerConfig) -> PeerSettings {
        PeerSettings(
            name: name, address: c.address, asn: c.asn, port: c.port, localAddress: c.localAddress, password: c.password,
            ebgpMultihop: c.ebgpMultihop, ttlSecurity: c.ttlSecurity, holdTime: c.holdTime.map { UInt16(clamping: $0) },
            connectRetryTime: c.connectRetryTime, passive: c.passive,
            families: Set(c.families.map { $0 == .ipv4Unicast ? IPFamily.ipv4 : .ipv6 }),
            addPathSend: c.addPathSend, addPathReceive: true, gracefulRestart: c.gracefulRestart,
            maxPrefixes: c.maxPrefixes.map { MaxPrefixLimit($0) }, labels: c.labels, enabled: c.enabled,
            bfd: c.bfd.enabled ? PeerBFDSettings(minTx: c.bfd.minTx, minRx: c.bfd.minRx, multiplier: c.bfd.multiplier) : nil)
    }

    public static func route(_ desired: DesiredRoute) -> Route {
        let a = desired.attributes
        let communities = (a.communities ?? []).compactMap(community)
        let large = (a.largeCommunities ?? []).compactMap { text -> LargeCommunity? in
            let parts = text.split(separator: ":").compactMap { UInt32($0) }
            return parts.count == 3 ? LargeCommunity(parts[0], parts[1], parts[2]) : nil
        }
        return Route(prefix: desired.prefix, paths: desired.paths.map { path in
            let nextHop: Path.NextHop = switch path.nextHop {
            case .session: .session
            case .address(let address): .address(address)
            }
            return Path(nextHop: nextHop, communities: communities, largeCommunities: large, med: a.med, localPreference: a.localPref,
                        asPathPrepend: a.asPathPrepend ?? 0, peerSelector: a.peerSelector ?? [:])
        })
    }

    /// "65000:100" or a well-known name (RFC 1997, RFC 7999, RFC 8326).
    static func community(_ text: String) -> Community? {
        switch text {
        case "no-export": return .noExport
        case "no-advertise": return .noAdvertise
        case "no-export-subconfed": return .noExportSubconfed
        case "blackhole": return .blackhole
        case "graceful-shutdown": return .gracefulShutdown
        default:
            let parts = text.split(separator: ":")
            guard parts.count == 2, let asn = UInt16(parts[0]), let value = UInt16(parts[1]) else { return nil }
            return Community(asn: asn, value: value)
        }
    }

    // MARK: - Running

    /// Adds every stored peer and starts listening.
    public func start() async throws {
        let peers = try store.read { db in try Peers.list(db) }
        for peer in peers {
            do { try await speaker.addPeer(Self.peerSettings(name: peer.name, peer.config)) } catch {
                logger.error("cannot add peer", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
            }
        }
        try await speaker.start()
    }

    /// Hands every route change to the speaker, in commit order, until the stream ends.
    public func follow(_ diffs: AsyncStream<RouteDiff>) async {
        for await diff in diffs where !diff.isEmpty {
            // In slices: each `apply` runs on the event loop, which also sends keepalives and
            // serves HTTP; a bulk load of a million routes handed over at once would hold it for
            // seconds. Between slices the loop runs its timers and sockets.
            let announce = diff.announced + diff.updated, withdraw = diff.withdrawn.map(\.prefix)
            // Routes sharing a shape share their converted paths too (the diff keeps the shapes
            // alive, so their identities stay unique while it is handed over).
            var converted: [ObjectIdentifier: [Path]] = [:]
            func route(_ desired: DesiredRoute) -> Route {
                let key = ObjectIdentifier(desired.body.shape)
                if let paths = converted[key] { return Route(prefix: desired.prefix, paths: paths) }
                let made = Self.route(desired)
                converted[key] = made.paths
                return made
            }
            if announce.count > Self.slice {
                let ipv6 = diff.announced.reduce(0) { $0 + ($1.prefix.family == .ipv6 ? 1 : 0) }
                await speaker.reserveCapacity(additionalIPv4: diff.announced.count - ipv6, additionalIPv6: ipv6)
            }
            for start in stride(from: 0, to: max(announce.count, withdraw.count), by: Self.slice) {
                let announcing = start < announce.count ? announce[start..<min(start + Self.slice, announce.count)].map(route) : []
                let withdrawing = start < withdraw.count ? Array(withdraw[start..<min(start + Self.slice, withdraw.count)]) : []
                await speaker.apply(announce: announcing, withdraw: withdrawing)
            }
            if announce.count + withdraw.count >= Reconciler.bulkChange { Store.returnFreeHeapToKernel() }
        }
    }

    /// Routes per hand-over to the speaker (see `follow`).
    static let slice = 5_000

    /// What the API changed about a peer, to pass on after the commit.
    public enum PeerChange: Sendable {
        case created(Peer)
        case updated(PeerUpdate)
        case deleted(String)
    }

    public func peerChanged(_ change: PeerChange) async {
        do {
            switch change {
            case .created(let peer): try await speaker.addPeer(Self.peerSettings(name: peer.name, peer.config))
            case .updated(let update): try await speaker.updatePeer(Self.peerSettings(name: update.after.name, update.after.config))
            case .deleted(let name): try await speaker.removePeer(named: name)
            }
        } catch {
            logger.error("speaker refused a peer change", metadata: ["error": "\(error)"])
        }
    }

    struct PeerStateEvent: Encodable {
        let peer: String
        let from: String
        let to: String
        let reason: String?
    }

    /// Records session events in `peer_events` (established, down with the reason and any
    /// NOTIFICATION, max-prefix) and publishes them on `/v1/events`, until the stream ends.
    public func recordEvents(_ stream: AsyncStream<SpeakerEvent>) async {
        for await event in stream {
            switch event {
            case let .peerStateChanged(peer, from, to, reason, notification):
                events?.publish(kind: "peer", payload: PeerStateEvent(peer: peer, from: from.rawValue, to: to.rawValue, reason: reason))
                let kind: PeerEvent.Kind
                if to == .established {
                    kind = .established
                } else if from == .established || (to == .idle && reason != nil) {
                    kind = .down
                } else {
                    continue  // Connect/Active/OpenSent steps are live state, not history
                }
                let recorded = notification.map {
                    RecordedNotification(code: $0.code, subcode: $0.subcode, text: $0.text ?? $0.name,
                                         direction: $0.direction == .sent ? .sent : .received)
                }
                let why = reason ?? (to == .established ? "session established" : "session closed")
                do {
                    try store.write { db in
                        try PeerEvents.append(db, peer: peer, kind: kind, from: from.rawValue, to: to.rawValue, reason: why,
                                              notification: recorded, now: Clock.nowMilliseconds())
                    }
                } catch {
                    logger.error("cannot record a session event", metadata: ["peer": "\(peer)", "error": "\(error)"])
                }
            case let .maxPrefixExceeded(peer, count, limit):
                try? store.write { db in
                    try PeerEvents.append(db, peer: peer, kind: .maxPrefix, reason: "peer sent \(count) prefixes, over the limit of \(limit)",
                                          now: Clock.nowMilliseconds())
                }
            case let .bfdStateChanged(peer, from, to, diagnostic):
                // BFD going up or down is history too ("BFD up", "BFD down: control detection time
                // expired"); Init is a step of the handshake, not an event.
                guard to != "init" else { continue }
                let reason = to == "up" ? "BFD up" : "BFD \(to == "admin_down" ? "admin down" : to): \(diagnostic)"
                try? store.write { db in
                    try PeerEvents.append(db, peer: peer, kind: .state, from: "bfd \(from)", to: "bfd \(to)", reason: reason,
                                          now: Clock.nowMilliseconds())
                }
            default:
                continue
            }
        }
    }
}
