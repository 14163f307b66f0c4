internal import Store

/// Keeps the route and session history bounded: rows older than `maxAge` go, and beyond
/// `maxRows` per table the oldest go. Pruning deletes in small transactions, so a large backlog
/// never holds the writer for long.
public struct HistoryRetention: Sendable, Equatable {
    public var maxAgeMilliseconds: Int64
    public var maxRows: Int
    /// Rows deleted per transaction.
    public var batch: Int

    public static let `default` = HistoryRetention(maxAgeDays: 90, maxRows: 1_000_000)

    public init(maxAgeDays: Int, maxRows: Int, batch: Int = 10_000) {
        maxAgeMilliseconds = Int64(maxAgeDays) * 86_400_000
        self.maxRows = maxRows
        self.batch = batch
    }

    /// How often `herald serve` looks whether a table is past its bounds (`isPastBounds`: two
    /// index lookups per table). A bulk change can add a million history rows at once; looking
    /// every 30 s, not every 10 minutes, keeps the tables near their cap.
    public static let checkInterval: Duration = .seconds(30)

    /// True when `route_events` or `peer_events` may hold more than `maxRows` rows or rows older
    /// than `maxAge`. Cheap (the id index only): ids only grow, so max − min + 1 ≥ the row count,
    /// and the lowest id is the oldest row. The read runs off the cooperative pool (`Blocking`):
    /// in cluster mode it is a round trip to the leader.
    public func isPastBounds(_ committer: Committer, now: Int64) async throws -> Bool {
        let maxAge = maxAgeMilliseconds, maxRows = maxRows, store = committer.store
        return try await Blocking.run { try store.read { db in
            for table in ["route_events", "peer_events"] {
                guard let row = try db.firstRow("SELECT min(id), max(id) FROM \(table)"),
                      let low: Int64 = try row.get(0), let high: Int64 = try row.get(1) else { continue }
                if high - low + 1 > Int64(maxRows) { return true }
                if let oldest: Int64 = try db.firstRow("SELECT at FROM \(table) WHERE id = ?", [low])?.get(0), oldest < now - maxAge {
                    return true
                }
            }
            return false
        } }
    }

    /// Deletes what is past the bounds in `route_events` and `peer_events`, each batch of rows as
    /// one change through the committer; returns how many rows.
    @discardableResult
    public func prune(_ committer: Committer, now: Int64) async throws -> Int {
        var deleted = 0
        let maxAge = maxAgeMilliseconds, maxRows = maxRows, batch = batch
        for table in ["route_events", "peer_events"] {
            // Age: the oldest first, a batch at a time.
            while true {
                let count = try await committer.commit { change in
                    try change.db.execute("DELETE FROM \(table) WHERE id IN (SELECT id FROM \(table) WHERE at < ? ORDER BY id LIMIT ?)",
                                          [now - maxAge, batch])
                    return change.db.changes
                }
                deleted += count
                if count < batch { break }
            }
            // Count: everything below the newest `maxRows` ids.
            while true {
                let count = try await committer.commit { change in
                    guard let cutoff: Int64 = try change.db.firstRow("SELECT id FROM \(table) ORDER BY id DESC LIMIT 1 OFFSET ?", [maxRows])?.get(0) else {
                        return 0
                    }
                    try change.db.execute("DELETE FROM \(table) WHERE id IN (SELECT id FROM \(table) WHERE id <= ? ORDER BY id LIMIT ?)",
                                          [cutoff, batch])
                    return change.db.changes
                }
                deleted += count
                if count < batch { break }
            }
        }
        if committer.replica != nil {
            // Cluster mode: a replica further behind than this re-derives everything (CatchUp).
            try await committer.commit { change in try ReplicationLog.prune(change.db, keep: Self.replicationLogRows) }
        }
        return deleted
    }

    /// Replication log rows kept (cluster mode): hours of changes at any homelab's pace.
    static let replicationLogRows = 100_000
}
