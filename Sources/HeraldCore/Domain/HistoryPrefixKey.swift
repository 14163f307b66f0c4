internal import IP
internal import Store

extension RouteHistory {
    /// `route_events.prefix_key` (migration 0006): a prefix as bytes that sort like `IPPrefix`
    /// (family, then network, then shorter first), so that the prefixes inside any prefix P are
    /// one range of keys, read through the index `route_events_by_key`.
    ///
    /// The key is a family tag (4 or 6), the network address in network byte order (4 or 16
    /// bytes, like the other `*_key` columns) and the length (one byte); SQLite compares BLOBs
    /// with memcmp(). A BLOB rather than hex text: half the bytes in every index entry, and the
    /// schema's convention. Q is inside P exactly when its key lies in `range(inside: P)`:
    /// - Q inside P has its network between P's network and P's last address, and is at least as
    ///   long as P, so its key is in the range.
    /// - A key in the range has P's tag (the tag leads, and one family's keys all have one
    ///   length), and a network M in P's block. If M is P's network, Q is at least as long as P
    ///   (the low end), so inside it. Otherwise M has a bit set past P's length, and a canonical
    ///   network has no bit set past its own length: Q is longer than P, and inside it.
    /// The tag keeps the families apart: without it, the 5-byte key of 10.0.0.0/8 would sort
    /// among the 17-byte keys of a00::/8's prefixes.
    enum PrefixKey {
        static func of(_ prefix: IPPrefix) -> [UInt8] {
            key(prefix.network, length: prefix.length)
        }

        /// The lowest and highest key of the prefixes inside `prefix` (itself included).
        static func range(inside prefix: IPPrefix) -> (low: [UInt8], high: [UInt8]) {
            (of(prefix), key(prefix.last, length: prefix.family.bitWidth))
        }

        private static func key(_ address: IPAddress, length: Int) -> [UInt8] {
            var key: [UInt8] = [address.family == .ipv4 ? 4 : 6]
            key += address.bytes
            key.append(UInt8(length))
            return key
        }
    }

    /// Gives up to `batch` rows written before migration 0006 (key NULL), after id `cursor`, their
    /// key: one multi-row UPDATE per 128 rows at most (dqlite runs each statement as a round trip
    /// to the leader). Returns the last id looked at and how many rows, nil when none is left. A
    /// row whose prefix text does not parse keeps no key (`list` tests it itself) and is passed over.
    static func fillPrefixKeys(_ db: Database, after cursor: Int64, batch: Int) throws -> (last: Int64, rows: Int)? {
        let rows = try db.rows("""
            SELECT id, prefix FROM route_events INDEXED BY route_events_by_key
            WHERE prefix_key IS NULL AND id > ? ORDER BY id LIMIT ?
            """, [cursor, batch])
        // UPDATE … FROM needs SQLite 3.33; the columns of a VALUES list are column1, column2 (SQLite's
        // "SELECT" documentation, "The VALUES clause").
        var keys = BulkInsert(db, "UPDATE route_events SET prefix_key = keyed.column2 FROM (", columns: 2,
                              tail: ") AS keyed WHERE route_events.id = keyed.column1")
        for row in rows {
            guard let prefix = IPPrefix(try row.get(1, as: String.self)) else { continue }
            keys.append(.integer(try row.get(0)))
            keys.append(.blob(PrefixKey.of(prefix)))
            try keys.endRow()
        }
        try keys.flush()
        return try rows.last.map { (try $0.get(0), rows.count) }
    }

    /// Keys every history row written before migration 0006 (see `PrefixKey`), `batch` rows per
    /// commit so that other changes wait behind one short batch, never the whole table. Run once
    /// after start, by the one writer (the leader in cluster mode); returns the rows looked at.
    /// Until it is done `list` stays correct: it tests rows without a key by their text.
    public static func fillPrefixKeys(_ committer: Committer, batch: Int = 10_000) async throws -> Int {
        var cursor: Int64 = 0
        var looked = 0
        while !Task.isCancelled {
            let after = cursor
            guard let filled = try await committer.commit({ change in try fillPrefixKeys(change.db, after: after, batch: batch) }) else { break }
            (cursor, looked) = (filled.last, looked + filled.rows)
        }
        return looked
    }
}
