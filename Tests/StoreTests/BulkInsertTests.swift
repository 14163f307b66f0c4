import Foundation
import Testing
@testable import Store

/// Multi-row INSERTs for bulk loads, and migration 0004 (cheaper CHECKs on routes and
/// route_events) keeping rows, ids and the history sequence.
@Suite struct BulkInsertTests {
    let directory = TemporaryDirectory()

    @Test func rowsAreWrittenInOrderAcrossStatements() throws {
        let db = try Database(path: directory.file("b.db"))
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, s TEXT) STRICT")
        var rows = BulkInsert(db, "INSERT INTO t (n, s)", columns: 2)
        #expect(rows.rowsPerStatement == 128)
        for n in 0..<1000 {
            rows.append(.integer(Int64(n)))
            rows.append(n % 3 == 0 ? .null : .text("row \(n)"))
            try rows.endRow()
            #expect(rows.pendingRows == (n + 1) % 128)
        }
        try rows.flush()
        #expect(rows.pendingRows == 0)
        let all = try db.rows("SELECT id, n, s FROM t ORDER BY id")
        #expect(all.count == 1000)
        #expect(try all.allSatisfy { try $0.get(0, as: Int64.self) == $0.get(1, as: Int64.self) + 1 })
        #expect(try all[1].get(2, as: String?.self) == "row 1" && all[3].get(2, as: String?.self) == nil)
    }

    @Test func aFailingStatementUndoesOnlyItsOwnRows() throws {
        let db = try Database(path: directory.file("b.db"))
        try db.execute("CREATE TABLE t (n INTEGER NOT NULL UNIQUE) STRICT")
        try db.transaction { db in
            var rows = BulkInsert(db, "INSERT INTO t (n)", columns: 1, tail: "ON CONFLICT (n) DO NOTHING")
            for n in [1, 2, 2, 3] {
                rows.append(.integer(Int64(n)))
                try rows.endRow()
            }
            try rows.flush()
            // A full statement (128 rows) whose last row conflicts: none of its rows stay.
            var full = BulkInsert(db, "INSERT INTO t (n)", columns: 1)
            #expect(throws: DatabaseError.self) {
                for n in 100..<227 {
                    full.append(.integer(Int64(n)))
                    try full.endRow()
                }
                full.append(.integer(1))
                try full.endRow()
            }
            #expect(full.pendingRows == 0)
            // A remainder is written row by row: the rows before the failing one stay.
            var rest = BulkInsert(db, "INSERT INTO t (n)", columns: 1)
            for n in [4, 5, 1] {
                rest.append(.integer(Int64(n)))
                try rest.endRow()
            }
            #expect(throws: DatabaseError.self) { try rest.flush() }
            #expect(rest.pendingRows == 0)
        }
        #expect(try db.rows("SELECT n FROM t ORDER BY n").map { try $0.get(0, as: Int.self) } == [1, 2, 3, 4, 5])
    }

    @Test func migration4KeepsRoutesHistoryAndItsSequence() throws {
        let migrations = Migrator.herald.migrations
        let db = try Database(path: directory.file("m.db"))
        try Migrator(migrations: Array(migrations.prefix(3))).migrate(db, now: 1)
        try db.execute("INSERT INTO routes (name, family, prefix, next_hops, created_at, updated_at) VALUES ('r', 'ipv4', '10.0.0.0/8', '[\"n1\",\"self\"]', 1, 2)")
        for prefix in ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"] {
            try db.execute("INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (5, 'announce', ?, 'ipv4', 'static', 'r', 'x')", [prefix])
        }
        // Retention deleted the newest row: the next id must still be 4, not 3.
        try db.execute("DELETE FROM route_events WHERE id = 3")
        #expect(try Migrator(migrations: Array(migrations.prefix(4))).migrate(db, now: 2).map(\.version) == [4])
        let route = try #require(try db.firstRow("SELECT name, next_hops, updated_at FROM routes"))
        #expect(try route.get(0, as: String.self) == "r" && route.get(1, as: String.self) == #"["n1","self"]"# && route.get(2, as: Int.self) == 2)
        try db.execute("INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (6, 'withdraw', '10.0.0.1/32', 'ipv4', 'static', 'r', 'y')")
        #expect(try db.rows("SELECT id FROM route_events ORDER BY id").map { try $0.get(0, as: Int.self) } == [1, 2, 4])
        let indexes = try db.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'route_events' ORDER BY name").map { try $0.get(0, as: String.self) }
        #expect(indexes == ["route_events_by_prefix", "route_events_by_time"])
        #expect(try db.firstRow("PRAGMA integrity_check")?.get(0, as: String.self) == "ok")
        // The same rules as before, cheaper: invalid JSON and names are still refused.
        for bad in ["INSERT INTO routes (name, family, prefix, next_hops, created_at, updated_at) VALUES ('x', 'ipv4', '10.1.0.0/16', '[]', 1, 1)",
                    "INSERT INTO routes (name, family, prefix, labels, created_at, updated_at) VALUES ('x', 'ipv4', '10.1.0.0/16', '[]', 1, 1)",
                    "INSERT INTO routes (name, family, prefix, announce, created_at, updated_at) VALUES ('x', 'ipv4', '10.1.0.0/16', '{', 1, 1)",
                    "INSERT INTO routes (name, family, prefix, created_at, updated_at) VALUES ('a b', 'ipv4', '10.1.0.0/16', 1, 1)",
                    "INSERT INTO routes (name, family, prefix, created_at, updated_at) VALUES ('A', 'ipv4', '10.1.0.0/16', 1, 1)",
                    "INSERT INTO routes (name, family, prefix, created_at, updated_at) VALUES ('-a', 'ipv4', '10.1.0.0/16', 1, 1)",
                    "INSERT INTO route_events (at, action, prefix, family, source, source_name, paths, reason) VALUES (0, 'announce', 'p', 'ipv4', 'static', 'r', '{}', 'x')",
                    "INSERT INTO route_events (at, action, prefix, family, source, source_name, paths, reason) VALUES (0, 'announce', 'p', 'ipv4', 'static', 'r', '[1', 'x')"] {
            #expect(throws: DatabaseError.self, "\(bad)") { try db.execute(bad) }
        }
        try db.execute("INSERT INTO routes (name, family, prefix, next_hops, labels, created_at, updated_at) VALUES ('ok-1.a_b', 'ipv4', '10.1.0.0/16', '[\"192.0.2.1\"]', '{\"a\":\"b\"}', 1, 1)")
    }

    /// Past 1000 WAL pages (4 MB with 4 KiB pages) the WAL is copied into the database file
    /// in the background (the commit itself does not wait for it), and closing still removes
    /// the WAL.
    @Test func theWALIsCheckpointedOffTheCommitPath() async throws {
        let path = directory.file("c.db")
        let store = try Store(path: path)
        let filler = String(repeating: "x", count: 4000)
        try store.write { db in
            try db.execute("CREATE TABLE big (t TEXT NOT NULL) STRICT")
            for _ in 0..<6000 { try db.execute("INSERT INTO big (t) VALUES (?)", [filler]) }
        }
        func size(_ file: String) -> Int {
            (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        }
        var copied = false
        for _ in 0..<200 where !copied {
            copied = size(path) > 6000 * 4000
            if !copied { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(copied, "the database file has \(size(path)) bytes")
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM big")?.get(0, as: Int.self) } == 6000)
        store.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    /// A database Herald creates has `Store.pageSize` pages; an existing file keeps its own; a
    /// backup takes the page size of what it copies.
    @Test func newDatabasesGetTheirPageSizeAndBackupsFollow() throws {
        func pageSize(_ path: String) throws -> Int? {
            try Database(path: path, mode: .readOnly).firstRow("PRAGMA page_size")?.get(0, as: Int.self)
        }
        let fresh = directory.file("new.db")
        let store = try Store(path: fresh)
        #expect(try pageSize(fresh) == Store.pageSize)
        try store.backup(to: directory.file("copy.db"))
        #expect(try pageSize(directory.file("copy.db")) == Store.pageSize)

        let old = directory.file("old.db")
        let created = try Database(path: old, pageSizeForNewFile: 8192)
        try created.execute("CREATE TABLE t (x INTEGER)")
        created.close()
        let reopened = try Store(path: old)
        #expect(try pageSize(old) == 8192)
        try reopened.backup(to: directory.file("old-copy.db"))
        #expect(try pageSize(directory.file("old-copy.db")) == 8192)
    }
}
