public import BGPSpeaker
public import Logging
public import Store
internal import Synchronization

/// What this replica knows of the cluster, for `GET /v1/cluster`, `/v1/status` and `/metrics`.
public struct ClusterState: Sendable, Equatable {
    /// This replica's node.
    public var nodeID: UInt64
    public var address: String
    /// The leader as this replica's node knows it.
    public var leader: String?
    public var isLeader: Bool { leader == address }
    /// When this replica last reached the leader (catching up or committing), ms.
    public var lastContact: Int64?
    /// Since when no leader has been reachable (no quorum), ms.
    public var quorumLostSince: Int64?
    public var hasQuorum: Bool { quorumLostSince == nil }
    /// The replication log rows this replica was behind at its last catch-up, and its revision.
    public var lagRevisions: Int64 = 0
    public var revision: Int64 = 0
    /// The penalty the speaker applies (the grace period without quorum ran out).
    public var degraded: Bool = false
    /// Times the leader changed as seen from here.
    public var leaderChanges: Int = 0
    /// The last problem reaching the leader, in words.
    public var lastError: String?
}

/// Keeps a replica in step with the cluster (cluster mode): follows the replication log (a
/// change committed elsewhere reaches this replica's speaker within a poll), keeps announcing
/// what it last knew when the quorum is gone — never withdrawing because the database is
/// unreachable — and after the grace period makes its paths worse so replicas with the quorum
/// win; runs the jobs that must run once (node health checks, pruning) while it is the leader.
public final class ClusterSupervisor: Sendable {
    let store: Store
    let committer: Committer
    let speaker: Speaker?
    let settings: ServeConfiguration.Cluster
    let logger: Logger
    /// Starts the leader's jobs; called on becoming leader. Returns what stops them.
    let leaderJobs: @Sendable () async -> (@Sendable () async -> Void)
    private let state: Mutex<ClusterState>
    private let stopLeaderJobs = Mutex<(@Sendable () async -> Void)?>(nil)
    /// The read mirror's revision and time (ms), and whether a copy is being made.
    private let mirror = Mutex<(revision: Int64, at: Int64, copying: Bool)>((-1, 0, false))
    /// How often the read mirror is copied again at most: a DUMP copies the whole database, so
    /// a small one (the homelab case) every second, a large one (a million static routes is
    /// hundreds of MB) every 30 s.
    static func mirrorInterval(bytes: Int) -> Int64 { bytes < 16 << 20 ? 1_000 : 30_000 }
    /// How often the replication log is polled.
    static let pollInterval: Duration = .milliseconds(200)
    /// How often leadership is checked.
    static let leaderCheckEvery = 5

    public init(store: Store, committer: Committer, speaker: Speaker?, settings: ServeConfiguration.Cluster, logger: Logger,
                leaderJobs: @escaping @Sendable () async -> (@Sendable () async -> Void)) {
        self.store = store
        self.committer = committer
        self.speaker = speaker
        self.settings = settings
        self.logger = logger
        self.leaderJobs = leaderJobs
        let node = store.clusterNode
        state = Mutex(ClusterState(nodeID: node?.id ?? 0, address: node?.address ?? ""))
    }

    public var current: ClusterState { state.withLock { $0 } }

    /// Polls until cancelled; then stops the leader's jobs if they run.
    public func run() async {
        var round = 0
        while !Task.isCancelled {
            await pollOnce(checkLeader: round % Self.leaderCheckEvery == 0)
            round += 1
            try? await Task.sleep(for: Self.pollInterval)
        }
        if let stop = stopLeaderJobs.withLock({ current in defer { current = nil }; return current }) { await stop() }
    }

    func pollOnce(checkLeader: Bool) async {
        let now = Clock.nowMilliseconds()
        do {
            let behind = try await committer.catchUp()
            let revision = committer.revision
            let wasDegraded = state.withLock { state -> Bool in
                state.lastContact = now
                state.lagRevisions = behind
                state.revision = revision
                state.lastError = nil
                if state.quorumLostSince != nil { state.quorumLostSince = nil }
                defer { state.degraded = false }
                return state.degraded
            }
            if wasDegraded {
                logger.notice("cluster quorum is back: announcing as before")
                await speaker?.setPathPenalty(nil)
            }
            refreshMirrorIfDue(revision: revision, now: now)
        } catch {
            let (lostSince, degrade) = state.withLock { state -> (Int64, Bool) in
                let since = state.quorumLostSince ?? now
                if state.quorumLostSince == nil { state.quorumLostSince = now }
                state.lastError = "\(error)"
                let degrade = !state.degraded && now - since >= Int64(settings.gracePeriodSeconds) * 1000
                if degrade { state.degraded = true }
                return (since, degrade)
            }
            if now == lostSince {
                logger.warning("cluster leader unreachable: announcing what this replica last knew", metadata: ["error": "\(error)"])
            }
            if degrade {
                logger.warning("no quorum for the grace period: announcing worse paths so replicas with the quorum win",
                               metadata: ["grace_seconds": "\(settings.gracePeriodSeconds)", "med": "+\(settings.degradedMED)",
                                          "prepend": "\(settings.degradedPrepend)"])
                await speaker?.setPathPenalty(PathPenalty(med: settings.degradedMED, prepend: settings.degradedPrepend))
            }
        }
        if checkLeader { await checkLeadership() }
    }

    /// Copies the database for reads without quorum when it changed and the last copy is old
    /// enough; on another thread, so the poll goes on meanwhile.
    func refreshMirrorIfDue(revision: Int64, now: Int64) {
        let due = mirror.withLock { mirror -> Bool in
            guard !mirror.copying, revision != mirror.revision,
                  mirror.revision < 0 || now - mirror.at >= Self.mirrorInterval(bytes: store.readMirrorBytes) else { return false }
            mirror.copying = true
            return true
        }
        guard due else { return }
        Task.detached { [self] in
            do {
                try store.refreshReadMirror()
                mirror.withLock { $0 = (revision, now, false) }
            } catch {
                mirror.withLock { $0.copying = false }
                logger.warning("cannot copy the database for reads without quorum", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Starts the leader's jobs on becoming leader, stops them on losing it.
    func checkLeadership() async {
        let store = self.store
        let leader = await Blocking.run { () -> String? in
            store.learnClusterMembers()
            return store.clusterLeader()
        }
        let (became, lost) = state.withLock { state -> (Bool, Bool) in
            let wasLeader = state.isLeader
            if leader != state.leader, leader != nil { state.leaderChanges += state.leader == nil ? 0 : 1 }
            state.leader = leader
            return (!wasLeader && state.isLeader, wasLeader && !state.isLeader)
        }
        if became {
            logger.info("this replica is the cluster leader: running health checks and pruning here")
            let stop = await leaderJobs()
            stopLeaderJobs.withLock { $0 = stop }
        } else if lost, let stop = stopLeaderJobs.withLock({ current in defer { current = nil }; return current }) {
            logger.info("this replica is no longer the cluster leader: health checks and pruning run on the new one")
            await stop()
        }
    }
}
