public import BGPSpeaker
public import IP
public import Store

/// What a committed change asks the followers (the BGP speaker, the node health checks) to do,
/// delivered in commit order and only for changes that committed.
public enum CommittedChange: Sendable {
    /// The state when the follower subscribed: every peer, every route, every node.
    case snapshot(SpeakerConfiguration, routes: RouteDiff, nodes: [Node])
    /// Routes to announce, update or withdraw.
    case routes(RouteDiff)
    /// A peer added, changed or removed. The committer ran it against its copy of the
    /// speaker's configuration before COMMIT, so the speaker applies it as it is.
    case peer(SpeakerConfiguration.PeerChange, reply: Reply<Void>?)
    /// New speaker settings.
    case speakerSettings(BGPSpeaker.SpeakerSettings, reply: Reply<SettingsChange>?)
    /// The nodes after a node was created, changed or deleted (their health checks follow).
    case nodes([Node], reply: Reply<Void>?)
}

/// What one change sees and records inside the batch transaction: the database, the route table
/// and the speaker configuration as they stand after the earlier changes of the batch, and what
/// it decides to publish. Made per change and dropped with it when the change is refused (its
/// savepoint rolls back), so nothing of a refused change leaks into the batch.
public final class CommitContext {
    public let db: Database
    public let now: Int64
    public let requestID: String?
    /// The allocator's hints, kept by the committer across changes.
    public let hints: LowestFreeHints
    var table: TableView
    /// Nodes whose health check has them down: left out of every derived route.
    public private(set) var down: Set<String>
    /// The speaker's configuration after this change's peer and settings changes.
    public private(set) var speaker: SpeakerConfiguration
    /// The nodes after this change, when it changed them.
    private(set) var nodes: [Node]?
    /// For the followers, in order.
    private(set) var published: [CommittedChange] = []
    /// For `/v1/events`, in order.
    private(set) var events: [HeraldEvent] = []
    /// What this change touched, for the other replicas (cluster mode).
    private(set) var effects = ReplicationLog.Effects()
    /// In cluster mode node health is stored (`node_health`) so every replica derives the same.
    let storesHealth: Bool
    /// Cluster mode: this replica's own router ID, which replaces the stored one.
    public let localRouterID: IPv4Address?
    /// Cluster mode: this replica's own BGP listener (`--bgp-listen`), which replaces the stored one.
    public let localListen: IPEndpoint?
    /// False when the change replays another replica's (`CatchUp`): the history was written by
    /// the replica that made it.
    var recordsHistory = true

    init(db: Database, now: Int64, requestID: String?, hints: LowestFreeHints, table: TableView, down: Set<String>,
         speaker: SpeakerConfiguration, storesHealth: Bool = false, localRouterID: IPv4Address? = nil, localListen: IPEndpoint? = nil) {
        self.storesHealth = storesHealth
        self.localRouterID = localRouterID
        self.localListen = localListen
        self.db = db
        self.now = now
        self.requestID = requestID
        self.hints = hints
        self.table = table
        self.down = down
        self.speaker = speaker
    }

    /// This change's route changes (nil: no longer announced).
    var routeChanges: [IPPrefix: DesiredRoute?] { table.job }

    // MARK: - Routes

    /// Derives the routes the change moved, records them in the history with `reason`, and
    /// queues the diff for the speaker and the events for `/v1/events`.
    @discardableResult
    func derive(_ derivation: some RouteDerivation, reason: String) throws -> RouteDiff {
        var derived = try derivation.derive(db, table: table, down: down)
        if recordsHistory { try RouteHistory.append(db, derived.diff, reason: reason, requestID: requestID, now: now) }
        derived.resolve()
        var touched = ReplicationLog.Effects()
        if derivation is WholeTable || derived.changes.count > ReplicationLog.Effects.prefixLimit {
            touched.allRoutes = true
        } else {
            touched.prefixes = Set(derived.changes.keys)
        }
        effects.formUnion(touched)
        if table.job.isEmpty {
            table.job = derived.changes  // (no copy: a bulk load's million entries are moved)
        } else {
            for (prefix, route) in derived.changes { table.job[prefix] = route }
        }
        if !derived.diff.isEmpty { published.append(.routes(derived.diff)) }
        events += HeraldEvent.routeChange(derived.diff, reason: reason, requestID: requestID, at: now)
        return derived.diff
    }

    /// Re-derives only `prefixes`.
    @discardableResult
    public func rederive(_ prefixes: Set<IPPrefix>, reason: String) throws -> RouteDiff {
        try derive(AffectedPrefixes(prefixes: prefixes), reason: reason)
    }

    /// Re-derives the whole table.
    @discardableResult
    public func rederiveAll(reason: String) throws -> RouteDiff {
        try derive(WholeTable(), reason: reason)
    }

    /// Takes `node` out of every route (`isDown`) or puts it back: health is runtime state, so
    /// only the history rows are written (and, in cluster mode, the `node_health` row every
    /// replica derives from).
    @discardableResult
    public func setHealth(of node: String, down isDown: Bool, reason: String) throws -> RouteDiff {
        if isDown { down.insert(node) } else { down.remove(node) }
        if storesHealth { try StoredNodeHealth.set(db, node: node, down: isDown, reason: reason, now: now) }
        effects.health = true
        return try rederiveAll(reason: reason)
    }

    // MARK: - Speaker configuration

    /// Replaces the health-down set (replaying another replica's health change).
    func replaceDown(_ nodes: Set<String>) {
        down = nodes
    }

    /// Runs a peer change against the speaker's configuration: throws (refusing the change
    /// before it commits) when the speaker could not apply it; otherwise says what it will do
    /// to the session and queues it for the speaker.
    @discardableResult
    public func apply(_ change: SpeakerConfiguration.PeerChange, reply: Reply<Void>? = nil) throws -> SpeakerConfiguration.PeerEffect {
        let effect: SpeakerConfiguration.PeerEffect
        do {
            effect = try speaker.apply(change)
        } catch {
            switch error {
            case .unknownPeer(let name): throw DomainError.notFound(kind: "peer", name: name)
            case .duplicatePeer, .duplicateAddress: throw DomainError.conflict(error.description)
            }
        }
        published.append(.peer(change, reply: reply))
        effects.peers.insert(change.name)
        return effect
    }

    /// New speaker settings: says what they do and queues them for the speaker.
    @discardableResult
    public func apply(settings: BGPSpeaker.SpeakerSettings, reply: Reply<SettingsChange>? = nil) -> SpeakerConfiguration.SettingsEffect {
        let effect = speaker.apply(settings: settings)
        published.append(.speakerSettings(settings, reply: reply))
        effects.speaker = true
        return effect
    }

    // MARK: - Nodes and events

    /// The nodes changed: the health checks follow the list as committed.
    public func nodesChanged(reply: Reply<Void>? = nil) throws {
        let list = try Nodes.list(db)
        nodes = list
        published.append(.nodes(list, reply: reply))
        effects.nodes = true
    }

    /// An event to publish on `/v1/events` after COMMIT, after this change's route events.
    public func publish(_ event: HeraldEvent) {
        events.append(event)
    }
}
