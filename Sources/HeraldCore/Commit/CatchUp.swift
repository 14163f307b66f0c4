internal import BGPSpeaker
internal import IP
internal import Store

/// Replays other replicas' committed batches into this replica's state (cluster mode): what the
/// replication log says they touched is re-derived from the database by the same rules, so the
/// route table, the speaker configuration, the nodes and the health-down set come out as theirs.
/// No history is written (the replica that made the change wrote it).
enum CatchUp {
    /// Applies `entries` (in revision order) through `context`, whose `recordsHistory` is off.
    /// `resync`: the log no longer holds every row after this replica's revision (it was pruned
    /// while the replica was away), so everything is compared with the database.
    static func apply(_ entries: [ReplicationLog.Entry], resync: Bool, to context: CommitContext) throws {
        var effects = ReplicationLog.Effects()
        for entry in entries { effects.formUnion(entry.effects) }
        if resync {
            effects.allRoutes = true
            effects.speaker = true
            effects.nodes = true
            effects.health = true
            effects.peers = Set(context.speaker.peers.keys).union(try Peers.list(context.db).map(\.name))
        }
        let reason = if resync {
            "replicated: resynchronised with the database"
        } else if let first = entries.first, let last = entries.last, first.revision != last.revision {
            "replicated revisions \(first.revision)–\(last.revision)"
        } else {
            "replicated from \(entries.first?.replica ?? "?") (revision \(entries.first?.revision ?? 0))"
        }
        let db = context.db
        if effects.health { context.replaceDown(try StoredNodeHealth.down(db)) }
        if effects.nodes { try context.nodesChanged() }
        if effects.speaker, let row = try SpeakerSettings.load(db) {
            context.apply(settings: SpeakerMapping.settings(row, restarting: false, routerID: context.localRouterID,
                                                            listen: context.localListen))
        }
        for name in effects.peers.sorted() {
            let stored = try Peers.get(db, name: name).map { SpeakerMapping.peerSettings(name: name, $0.config) }
            // A change the speaker's rules refuse was refused where it was made; one that got into
            // the database before the rules refused it (an older Herald) is left out here too.
            switch (stored, context.speaker.peers[name]) {
            case (let settings?, nil): _ = try? context.apply(.add(settings))
            case (let settings?, let current?) where settings != current: _ = try? context.apply(.update(settings))
            case (nil, _?): _ = try? context.apply(.remove(name: name))
            default: break
            }
        }
        if effects.allRoutes || effects.health || effects.nodes {
            try context.rederiveAll(reason: reason)
        } else if !effects.prefixes.isEmpty {
            try context.rederive(effects.prefixes, reason: reason)
        }
        // Another replica may have freed addresses below the allocator's hints.
        context.hints.forget()
    }
}
