internal import IP
internal import Store

/// In cluster mode every replica runs its own committer against the one replicated database. The
/// replication log is how they keep their in-memory state (route table, speaker configuration,
/// nodes, health) in step: each committed batch appends one row saying what it touched, and every
/// replica applies the rows it has not seen, in revision order — inside its own write
/// transactions before its own changes (so a change is always derived against the latest
/// committed state), and in the background when idle (a follower learns a change within a poll).
///
/// The rows say *what* changed, not the values: a replica re-derives from the database, by the
/// same rules, exactly what the writer derived. The history rows were written once, by the
/// writer.
public enum ReplicationLog {
    /// What a batch touched.
    struct Effects: Sendable, Equatable {
        /// Prefixes whose routes may have changed (ignored when `allRoutes`).
        var prefixes: Set<IPPrefix> = []
        var allRoutes = false
        /// Peers added, changed or removed, by name.
        var peers: Set<String> = []
        var speaker = false
        var nodes = false
        /// Node health changed (the `node_health` rows).
        var health = false

        var isEmpty: Bool { prefixes.isEmpty && !allRoutes && peers.isEmpty && !speaker && !nodes && !health }

        /// Past this many prefixes a row says "all routes": a follower re-derives the table from
        /// the database (a bulk load) rather than reading a megabyte of prefixes.
        static let prefixLimit = 10_000

        mutating func formUnion(_ other: Effects) {
            allRoutes = allRoutes || other.allRoutes
            if !allRoutes { prefixes.formUnion(other.prefixes) }
            if prefixes.count > Self.prefixLimit { allRoutes = true }
            if allRoutes { prefixes = [] }
            peers.formUnion(other.peers)
            speaker = speaker || other.speaker
            nodes = nodes || other.nodes
            health = health || other.health
        }
    }

    /// One row of the log.
    struct Entry: Sendable, Equatable {
        let revision: Int64
        let replica: String
        let effects: Effects
    }

    /// Appends a row for `effects` and returns its revision.
    static func append(_ db: Database, _ effects: Effects, replica: String, now: Int64) throws -> Int64 {
        try db.execute("""
            INSERT INTO replication_log (at, replica, prefixes, all_routes, peers, speaker, nodes, health) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [now, replica, effects.allRoutes ? nil : encode(effects.prefixes), effects.allRoutes,
                  JSONColumn.encode(effects.peers.sorted()), effects.speaker, effects.nodes, effects.health])
        return db.lastInsertedRowID
    }

    /// The rows after `revision`, oldest first.
    static func entries(_ db: Database, after revision: Int64) throws -> [Entry] {
        try db.rows("""
            SELECT revision, replica, prefixes, all_routes, peers, speaker, nodes, health FROM replication_log
            WHERE revision > ? ORDER BY revision
            """, [revision]).map { row in
            let prefixes: [UInt8]? = try row.get(2)
            let effects = Effects(prefixes: try decode(prefixes ?? []), allRoutes: try row.get(3),
                                  peers: Set(try JSONColumn.decode([String].self, from: row.get(4), column: "peers")),
                                  speaker: try row.get(5), nodes: try row.get(6), health: try row.get(7))
            return Entry(revision: try row.get(0), replica: try row.get(1), effects: effects)
        }
    }

    /// The newest revision (0 for an empty log).
    static func latestRevision(_ db: Database) throws -> Int64 {
        try db.firstRow("SELECT coalesce(max(revision), 0) FROM replication_log")?.get(0) ?? 0
    }

    /// Keeps the newest `keep` rows: a replica further behind re-derives everything (`resync`).
    static func prune(_ db: Database, keep: Int) throws {
        try db.execute("DELETE FROM replication_log WHERE revision <= (SELECT max(revision) FROM replication_log) - ?", [keep])
    }

    /// The oldest revision still in the log (a replica whose revision is below it has missed rows).
    static func oldestRevision(_ db: Database) throws -> Int64? {
        try db.firstRow("SELECT min(revision) FROM replication_log")?.get(0)
    }

    // MARK: - Prefixes as bytes

    /// Each prefix as its length byte, then 4 or 16 address bytes after a family byte (4 or 6).
    static func encode(_ prefixes: Set<IPPrefix>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(prefixes.count * 7)
        for prefix in prefixes.sorted() {
            bytes.append(prefix.family == .ipv4 ? 4 : 6)
            bytes.append(UInt8(prefix.length))
            bytes += prefix.network.bytes
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> Set<IPPrefix> {
        var prefixes = Set<IPPrefix>()
        var index = 0
        while index < bytes.count {
            guard index + 2 <= bytes.count else { throw DatabaseError.typeMismatch("replication_log.prefixes is cut short") }
            let family: IPFamily = bytes[index] == 4 ? .ipv4 : .ipv6
            let size = family == .ipv4 ? 4 : 16
            let length = Int(bytes[index + 1])
            index += 2
            guard index + size <= bytes.count, length <= size * 8 else { throw DatabaseError.typeMismatch("replication_log.prefixes is malformed") }
            let bits = bytes[index..<(index + size)].reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
            prefixes.insert(IPPrefix(truncating: IPAddress(family: family, bits: bits), length: length))
            index += size
        }
        return prefixes
    }
}

/// Node health as committed, for every replica (cluster mode): the leader's health checks write
/// it, followers derive their routes from it, and a new leader starts from it, not from "all up".
enum StoredNodeHealth {
    static func down(_ db: Database) throws -> Set<String> {
        Set(try db.rows("SELECT node FROM node_health WHERE down = 1").map { try $0.get(0, as: String.self) })
    }

    static func set(_ db: Database, node: String, down: Bool, reason: String, now: Int64) throws {
        try db.execute("""
            INSERT INTO node_health (node, down, reason, since) VALUES (?, ?, ?, ?)
            ON CONFLICT (node) DO UPDATE SET down = excluded.down, reason = excluded.reason, since = excluded.since
            """, [node, down, reason, now])
    }
}
