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
    private let table: Mutex<[IPPrefix: DesiredRoute]>
    private let continuation: AsyncStream<RouteDiff>.Continuation
    /// Diffs in commit order; the first one announces the table derived at start-up.
    public let diffs: AsyncStream<RouteDiff>

    public init(store: Store) throws {
        self.store = store
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
            try RouteHistory.append(db, diff, reason: reason(result), requestID: requestID, now: now)
            return Committed(result: result, table: after, diff: diff)
        }, afterCommit: { committed in
            table.withLock { $0 = committed.table }
            if !committed.diff.isEmpty { continuation.yield(committed.diff) }
        }).pair
    }

    /// Ends the diff stream (at shutdown).
    public func finish() { continuation.finish() }

    private struct Committed<T: Sendable>: Sendable {
        let result: T
        let table: [IPPrefix: DesiredRoute]
        let diff: RouteDiff
        var pair: (result: T, diff: RouteDiff) { (result, diff) }
    }
}
