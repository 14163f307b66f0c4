import Foundation
import Testing
@testable import Store

@Suite struct MigrationTests {
    let directory = TemporaryDirectory()

    static let first = Migration(version: 1, name: "init", sql: "CREATE TABLE a (x INTEGER);\n")
    static let second = Migration(version: 2, name: "more", sql: "CREATE TABLE b (y INTEGER);\n")

    @Test func appliesInOrderAndRecords() throws {
        let db = try Database(path: directory.file("m.db"))
        let applied = try Migrator(migrations: [Self.second, Self.first]).migrate(db, now: 1234)
        #expect(applied.map(\.version) == [1, 2])
        let records = try Migrator(migrations: []).appliedMigrations(db)
        #expect(records.map(\.version) == [1, 2])
        #expect(records[0].name == "init" && records[0].checksum == Self.first.checksum && records[0].appliedAt == 1234)
        #expect(try db.firstRow("PRAGMA user_version")?.get(0, as: Int.self) == 2)
    }

    @Test func reapplyingIsANoOp() throws {
        let db = try Database(path: directory.file("m.db"))
        let migrator = Migrator(migrations: [Self.first, Self.second])
        try migrator.migrate(db, now: 1)
        #expect(try migrator.migrate(db, now: 2).isEmpty)
        #expect(try migrator.appliedMigrations(db).map(\.appliedAt) == [1, 1])
    }

    @Test func laterMigrationsApplyOnTopOfEarlierOnes() throws {
        let db = try Database(path: directory.file("m.db"))
        try Migrator(migrations: [Self.first]).migrate(db, now: 1)
        #expect(try Migrator(migrations: [Self.first, Self.second]).migrate(db, now: 2).map(\.version) == [2])
    }

    @Test func changedMigrationIsRefused() throws {
        let db = try Database(path: directory.file("m.db"))
        try Migrator(migrations: [Self.first]).migrate(db, now: 1)
        let edited = Migration(version: 1, name: "init", sql: "CREATE TABLE a (x INTEGER, z TEXT);\n")
        let error = try #require(throws: MigrationError.self) {
            try Migrator(migrations: [edited]).migrate(db, now: 2)
        }
        guard case .changedAfterApply(1, "init", _, _) = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains("never be edited"))
    }

    @Test func newerDatabaseIsRefused() throws {
        let path = directory.file("m.db")
        let db = try Database(path: path)
        try Migrator(migrations: [Self.first, Self.second]).migrate(db, now: 1)
        let error = try #require(throws: MigrationError.self) {
            try Migrator(migrations: [Self.first]).migrate(db, now: 2)
        }
        guard case .databaseIsNewer(_, 2, 1) = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains("newer Herald"))
    }

    @Test func renamedMigrationIsRefused() throws {
        let db = try Database(path: directory.file("m.db"))
        try Migrator(migrations: [Self.first]).migrate(db, now: 1)
        let renamed = Migration(version: 1, name: "start", sql: Self.first.sql)
        #expect(throws: MigrationError.self) { try Migrator(migrations: [renamed]).migrate(db, now: 2) }
    }

    @Test func failingMigrationLeavesNoTrace() throws {
        let db = try Database(path: directory.file("m.db"))
        let broken = Migration(version: 2, name: "broken", sql: "CREATE TABLE c (x INTEGER); CREATE TABLE a (dup INTEGER);\n")
        let error = try #require(throws: MigrationError.self) {
            try Migrator(migrations: [Self.first, broken]).migrate(db, now: 1)
        }
        guard case .failed(2, "broken", _) = error else { Issue.record("got \(error)"); return }
        #expect(try db.firstRow("SELECT 1 FROM sqlite_schema WHERE name = 'c'") == nil, "table c was rolled back")
        #expect(try Migrator(migrations: []).currentVersion(db) == 1)
    }

    @Test func storeRefusesANewerDatabaseAtOpen() throws {
        let path = directory.file("herald.db")
        let future = Migration(version: 9_999, name: "future", sql: "CREATE TABLE future (x INTEGER);\n")
        _ = try Store(path: path, migrator: Migrator(migrations: Migrator.herald.migrations + [future]))
        #expect(throws: MigrationError.self) { try Store(path: path) }
    }

    /// The SQL compiled into the binary must be exactly the files in Migrations/.
    @Test func embeddedMigrationsMatchTheSQLFiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        let embedded = Migrator.herald.migrations
        #expect(embedded.count == files.count, "run scripts/embed-migrations.sh")
        for (file, migration) in zip(files, embedded) {
            let stem = String(file.dropLast(4))
            let parts = stem.split(separator: "_", maxSplits: 1)
            #expect(Int(parts[0]) == migration.version, "\(file)")
            #expect(String(parts[1]) == migration.name, "\(file)")
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            #expect(text == migration.sql, "\(file) differs from the embedded copy: run scripts/embed-migrations.sh")
        }
        #expect(embedded.map(\.version) == Array(1...embedded.count), "versions are consecutive from 1")
    }

    /// 0006 keys the history by prefix: rows already there get no key (Herald fills it in after
    /// start), a key of the other family's length is refused, and the key index replaces the one
    /// on the prefix text.
    @Test func migration6AddsTheHistoryPrefixKey() throws {
        let migrations = Migrator.herald.migrations
        let db = try Database(path: directory.file("m.db"))
        try Migrator(migrations: Array(migrations.prefix(5))).migrate(db, now: 1)
        try db.execute("INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (5, 'announce', '10.0.0.1/32', 'ipv4', 'static', 'r', 'x')")
        #expect(try Migrator(migrations: Array(migrations.prefix(6))).migrate(db, now: 2).map(\.version) == [6])
        #expect(try #require(try db.firstRow("SELECT prefix_key FROM route_events")).get(0, as: [UInt8]?.self) == nil)
        let insert = """
            INSERT INTO route_events (at, action, prefix, family, source, source_name, reason, prefix_key)
            VALUES (6, 'announce', '10.0.0.1/32', ?, 'static', 'r', 'x', ?)
            """
        let key = DatabaseValue.blob([4, 10, 0, 0, 1, 32])
        try db.execute(insert, ["ipv4", key])
        #expect(throws: DatabaseError.self) { try db.execute(insert, ["ipv6", key]) }
        let indexes = try db.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'route_events' ORDER BY name").map { try $0.get(0, as: String.self) }
        #expect(indexes == ["route_events_by_key", "route_events_by_time"])
        #expect(try db.firstRow("PRAGMA integrity_check")?.get(0, as: String.self) == "ok")
    }

    @Test func heraldSchemaAppliesToAFreshFile() throws {
        let store = try Store(path: directory.file("herald.db"))
        #expect(store.schemaVersion == Migrator.herald.latestVersion)
        #expect(store.appliedAtOpen.count == Migrator.herald.migrations.count)
        let tables = try store.read { db in
            try db.rows("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").map { try $0.get(0, as: String.self) }
        }
        for table in ["speaker", "peers", "nodes", "pools", "pool_blocks", "allocations", "routes",
                      "route_events", "peer_events", "schema_migrations"] {
            #expect(tables.contains(table), "\(table)")
        }
        let again = try Store(path: directory.file("herald.db"))
        #expect(again.appliedAtOpen.isEmpty)
        #expect(try again.read { db in try db.firstRow("PRAGMA integrity_check")?.get(0, as: String.self) } == "ok")
    }
}
