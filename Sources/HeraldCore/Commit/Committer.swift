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

    /// What the followers have been told: the route table, the health-down nodes, the speaker
    /// configuration and the nodes, as of the last COMMIT.
    private struct CommittedState {
        var table: RouteTable
        var down: Set<String> = []
        var speaker: SpeakerConfiguration
        var nodes: [Node]
        var followers: [AsyncStream<CommittedChange>.Continuation] = []
    }

    public init(store: Store, events: EventPublisher? = nil, commitObserver: (@Sendable (Double) -> Void)? = nil) throws {
        self.store = store
        self.events = events
        self.commitObserver = commitObserver
        let (routes, speaker, nodes) = try store.read { db in
            (try DesiredRoutes.derive(db), try SpeakerMapping.configuration(db), try Nodes.list(db))
        }
        var table = RouteTable()
        table.reserveCapacity(adding: routes.keys)
        for (prefix, route) in routes { table[prefix] = route.body }
        state = Mutex(CommittedState(table: table, speaker: speaker, nodes: nodes))
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

    /// How many routes Herald should announce now.
    public var desiredRouteCount: Int { state.withLock { $0.table.count } }

    /// Nodes currently left out of routes by their health check.
    public var downNodes: Set<String> { state.withLock { $0.down } }

    /// The speaker configuration as committed.
    public var speakerConfiguration: SpeakerConfiguration { state.withLock { $0.speaker } }

    /// Follows committed changes: first the state now (`.snapshot`), then every change in
    /// commit order, until `finish()`. Atomic with the commits: nothing is missed or repeated.
    public func subscribe() -> AsyncStream<CommittedChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: CommittedChange.self, bufferingPolicy: .unbounded)
        state.withLock { state in
            var routes = RouteDiff()
            routes.announced = state.table.routes().values.sorted { $0.prefix < $1.prefix }
            continuation.yield(.snapshot(state.speaker, routes: routes, nodes: state.nodes))
            if queue.withLock({ $0.finished }) { continuation.finish() } else { state.followers.append(continuation) }
        }
        return stream
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
    }

    /// What a change that succeeded leaves for after COMMIT.
    private struct Outcome {
        let published: [CommittedChange]
        let events: [HeraldEvent]
        let changedPrefixes: Int
    }

    /// One round: takes every waiting change, runs them in one transaction, commits, then
    /// publishes and answers them in order. True when finished.
    private func commitWaitingJobs() -> Bool {
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
    }

    private func commit(_ jobs: [Job]) {
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
                var batch = state.withLock { Batch(down: $0.down, speaker: $0.speaker) }
                for job in jobs {
                    do {
                        // A savepoint per change: one refused change does not undo the others.
                        let (outcome, changes, context) = try db.transaction { db in
                            let view = TableView(committed: state.withLock { $0.table }, batch: batch.overlay)
                            let context = CommitContext(db: db, now: job.now, requestID: job.requestID, hints: hints, table: view,
                                                        down: batch.down, speaker: batch.speaker)
                            try job.run(context)
                            let changes = context.routeChanges
                            return (Outcome(published: context.published, events: context.events, changedPrefixes: changes.count),
                                    changes, (down: context.down, speaker: context.speaker, nodes: context.nodes))
                        }
                        if batch.overlay.isEmpty {
                            batch.overlay = changes  // (no copy: a bulk load's million entries are shared)
                        } else {
                            for (prefix, route) in changes { batch.overlay[prefix] = route }
                        }
                        batch.down = context.down
                        batch.speaker = context.speaker
                        if let nodes = context.nodes { batch.nodes = nodes }
                        outcomes.append(.success(outcome))
                    } catch {
                        outcomes.append(.failure(error))
                    }
                }
                // A bulk load replaces most of the table: the next table is built on the other
                // core while SQLite writes and syncs the commit, and swapped in after it.
                let committed = state.withLock { $0.table }
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
                let next = nextTable?.result()
                state.withLock { state in
                    if let next {
                        state.table = next
                    } else {
                        // In place: no view of the committed table is alive any more, so the
                        // table is not copied.
                        state.table.apply(batch.overlay)
                    }
                    state.down = batch.down
                    state.speaker = batch.speaker
                    if let nodes = batch.nodes { state.nodes = nodes }
                    for case .success(let outcome) in outcomes {
                        for change in outcome.published {
                            for follower in state.followers { follower.yield(change) }
                        }
                    }
                }
                for case .success(let outcome) in outcomes { events?.publish(outcome.events) }
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

    /// A change of at least this many prefixes is a bulk change: afterwards the memory its
    /// transient arrays took is handed back (glibc keeps freed pages in the middle of the heap
    /// resident otherwise, so a bulk load's arrays would stay in RSS for good).
    static let bulkChange = 10_000
}
