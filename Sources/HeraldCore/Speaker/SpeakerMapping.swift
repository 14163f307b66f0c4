public import BGPSpeaker
internal import BGP
public import IP
internal import Store

/// From Herald's domain types to the speaker's own input types: pure, so BGPSpeaker never sees
/// SQLite or JSON, and tested on its own.
public enum SpeakerMapping {
    /// The speaker's settings from the stored speaker row. `restarting` sets the RFC 4724
    /// Restart State bit: Herald ran before on this database, so peers that kept our routes
    /// should wait for our End-of-RIB.
    /// `routerID`, `listen`: this replica's own (cluster mode, where the stored ones are not used).
    public static func settings(_ s: SpeakerSettings, restarting: Bool, routerID: IPv4Address? = nil,
                                listen: IPEndpoint? = nil) -> BGPSpeaker.SpeakerSettings {
        let listen = listen ?? s.listen
        return BGPSpeaker.SpeakerSettings(
            asn: s.asn, routerID: routerID ?? s.routerID, listenAddresses: [listen.address], listenPort: listen.port,
            holdTime: UInt16(clamping: s.holdTime), keepaliveTime: s.keepaliveTime, connectRetryTime: s.connectRetryTime,
            gracefulRestartTime: s.gracefulRestartEnabled ? UInt16(clamping: s.gracefulRestartTime) : 0, restarting: restarting)
    }

    public static func peerSettings(name: String, _ c: PeerConfig) -> PeerSettings {
        PeerSettings(
            name: name, address: c.address, asn: c.asn, port: c.port, localAddress: c.localAddress,
            otherFamilyNextHop: c.otherFamilyNextHop, password: c.password,
            ebgpMultihop: c.ebgpMultihop, ttlSecurity: c.ttlSecurity, holdTime: c.holdTime.map { UInt16(clamping: $0) },
            keepaliveTime: c.keepaliveTime, connectRetryTime: c.connectRetryTime, passive: c.passive,
            families: Set(c.families.map { $0 == .ipv4Unicast ? IPFamily.ipv4 : .ipv6 }),
            addPathSend: c.addPathSend, addPathReceive: true, gracefulRestart: c.gracefulRestart,
            maxPrefixes: c.maxPrefixes.map { MaxPrefixLimit($0) }, labels: c.labels, enabled: c.enabled,
            bfd: c.bfd.enabled ? PeerBFDSettings(minTx: c.bfd.minTx, minRx: c.bfd.minRx, multiplier: c.bfd.multiplier) : nil)
    }

    /// The speaker configuration the database describes: the speaker row and every peer the
    /// speaker can run. Before the first `herald serve` there is no speaker row; the peers are
    /// then checked against a placeholder identity (only the peers matter to what the speaker
    /// accepts). A peer stored before the speaker's rules refused it (an IPv4-mapped address
    /// beside the same IPv4 address) is left out rather than stopping the start; its API view
    /// then shows no session.
    static func configuration(_ db: Database, routerID: IPv4Address? = nil, listen: IPEndpoint? = nil) throws -> SpeakerConfiguration {
        let stored = try SpeakerSettings.load(db).map { settings($0, restarting: false, routerID: routerID, listen: listen) }
            ?? BGPSpeaker.SpeakerSettings(asn: ServeConfiguration.defaultASN, routerID: IPv4Address(0, 0, 0, 1))
        // An empty configuration cannot be refused.
        var configuration = try! SpeakerConfiguration(settings: stored)
        for peer in try Peers.list(db) { _ = try? configuration.apply(.add(peerSettings(name: peer.name, peer.config))) }
        return configuration
    }

    public static func route(_ desired: DesiredRoute) -> Route {
        let a = desired.attributes
        let communities = (a.communities ?? []).compactMap(Community.init)
        let large = (a.largeCommunities ?? []).compactMap(LargeCommunity.init)
        return Route(prefix: desired.prefix, paths: desired.paths.map { path in
            let nextHop: Path.NextHop = switch path.nextHop {
            case .session: .session
            case .address(let address): .address(address)
            }
            return Path(nextHop: nextHop, communities: communities, largeCommunities: large, med: a.med, localPreference: a.localPref,
                        asPathPrepend: a.asPathPrepend ?? 0, peerSelector: a.peerSelector ?? [:])
        })
    }
}
