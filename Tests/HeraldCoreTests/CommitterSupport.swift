@testable import HeraldCore
import IP
import Store

extension Committer {
    /// Takes a node out of every route or puts it back, as the health checks do.
    @discardableResult
    func setNodeHealth(_ node: String, down: Bool, reason: String, now: Int64 = Clock.nowMilliseconds()) async throws -> RouteDiff {
        try await commit(now: now) { change in try change.setHealth(of: node, down: down, reason: reason) }
    }

    /// Runs `body`, then re-derives the whole table (or only `affecting`) with `reason`: a change
    /// as the API makes it, for tests that write rows themselves.
    @discardableResult
    func mutate<T: Sendable>(requestID: String? = nil, now: Int64 = Clock.nowMilliseconds(), reason: String,
                             affecting: Set<IPPrefix>? = nil,
                             _ body: @escaping @Sendable (Database) throws -> T) async throws -> (result: T, diff: RouteDiff) {
        try await commit(requestID: requestID, now: now) { change in
            let result = try body(change.db)
            let diff = if let affecting { try change.rederive(affecting, reason: reason) } else { try change.rederiveAll(reason: reason) }
            return (result, diff)
        }
    }

    /// The committed route diffs, in commit order: first the table at subscription.
    func routeDiffs() -> AsyncStream<RouteDiff> {
        let changes = subscribe()
        return AsyncStream { continuation in
            let task = Task {
                for await change in changes {
                    switch change {
                    case .snapshot(_, let routes, _): continuation.yield(routes)
                    case .routes(let diff): continuation.yield(diff)
                    default: continue
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
