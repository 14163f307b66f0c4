import Foundation
public import IP
public import Store
internal import Synchronization

/// Keeps the desired route table in step with the database and hands every change, in commit
/// order, to whoever announces routes (the BGP speaker).
///
/// Every mutation runs through `mutate`: the change, the re-derived table, the diff and its
/// history rows all commit in one transaction; only after COMMIT (still under the writer lock)
/// is the in-memory table replaced and the diff published. So a diff is published exactly for
/// the commits that happened, in their order, and a restart that derives the table from the
/// database alone reaches the same state.
///
/// Group commit: mutations wait asynchronously in a queue; one committer thread runs every
/// waiting mutation in one transaction, each inside its own savepoint (a failing one is rolled
/// back alone), and pays one fsync for all of them. Nothing is acknowledged before that COMMIT.
public final class Reconciler: Sendable {
    public let store: Store
    /// Where committed changes are published for `/v1/events`, if anywhere.
    public let events: EventBus?
    /// The committed routes, by prefix. (The value leaves out the prefix, which is the key: at a
    /// million routes every byte per entry is a megabyte.)
    private let table: Mutex<PrefixMap<DesiredRoute.Body>>
    /// Nodes whose health check has them down (runtime state, not stored): committed together
    /// with the table, so every derivation sees the set of its point in the commit order.
    private let down = Mutex<Set<String>>([])
    private let continuation: AsyncStream<RouteDiff>.Continuation
    /// Diffs in commit order; the first one announces the table derived at start-up.
    public let diffs: AsyncStream<RouteDiff>

    /// Told how long each batch commit took (for metrics).
    let commitObserver: (@Sendable (Double) -> Void)?

    public init(store: Store, events: EventBus? = nil, commitObserver: (@Sendable (Double) -> Void)? = nil) throws {
        self.store = store
        self.events = events
        self.commitObserver = commitObserver
        let initial = try store.read { db in try DesiredRoutes.derive(db) }
        var committed = PrefixMap<DesiredRoute.Body>()
        committed.reserveCapacity(adding: initial.keys)
        for (prefix, route) in initial { committed[prefix] = route.body }
        table = Mutex(committed)
        (diffs, continuation) = AsyncStream.makeStream(of: RouteDiff.self, bufferingPolicy: .unbounded)
        continuation.yield(RouteDiff.between([:], initial))
        // The thread holds the reconciler weakly, so a reconciler that is dropped (tests) lets
        // its thread end; `finish()` ends it explicitly at shutdown.
        let wake = wakeCommitter
        let done = committerDone
        let thread = Thread { [weak self] in
            while true {
                wake.wait()
                guard let reconciler = self else { return }
                if reconciler.commitWaitingJobs() {
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
        wakeCommitter.signal()
    }

    /// The routes Herald should announce now (built on each call: O(table)).
    public var desiredRoutes: [IPPrefix: DesiredRoute] { table.withLock { $0.routes() } }

    /// How many routes Herald should announce now.
    public var desiredRouteCount: Int { table.withLock { $0.count } }

    /// Nodes currently left out of routes by their health check.
    public var downNodes: Set<String> { down.withLock { $0 } }

    /// One queued mutation: applies itself against the table so far and reports its outcome.
    private struct Job: Sendable {
        let requestID: String?
        let now: Int64
        /// Runs in the batch transaction (inside a savepoint) against the table as it stands
        /// after the earlier jobs of the batch; returns what it changed.
        let apply: @Sendable (Database, TableView, Set<String>) throws -> Applied
        /// Called once with the outcome, after COMMIT (or the failure).
        let finish: @Sendable (Result<RouteDiff, any Error>) -> Void
    }

    private struct Applied: Sendable {
        /// The new route of every prefix the job re-derived (nil: no longer announced).
        let changes: [IPPrefix: DesiredRoute?]
        let down: Set<String>
        let diff: RouteDiff
        let reason: String
    }

    /// The committed table with the uncommitted changes of earlier jobs in the same batch laid
    /// over it. Reading through it, rather than copying the table per job, keeps a mutation's
    /// cost proportional to what it touches, not to the size of the table (a million static
    /// routes must not make each allocation PUT copy a million entries).
    struct TableView {
        let committed: PrefixMap<DesiredRoute.Body>
        let overlay: [IPPrefix: DesiredRoute?]

        var isEmpty: Bool { committed.isEmpty && overlay.isEmpty }

        subscript(prefix: IPPrefix) -> DesiredRoute? {
            if let pending = overlay[prefix] { return pending }
            return committed[prefix].map { DesiredRoute(prefix: prefix, body: $0) }
        }

        /// The whole table (the full re-derive path, which is O(table) anyway).
        func materialize() -> [IPPrefix: DesiredRoute] {
            var all = committed.routes(room: overlay.count)
            for (prefix, route) in overlay { all[prefix] = route }
            return all
        }
    }

    private let queue = Mutex<(jobs: [Job], finished: Bool)>(([], false))
    private let wakeCommitter = DispatchSemaphore(value: 0)
    private let committerDone = DispatchSemaphore(value: 0)

    /// Runs `body` in a write transaction, then re-derives the routes, records what changed with
    /// `reason(result)`, commits, and publishes the diff. Returns after COMMIT. `affected`, when
    /// given, names every prefix the change can touch, so only those are re-derived; without
    /// it the whole table is.
    @discardableResult
    public func mutate<T: Sendable>(requestID: String? = nil, now: Int64 = Clock.nowMilliseconds(),
                                    reason: @escaping @Sendable (T) -> String,
                                    affecting affected: (@Sendable (T) -> Set<IPPrefix>)? = nil,
                                    _ body: @escaping @Sendable (Database) throws -> T) async throws -> (result: T, diff: RouteDiff) {
        try await enqueue(requestID: requestID, now: now, reason: reason, affecting: affected, deriving: nil, health: nil, body)
    }

    /// For a change that knows its routes without reading them back (a bulk load of static
    /// routes): `derive(result, db, down)` runs after `body` in the same transaction and returns
    /// the route after the change (nil: not announced) of every prefix the change can touch,
    /// each prefix once. Sorted input keeps the diff's sort linear.
    @discardableResult
    public func mutate<T: Sendable>(requestID: String? = nil, now: Int64 = Clock.nowMilliseconds(),
                                    reason: @escaping @Sendable (T) -> String,
                                    deriving derive: @escaping @Sendable (T, Database, Set<String>) throws -> [(prefix: IPPrefix, route: DesiredRoute?)],
                                    _ body: @escaping @Sendable (Database) throws -> T) async throws -> (result: T, diff: RouteDiff) {
        try await enqueue(requestID: requestID, now: now, reason: reason, affecting: nil, deriving: derive, health: nil, body)
    }

    /// Takes `node` out of every route (`down`) or puts it back, through the same path as a
    /// database change: re-derived, recorded in the history with `reason`, committed, published.
    /// Node health is runtime state, so nothing but the history rows is written.
    @discardableResult
    public func setNodeHealth(_ node: String, down isDown: Bool, reason: String, now: Int64 = Clock.nowMilliseconds()) async throws -> RouteDiff {
        try await enqueue(requestID: nil, now: now, reason: { (_: Void) in reason }, affecting: nil, deriving: nil,
                          health: { down in if isDown { down.insert(node) } else { down.remove(node) } }, { _ in }).diff
    }

    private func enqueue<T: Sendable>(requestID: String?, now: Int64, reason: @escaping @Sendable (T) -> String,
                                      affecting affected: (@Sendable (T) -> Set<IPPrefix>)?,
                                      deriving derive: (@Sendable (T, Database, Set<String>) throws -> [(prefix: IPPrefix, route: DesiredRoute?)])?,
                                      health: (@Sendable (inout Set<String>) -> Void)?,
                                      _ body: @escaping @Sendable (Database) throws -> T) async throws -> (result: T, diff: RouteDiff) {
        let result = Mutex<T?>(nil)
        let diff: RouteDiff = try await withCheckedThrowingContinuation { continuation in
            let job = Job(requestID: requestID, now: now, apply: { db, table, downBefore in
                let value = try body(db)
                var down = downBefore
                health?(&down)
                var changes: [IPPrefix: DesiredRoute?] = [:]
                let diff: RouteDiff
                var changesBuiltAside: Aside<[IPPrefix: DesiredRoute?]>?
                if let derive {
                    // The new routes are given: compare each with the table, no re-derive.
                    let fresh = try derive(value, db, down)
                    var next = RouteDiff()
                    if fresh.count >= Self.asideThreshold {
                        // A bulk load: the dictionary of a million changes is built on the other
                        // core while this one writes the history rows.
                        changesBuiltAside = Aside {
                            var built: [IPPrefix: DesiredRoute?] = [:]
                            built.reserveCapacity(fresh.count)
                            for (prefix, route) in fresh { built[prefix] = .some(route) }
                            return built
                        }
                    } else {
                        changes.reserveCapacity(fresh.count)
                        for (prefix, route) in fresh { changes[prefix] = .some(route) }
                    }
                    if table.isEmpty {
                        // Into an empty table (the first bulk load) everything given is
                        // announced, in the order given: no lookups.
                        next.announced.reserveCapacity(fresh.count)
                        for (_, route) in fresh { if let route { next.announced.append(route) } }
                    } else {
                        for (prefix, route) in fresh {
                            switch (table[prefix], route) {
                            case (nil, let route?): next.announced.append(route)
                            case (let old?, let route?):
                                if old.paths != route.paths || old.attributes != route.attributes { next.updated.append(route) }
                            case (let old?, nil): next.withdrawn.append(old)
                            case (nil, nil): break
                            }
                        }
                    }
                    next.announced.sort { $0.prefix < $1.prefix }
                    next.updated.sort { $0.prefix < $1.prefix }
                    next.withdrawn.sort { $0.prefix < $1.prefix }
                    diff = next
                } else if let prefixes = affected?(value) {
                    // Only these prefixes can have changed: re-derive just them.
                    let fresh = try DesiredRoutes.derive(db, only: prefixes, down: down)
                    var before: [IPPrefix: DesiredRoute] = [:]
                    changes.reserveCapacity(prefixes.count)
                    for prefix in prefixes {
                        if let old = table[prefix] { before[prefix] = old }
                        changes[prefix] = .some(fresh[prefix])
                    }
                    diff = RouteDiff.between(before, fresh)
                } else {
                    let before = table.materialize()
                    let after = try DesiredRoutes.derive(db, down: down)
                    diff = RouteDiff.between(before, after)
                    for route in diff.announced + diff.updated { changes[route.prefix] = .some(route) }
                    for route in diff.withdrawn { changes[route.prefix] = .some(nil) }
                    // Unchanged prefixes may still carry new sources (a second allocation sharing
                    // an address): keep the table's copy exact.
                    for (prefix, route) in after where changes[prefix] == nil && before[prefix]?.sources != route.sources {
                        changes[prefix] = .some(route)
                    }
                }
                let why = reason(value)
                try RouteHistory.append(db, diff, reason: why, requestID: requestID, now: now)
                if let changesBuiltAside { changes = changesBuiltAside.result() }
                result.withLock { $0 = value }
                return Applied(changes: changes, down: down, diff: diff, reason: why)
            }, finish: { outcome in continuation.resume(with: outcome) })
            let accepted = queue.withLock { state -> Bool in
                guard !state.finished else { return false }
                state.jobs.append(job)
                return true
            }
            if accepted {
                wakeCommitter.signal()
            } else {
                continuation.resume(throwing: DomainError.unprocessable("Herald is shutting down; the change was not made"))
            }
        }
        guard let value = result.withLock({ $0 }) else { preconditionFailure("a committed mutation has a result") }
        return (value, diff)
    }

    /// One round of the committer thread: takes every waiting job, runs them in one
    /// transaction, commits, then publishes and answers them in order. True when finished.
    private func commitWaitingJobs() -> Bool {
        let (jobs, finished) = queue.withLock { state in
            defer { state.jobs.removeAll() }
            return (state.jobs, state.finished)
        }
        if !jobs.isEmpty { commit(jobs) }
        return finished && queue.withLock { $0.jobs.isEmpty }
    }

    private func commit(_ jobs: [Job]) {
        var outcomes: [Result<Applied, any Error>] = []
        let started = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - started
            commitObserver?(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        var nextTable: Aside<PrefixMap<DesiredRoute.Body>>?
        do {
            _ = try store.write({ db -> (overlay: [IPPrefix: DesiredRoute?], down: Set<String>) in
                outcomes = []
                var overlay: [IPPrefix: DesiredRoute?] = [:]
                var currentDown = down.withLock { $0 }
                for job in jobs {
                    do {
                        // A savepoint per job: one refused change does not undo the others.
                        let view = TableView(committed: table.withLock { $0 }, overlay: overlay)
                        let applied = try db.transaction { db in try job.apply(db, view, currentDown) }
                        if overlay.isEmpty {
                            overlay = applied.changes  // (no copy: a bulk load's million entries are shared)
                        } else {
                            for (prefix, route) in applied.changes { overlay[prefix] = route }
                        }
                        currentDown = applied.down
                        outcomes.append(.success(applied))
                    } catch {
                        outcomes.append(.failure(error))
                    }
                }
                // A bulk load replaces most of the table: the next table is built on the other
                // core while SQLite writes and syncs the commit, and swapped in after it.
                let committed = table.withLock { $0 }
                if overlay.count >= Self.asideThreshold && overlay.count * 2 >= committed.count {
                    let changes = overlay
                    nextTable = Aside {
                        var next = committed
                        next.apply(changes)
                        return next
                    }
                }
                return (overlay, currentDown)
            }, afterCommit: { final in
                if let nextTable {
                    let next = nextTable.result()
                    table.withLock { $0 = next }
                } else {
                    // In place: no view of the committed table is alive any more, so the
                    // dictionary is not copied.
                    table.withLock { $0.apply(final.overlay) }
                }
                down.withLock { $0 = final.down }
                for (job, outcome) in zip(jobs, outcomes) {
                    guard case .success(let applied) = outcome else { continue }
                    if !applied.diff.isEmpty { continuation.yield(applied.diff) }
                    publish(applied.diff, reason: applied.reason, requestID: job.requestID, at: job.now)
                }
            })
        } catch {
            // COMMIT itself failed (disk full, read-only…): nothing of the batch was kept.
            for job in jobs { job.finish(.failure(error)) }
            return
        }
        for (job, outcome) in zip(jobs, outcomes) { job.finish(outcome.map(\.diff)) }
        let changed = outcomes.reduce(0) { total, outcome in
            guard case .success(let applied) = outcome else { return total }
            return total + applied.changes.count
        }
        if changed >= Self.bulkChange { store.releaseMemoryAfterBulkChange() }
    }

    /// A change of at least this many prefixes is a bulk change: afterwards the memory its
    /// transient arrays took is handed back (see `Store.releaseMemoryAfterBulkChange`).
    static let bulkChange = 10_000

    /// From this many changed prefixes on, the dictionaries of a change are built on another
    /// thread while the committer writes to SQLite (a bulk load of static routes).
    static let asideThreshold = 50_000

    /// Work started on another thread now, its result taken later (`result()` waits for it).
    final class Aside<Value: Sendable>: Sendable {
        private let value = Mutex<Value?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(_ work: @escaping @Sendable () -> Value) {
            DispatchQueue.global(qos: .userInitiated).async { [self] in
                let result = work()
                value.withLock { $0 = result }
                done.signal()
            }
        }

        /// Waits for the work, then hands its result over (once).
        func result() -> Value {
            done.wait()
            return value.withLock { stored in
                defer { stored = nil }
                return stored!
            }
        }
    }

    /// Commits what is queued, refuses later mutations, stops the committer and ends the diff
    /// stream (at shutdown). Idempotent.
    public func finish() {
        let first = queue.withLock { state -> Bool in
            defer { state.finished = true }
            return !state.finished
        }
        guard first else { return }
        wakeCommitter.signal()
        committerDone.wait()
        continuation.finish()
    }

    struct ChangeEvent: Encodable {
        let reason: String
        let requestId: String?
        let at: Int64
    }

    struct RouteEvent: Encodable {
        let action: String
        let prefix: String
        let nextHops: [String]
        let reason: String
        let requestId: String?
        let at: Int64
    }

    struct BulkRouteEvent: Encodable {
        let announced: Int
        let updated: Int
        let withdrawn: Int
        let reason: String
        let requestId: String?
        let at: Int64
    }

    /// Above this many prefixes, one change publishes a "routes" summary instead of one "route"
    /// event per prefix: a million events would only push every subscriber past its buffer.
    static let bulkEventThreshold = 1_000

    /// One "change" event per commit, then one "route" event per prefix it moved (or one
    /// "routes" summary for a bulk change: subscribers reload `GET /v1/routes`).
    private func publish(_ diff: RouteDiff, reason: String, requestID: String?, at: Int64) {
        guard let events else { return }
        events.publish(kind: "change", payload: ChangeEvent(reason: reason, requestId: requestID, at: at))
        if diff.announced.count + diff.updated.count + diff.withdrawn.count > Self.bulkEventThreshold {
            events.publish(kind: "routes", payload: BulkRouteEvent(
                announced: diff.announced.count, updated: diff.updated.count, withdrawn: diff.withdrawn.count,
                reason: reason, requestId: requestID, at: at))
            return
        }
        for (action, routes) in [("announce", diff.announced), ("update", diff.updated), ("withdraw", diff.withdrawn)] {
            for route in routes {
                events.publish(kind: "route", payload: RouteEvent(
                    action: action, prefix: route.prefix.description,
                    nextHops: action == "withdraw" ? [] : route.paths.map(\.nextHop.description),
                    reason: reason, requestId: requestID, at: at))
            }
        }
    }
}

extension PrefixMap where Value == DesiredRoute.Body {
    /// The full routes (each rebuilt with its prefix), with room for `room` more.
    func routes(room: Int = 0) -> [IPPrefix: DesiredRoute] {
        var routes: [IPPrefix: DesiredRoute] = [:]
        routes.reserveCapacity(count + room)
        for (prefix, body) in self { routes[prefix] = DesiredRoute(prefix: prefix, body: body) }
        return routes
    }

    /// Lays committed changes over the table (nil: no longer announced), grown once up front
    /// rather than doubling through a bulk load.
    mutating func apply(_ changes: [IPPrefix: DesiredRoute?]) {
        reserveCapacity(adding: changes.keys)
        for (prefix, route) in changes { self[prefix] = route?.body }
    }
}
