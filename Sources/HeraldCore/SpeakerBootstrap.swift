public import IP
public import Store

/// What start-up did to the speaker row, for the log.
public struct SpeakerBootstrap: Sendable, Equatable {
    public let settings: SpeakerSettings
    /// True when the row was created by this start.
    public let created: Bool
    /// Human-readable changes made because a flag or variable asked for them.
    public let changes: [String]

    /// Creates the speaker row on first start, and applies explicitly given `--asn`,
    /// `--router-id` and `--bgp-listen` on every start. Settings not given keep their stored
    /// values, so a change made through the API survives restarts.
    /// Applies the explicitly given start-up options to stored settings; returns what changed,
    /// in words (each followed by `note`).
    static func applyOptions(_ configuration: ServeConfiguration, to settings: inout SpeakerSettings, note: String = "") -> [String] {
        var changes: [String] = []
        if let asn = configuration.asn, asn != settings.asn {
            changes.append("asn \(settings.asn) → \(asn)" + note)
            settings.asn = asn
        }
        // In cluster mode each replica's router ID is its own (not stored).
        if configuration.cluster == nil, let id = configuration.routerID, id != settings.routerID {
            changes.append("router_id \(settings.routerID) → \(id)" + note)
            settings.routerID = id
        }
        // So is its BGP listener: each replica listens on its own address.
        if configuration.cluster == nil, let listen = configuration.bgpListen, listen != settings.listen {
            changes.append("bgp_listen \(settings.listen) → \(listen)" + note)
            settings.listen = listen
        }
        return changes
    }

    /// `replica`: cluster mode — the change is written to the replication log too, so the other
    /// replicas follow it.
    public static func run(store: Store, configuration: ServeConfiguration, hostRouterID: @Sendable () -> IPv4Address?, now: Int64,
                           replica: String? = nil) throws -> SpeakerBootstrap {
        if store.isReadOnly {
            // Nothing can be saved: run with the stored settings, start-up options applied in
            // memory only (a read-only database without settings cannot serve).
            return try store.read { db in
                guard var settings = try SpeakerSettings.load(db) else {
                    throw DatabaseError.readOnly("\(store.path) is read-only and holds no speaker settings yet")
                }
                let changes = applyOptions(configuration, to: &settings, note: " (not saved: read-only database)")
                return SpeakerBootstrap(settings: settings, created: false, changes: changes)
            }
        }
        return try store.write { db in
            func logged() throws {
                if let replica { _ = try ReplicationLog.append(db, ReplicationLog.Effects(speaker: true), replica: replica, now: now) }
            }
            if var settings = try SpeakerSettings.load(db) {
                let changes = applyOptions(configuration, to: &settings)
                if !changes.isEmpty {
                    try settings.save(db, now: now)
                    try logged()
                }
                return SpeakerBootstrap(settings: settings, created: false, changes: changes)
            }
            // Graceful restart is off by default in cluster mode: when a replica dies the others
            // keep every route, and its stale paths (RFC 4724 keeps them for the restart time)
            // could outlive a next-hop change the live replicas already made (docs/cluster.md).
            let settings = SpeakerSettings(
                asn: configuration.asn ?? ServeConfiguration.defaultASN,
                routerID: configuration.routerID ?? hostRouterID() ?? IPv4Address(127, 0, 0, 1),
                // (A replica's --bgp-listen is its own: the cluster's default is all addresses.)
                listen: (configuration.cluster == nil ? configuration.bgpListen : nil) ?? ServeConfiguration.defaultBGPListen,
                holdTime: 90, keepaliveTime: 30, connectRetryTime: 120,
                gracefulRestartEnabled: configuration.cluster == nil, gracefulRestartTime: 120)
            try settings.save(db, now: now)
            try logged()
            return SpeakerBootstrap(settings: settings, created: true, changes: [])
        }
    }
}
