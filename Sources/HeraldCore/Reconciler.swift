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
public final class Reconciler: Sendable {
    public let store: Store
    /// Where committed changes are published for `/v1/events`, if anywhere.
    public let events: EventBus?
    private let table: Mutex<[IPPrefix: DesiredRoute]>
    private let continuation: AsyncStream<RouteDiff>.Continuation
    /// Diffs in commit order; the first one announces the table derived at start-up.
    public let diffs: AsyncStream<RouteDiff>

    public init(store: Store, events: EventBus? = nil) throws {
        self.store = store
        self.events = events
        let initial = try store.read { db in try DesiredRoutes.derive(db) }
        table = Mutex(initial)
        (diffs, continuation) = AsyncStream.makeStream(of: RouteDiff.self, bufferingPolicy: .unbounded)
        continuation.yield(RouteDiff.between([:], initial))
    }

    /// The routes Herald should announce now.
    public var desiredRoutes: [IPPrefix: DesiredRoute] { table.withLock { $0 } }

    /// Runs `body` in a write transaction, then re-derives the routes, records what changed with
    /// `reason(result)`, commits, and publishes the diff.
    @discardableResult
    public func mutate<T: Sendable>(requestID: String? = nil, now: Int64 = Clock.nowMilliseconds(),
                                    reason: (T) -> String, _ body: (Database) throws -> T) throws -> (result: T, diff: RouteDiff) {
        try store.write({ db in
            let result = try body(db)
            let after = try DesiredRoutes.derive(db)
            let diff = RouteDiff.between(table.withLock { $0 }, after)
            let why = reason(result)
            try RouteHistory.append(db, diff, reason: why, requestID: requestID, now: now)
            return Committed(result: result, table: after, diff: diff, reason: why)
        }, afterCommit: { committed in
            table.withLock { $0 = committed.table }
            if !committed.diff.isEmpty { continuation.yield(committed.diff) }
            publish(committed.diff, reason: committed.reason, requestID: requestID, at: now)
        }).pair
    }

    /// Ends the diff stream (at shutdown).
    public func finish() { continuation.finish() }

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

    /// One "change" event per commit, then one "route" event per prefix it moved.
    private func publish(_ diff: RouteDiff, reason: String, requestID: String?, at: Int64) {
        guard let events else { return }
        events.publish(kind: "change", payload: ChangeEvent(reason: reason, requestId: requestID, at: at))
        for (action, routes) in [("announce", diff.announced), ("update", diff.updated), ("withdraw", diff.withdrawn)] {
            for route in routes {
                events.publish(kind: "route", payload: RouteEvent(
                    action: action, prefix: route.prefix.description,
                    nextHops: action == "withdraw" ? [] : route.paths.map(\.nextHop.description),
                    reason: reason, requestId: requestID, at: at))
            }
        }
    }

    private struct Committed<T: Sendable>: Sendable {
        let result: T
        let table: [IPPrefix: DesiredRoute]
        let diff: RouteDiff
        let reason: String
        var pair: (result: T, diff: RouteDiff) { (result, diff) }
    }
}
