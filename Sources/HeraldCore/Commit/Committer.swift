import Foundation
public import BGPSpeaker
public import IP
public import Store
internal import Synchronization

/// The one path by which Herald changes anything: every mutation — peers and speaker settings
/// as much as nodes, pools, allocations, static routes, node health and history pruning — is a
/// change run by the committer.
///
/// A change runs inside the batch transaction (`CommitContext`): it writes its rows, derives
/// the routes it moved and records them in the history, and runs its peer and speaker changes
/// against the committer's copy of the speaker configuration, which refuses (before COMMIT) what
/// the speaker could not apply. Only after COMMIT, still under the writer lock, are the route
/// table and the configuration replaced and the changes handed to the followers (the speaker
/// bridge, the health checks) and `/v1/events`, in commit order. So followers see exactly the
/// changes that committed, in their order, and a restart that derives everything from the
/// database alone reaches the same state.
///
/// Group commit: changes wait in a queue; one committer thread runs every waiting change in one
/// transaction, each inside its own savepoint (a refused one is rolled back alone), and pays one
/// fsync for all of them. Nothing is acknowledged before that COMMIT.
public final class Committer: Sendable {
    public let store: Store
    /// Where committed changes are published for `/v1/events`, if anywhere.
    public let events: EventPublisher?
    private let state: Mutex<CommittedState>
    private let queue = Mutex<(jobs: [Job], finished: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    /// The allocator's lowest-free hints (see `LowestFreeHints`).
    private let hints = LowestFreeHints()
    /// Told how long each batch commit took (for metrics).
    private let commitObserver: (@Sendable (Double) -> Void)?
    /// Cluster mode: this replica's name in the replication log. Nil: the single-file default,
    /// where this committer is the database's only writer and keeps no log.
    public let replica: String?
    /// Cluster mode: this replica's own BGP router ID (every replica has its own; the stored one
    /// is the first replica's and is not used).
    public let localRouterID: IPv4Address?
    /// Cluster mode: this replica's own BGP listener, when `--bgp-listen` gives one (each replica
    /// listens on its own address; the stored one is the default for replicas that give none).
    public let localListen: IPEndpoint?

    /// What the followers have been told: the route table, the health-down nodes, the speaker
    /// configuration and the nodes, as of the last COMMIT.
    private struct CommittedState {
        var table: RouteTable
        /// Changes with every commit that changes the table (for `SortedPrefixCache`).
        var tableVersion = 0
        var down: Set<String> = []
        var speaker: SpeakerConfiguration
        var nodes: [Node]
        /// The last replication log row applied (cluster mode).
        var revision: Int64 = 0
        var followers: [Follower] = []
    }

    /// `replica`: cluster mode (see `ReplicationLog`), with this replica's name.
    public init(store: Store, events: EventPublisher? = nil, replica: String? = nil, localRouterID: IPv4Address? = nil, localListen: IPEndpoint? = nil,
                commitObserver: (@Sendable (Double) -> Void)? = nil) throws {
        self.store = store
        self.events = events
        self.replica = replica
        self.localRouterID = localRouterID
        self.localListen = localListen
        self.commitObserver = commitObserver
        let clustered = replica != nil
        let (routes, speaker, nodes, down, revision) = try store.read { db in
            // In cluster mode health is stored; the revision read in the same snapshot as the
            // state, so catching up starts exactly after it.
            let down = clustered ? try StoredNodeHealth.down(db) : []
            return (try DesiredRoutes.derive(db, down: down), try SpeakerMapping.configuration(db, routerID: localRouterID, listen: localListen), try Nodes.list(db), down,
                    clustered ? try ReplicationLog.latestRevision(db) : 0)
        }
        var table = RouteTable()
        table.reserveCapacity(adding: routes.keys)
        for (prefix, route) in routes { table[prefix] = route.body }
        state = Mutex(CommittedState(table: table, down: down, speaker: speaker, nodes: nodes, revision: revision))
        // The thread holds the committer weakly, so a committer that is dropped (tests) lets its
        // thread end; `finish()` ends it explicitly at shutdown.
        let wake = self.wake, done = self.done
        let thread = Thread { [weak self] in
            while true {
                wake.wait()
                guard let committer = self else { return }
                if committer.commitWaitingJobs() {
                    done.signal()
                    return
                }
            }
        }
        thread.name = "herald-commit"
        thread.start()
    }

    deinit {
        queue.withLock { $0.finished = true }
        wake.signal()
    }

    // MARK: - Reading the committed state

    /// The routes Herald should announce now (built on each call: O(table)).
    public var desiredRoutes: [IPPrefix: DesiredRoute] { state.withLock { $0.table.routes() } }

    /// The committed table and its version, without copying it (copy-on-write: hold it only for a page).
    var routeTable: (table: RouteTable, version: Int) { state.withLock { ($0.table, $0.tableVersion) } }

    /// How many routes Herald should announce now.
    public var desiredRouteCount: Int { state.withLock { $0.table.count } }

    /// Nodes currently left out of routes by their health check.
    public var downNodes: Set<String> { state.withLock { $0.down } }

    /// The speaker configuration as committed.
    public var speakerConfiguration: SpeakerConfiguration { state.withLock { $0.speaker } }

    /// The last replication log row this replica applied (cluster mode; 0 otherwise).
    public var revision: Int64 { state.withLock { $0.revision } }

    /// Cluster mode: applies what other replicas committed since the last batch, if anything.
    /// Returns how far behind this replica was (log rows), 0 when it was current.
    @discardableResult
    public func catchUp() async throws -> Int64 {
        guard replica != nil else { return 0 }
        let store = self.store
        let latest = try await Blocking.run { try store.read(fromLeader: true) { db in try ReplicationLog.latestRevision(db) } }
        let behind = latest - revision
        guard behind > 0 else { return 0 }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            var job = Job(requestID: nil, now: Clock.nowMilliseconds(), run: { _ in }, finish: { continuation.resume(with: $0) })
            job.catchUpOnly = true
            let accepted = queue.withLock { queue -> Bool in
                guard !queue.finished else { return false }
                queue.jobs.append(job)
                return true
            }
            if accepted { wake.signal() } else { continuation.resume() }
        }
        return behind
    }

    /// Follows committed changes: first the state now (`.snapshot`), then every change in
    /// commit order, until `finish()`. Atomic with the commits: nothing is missed or repeated.
    /// Bounded by backpressure, not by dropping: see `Follower`.
    public func subscribe(backlogLimit: Int = 1_024) -> CommittedChanges {
        let (stream, continuation) = AsyncStream.makeStream(of: CommittedChange.self, bufferingPolicy: .unbounded)
        let follower = Follower(continuation, backlogLimit: backlogLimit)
        continuation.onTermination = { _ in follower.stopped() }
        state.withLock { state in
            var routes = RouteDiff()
            routes.announced = state.table.routes().values.sorted { $0.prefix < $1.prefix }
            follower.yield(.snapshot(state.speaker, routes: routes, nodes: state.nodes))
            if queue.withLock({ $0.finished }) { follower.finish() } else { state.followers.append(follower) }
        }
        return CommittedChanges(stream: stream, follower: follower)
    }

    // MARK: - Committing

    /// Runs `body` in the next batch transaction and returns its result after COMMIT. A change
    /// that throws is rolled back alone (its savepoint) and its error thrown here.
    @discardableResult
    public func commit<T: Sendable>(requestID: String? = nil, now: Int64 = Clock.nowMilliseconds(),
                                    _ body: @escaping @Sendable (CommitContext) throws -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let job = Job(requestID: requestID, now: now, run: { context in
                let value = try body(context)
                result.withLock { $0 = value }
            }, finish: { continuation.resume(with: $0) })
            let accepted = queue.withLock { queue -> Bool in
                guard !queue.finished else { return false }
                queue.jobs.append(job)
                return true
            }
            if accepted {
                wake.signal()
            } else {
                continuation.resume(throwing: DomainError.unprocessable("Herald is shutting down; the change was not made"))
            }
        }
        guard let value = result.withLock({ $0 }) else { preconditionFailure("a committed change has a result") }
        return value
    }

    /// Commits what is queued, refuses later changes, stops the committer thread and ends the
    /// followers' streams (at shutdown). Idempotent.
    public func finish() {
        let first = queue.withLock { queue -> Bool in
            defer { queue.finished = true }
            return !queue.finished
        }
        guard first else { return }
        wake.signal()
        done.wait()
        let followers = state.withLock { state in
            defer { state.followers = [] }
            return state.followers
        }
        for follower in followers { follower.finish() }
    }

    // MARK: - The committer thread

    private struct Job: Sendable {
        let requestID: String?
        let now: Int64
        let run: @Sendable (CommitContext) throws -> Void
        let finish: @Sendable (Result<Void, any Error>) -> Void
        /// Only replays other replicas' batches (`catchUp()`): a read transaction is enough, and
        /// takes no write lock from the replica that is writing.
        var catchUpOnly = false
    }

    /// What a change that succeeded leaves for after COMMIT.
    private struct Outcome {
        let published: [CommittedChange]
        let events: [HeraldEvent]
        let changedPrefixes: Int
        let effects: ReplicationLog.Effects
    }

    /// One round: takes every waiting change, runs them in one transaction, commits, then
    /// publishes and answers them in order. True when finished.
    private func commitWaitingJobs() -> Bool {
        // Backpressure: a follower far behind holds the next batch (more changes queue into it).
        Follower.waitWhileBehind(state.withLock { $0.followers }, finished: { queue.withLock { $0.finished } })
        let (jobs, finished) = queue.withLock { queue in
            defer { queue.jobs.removeAll() }
            return (queue.jobs, queue.finished)
        }
        if !jobs.isEmpty { commit(jobs) }
        return finished && queue.withLock { $0.jobs.isEmpty }
    }

    /// The batch's state so far: the committed state with the succeeded changes laid over it.
    private struct Batch {
        var overlay: [IPPrefix: DesiredRoute?] = [:]
        var down: Set<String>
        var speaker: SpeakerConfiguration
        var nodes: [Node]?
        var revision: Int64
        /// Other replicas' batches replayed first (cluster mode).
        var caughtUp: Outcome?

        /// Runs one change in a savepoint of the batch transaction and lays what it did over
        /// the batch; a change that throws leaves the batch as it was.
        mutating func run(_ db: Database, committed: RouteTable, requestID: String?, now: Int64, hints: LowestFreeHints,
                          storesHealth: Bool, localRouterID: IPv4Address?, localListen: IPEndpoint?, replaying: Bool = false,
                          _ body: (CommitContext) throws -> Void) throws -> Outcome {
            let (outcome, changes, context) = try db.transaction { db in
                let context = CommitContext(db: db, now: now, requestID: requestID, hints: hints,
                                            table: TableView(committed: committed, batch: overlay), down: down, speaker: speaker,
                                            storesHealth: storesHealth, localRouterID: localRouterID, localListen: localListen)
                context.recordsHistory = !replaying
                try body(context)
                let changes = context.routeChanges
                return (Outcome(published: context.published, events: context.events, changedPrefixes: changes.count,
                                effects: context.effects),
                        changes, (down: context.down, speaker: context.speaker, nodes: context.nodes))
            }
            if overlay.isEmpty {
                overlay = changes  // (no copy: a bulk load's million entries are shared)
            } else {
                for (prefix, route) in changes { overlay[prefix] = route }
            }
            down = context.down
            speaker = context.speaker
            if let nodes = context.nodes { self.nodes = nodes }
            return outcome
        }
    }

    private func commit(_ jobs: [Job]) {
        if jobs.allSatisfy(\.catchUpOnly) { return catchUpOnly(jobs) }
        let started = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - started
            commitObserver?(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        var outcomes: [Result<Outcome, any Error>] = []
        var nextTable: Aside<RouteTable>?
        do {
            _ = try store.write({ db -> Batch in
                outcomes = []
                var batch = state.withLock { Batch(down: $0.down, speaker: $0.speaker, revision: $0.revision) }
                let committed = state.withLock { $0.table }
                // Other replicas' batches first, in revision order, so every change of this batch
                // is derived against the latest committed state.
                if replica != nil { try replayLog(db, into: &batch, committed: committed) }
                for job in jobs {
                    do {
                        // A savepoint per change: one refused change does not undo the others.
                        outcomes.append(.success(try batch.run(db, committed: committed, requestID: job.requestID, now: job.now,
                                                               hints: hints, storesHealth: replica != nil, localRouterID: localRouterID,
                                                               localListen: localListen, job.run)))
                    } catch {
                        outcomes.append(.failure(error))
                    }
                }
                if let replica {
                    var effects = ReplicationLog.Effects()
                    for case .success(let outcome) in outcomes { effects.formUnion(outcome.effects) }
                    if !effects.isEmpty { batch.revision = try ReplicationLog.append(db, effects, replica: replica, now: Clock.nowMilliseconds()) }
                }
                // A bulk load replaces most of the table: the next table is built on the other
                // core while SQLite writes and syncs the commit, and swapped in after it.
                if batch.overlay.count >= asideThreshold && batch.overlay.count * 2 >= committed.count {
                    let changes = batch.overlay
                    nextTable = Aside {
                        var next = committed
                        next.apply(changes)
                        return next
                    }
                }
                return batch
            }, afterCommit: { batch in
                adopt(batch, next: nextTable?.result(), outcomes: outcomes.compactMap { try? $0.get() })
            })
        } catch {
            // COMMIT itself failed (disk full, read-only…): nothing of the batch was kept.
            for job in jobs { job.finish(.failure(error)) }
            return
        }
        for (job, outcome) in zip(jobs, outcomes) { job.finish(outcome.map { _ in () }) }
        let changed = outcomes.reduce(0) { total, outcome in
            guard case .success(let applied) = outcome else { return total }
            return total + applied.changedPrefixes
        }
        if changed >= Self.bulkChange {
            store.releaseMemory()
            ProcessMemory.returnFreeHeapToKernel()
        }
    }

    /// Replays the replication log rows after the batch's revision (other replicas' batches)
    /// into the batch, as a change that writes no history.
    private func replayLog(_ db: Database, into batch: inout Batch, committed: RouteTable) throws {
        let entries = try ReplicationLog.entries(db, after: batch.revision)
        let resync = try batch.revision > 0 && (ReplicationLog.oldestRevision(db).map { $0 > batch.revision + 1 } ?? false)
        // A row of this replica's own is among them only when its COMMIT's answer was lost (the
        // leader went) but the batch committed: it was failed here and never laid over the
        // state, so it is replayed like the others.
        if !entries.isEmpty || resync {
            batch.caughtUp = try batch.run(db, committed: committed, requestID: nil, now: Clock.nowMilliseconds(), hints: hints,
                                           storesHealth: true, localRouterID: localRouterID, localListen: localListen,
                                           replaying: true) { context in
                try CatchUp.apply(entries, resync: resync, to: context)
            }
        }
        if let last = entries.last { batch.revision = last.revision }
    }

    /// Makes a committed batch the state followers see, and tells them and `/v1/events` what it
    /// changed, in order: the replayed batches first, then the batch's own changes. `next` is the
    /// table built aside for a bulk change.
    private func adopt(_ batch: Batch, next: RouteTable?, outcomes: [Outcome]) {
        state.withLock { state in
            if let next {
                state.table = next
            } else {
                // In place: no view of the committed table is alive any more (but a page of
                // GET /v1/routes for a few milliseconds), so the table is not copied.
                state.table.apply(batch.overlay)
            }
            if next != nil || !batch.overlay.isEmpty { state.tableVersion &+= 1 }
            state.down = batch.down
            state.speaker = batch.speaker
            state.revision = batch.revision
            if let nodes = batch.nodes { state.nodes = nodes }
            state.followers.removeAll(where: \.isGone)
            for outcome in [batch.caughtUp].compactMap({ $0 }) + outcomes {
                for change in outcome.published {
                    for follower in state.followers { follower.yield(change) }
                }
            }
        }
        if let caughtUp = batch.caughtUp { events?.publish(caughtUp.events) }
        for outcome in outcomes { events?.publish(outcome.events) }
    }

    /// A batch of nothing but catch-up requests (cluster mode, a replica that is not writing):
    /// replays the log in a read transaction and publishes what it found, like a commit would.
    private func catchUpOnly(_ jobs: [Job]) {
        guard replica != nil else { return jobs.forEach { $0.finish(.success(())) } }
        do {
            let batch = try store.read(fromLeader: true) { db -> Batch in
                var batch = state.withLock { Batch(down: $0.down, speaker: $0.speaker, revision: $0.revision) }
                try replayLog(db, into: &batch, committed: state.withLock { $0.table })
                return batch
            }
            adopt(batch, next: nil, outcomes: [])
            for job in jobs { job.finish(.success(())) }
        } catch {
            for job in jobs { job.finish(.failure(error)) }
        }
    }

    /// A change of at least this many prefixes is a bulk change: afterwards the memory its
    /// transient arrays took is handed back (glibc keeps freed pages in the middle of the heap
    /// resident otherwise, so a bulk load's arrays would stay in RSS for good).
    static let bulkChange = 10_000
}
