import Foundation
import Testing
@testable import Store

/// A fresh directory per test, removed afterwards.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "herald-store-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct DatabaseTests {
    let directory = TemporaryDirectory()

    @Test func opensWithDurableSettings() throws {
        let db = try Database(path: directory.file("a.db"))
        #expect(try db.firstRow("PRAGMA journal_mode")?.get(0, as: String.self) == "wal")
        #expect(try db.firstRow("PRAGMA synchronous")?.get(0, as: Int.self) == 2, "2 is FULL")
        #expect(try db.firstRow("PRAGMA foreign_keys")?.get(0, as: Int.self) == 1)
    }

    /// `forEachTextRow` reads columns in place: equal exactly when the bytes are (length
    /// included, so a prefix of the text is not equal), NULL reads as empty, text copies out.
    @Test func textRowsCompareAndCopyInPlace() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n TEXT)")
        try db.execute("INSERT INTO t (s, n) VALUES (?, ?)", ["naïve ✓", String?.none])
        try db.execute("INSERT INTO t (s, n) VALUES (?, ?)", [String(repeating: "long text ", count: 20), ""])
        var seen: [(String, Bool, Bool, Bool)] = []
        try db.cachedStatement("SELECT s, n FROM t ORDER BY id").forEachTextRow { row in
            seen.append((row.string(0), row.text(0, equals: "naïve ✓"), row.text(0, equals: "naïve"), row.text(1, equals: "")))
        }
        #expect(seen.count == 2)
        #expect(seen[0] == ("naïve ✓", true, false, true))
        #expect(seen[1] == (String(repeating: "long text ", count: 20), false, false, true))
        // Arguments bind as for any query.
        var found: [String] = []
        try db.cachedStatement("SELECT s FROM t WHERE id = ?").forEachTextRow([2]) { found.append($0.string(0)) }
        #expect(found == [String(repeating: "long text ", count: 20)])
    }

    @Test func bindAndReadEveryType() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        let text = "naïve ✓ \u{0}inside"
        try db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [Int64.max, 2.5, text, [UInt8]([0, 1, 255]), String?.none])
        try db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [true, 0.0, "", [UInt8](), "x"])
        let rows = try db.rows("SELECT i, r, s, b, n FROM t ORDER BY rowid")
        #expect(try rows[0].get(0, as: Int64.self) == .max)
        #expect(try rows[0].get("r", as: Double.self) == 2.5)
        #expect(try rows[0].get("s", as: String.self) == text)
        #expect(try rows[0].get("b", as: [UInt8].self) == [0, 1, 255])
        #expect(try rows[0].get("n", as: String?.self) == nil)
        #expect(try rows[1].get(0, as: Bool.self) == true)
        #expect(rows[1]["b"] == .blob([]), "an empty blob stays a blob, not NULL")
    }

    @Test func readingTheWrongTypeNamesTheColumn() throws {
        let db = try Database(path: directory.file("a.db"))
        let row = try #require(try db.firstRow("SELECT 'x' AS name"))
        #expect {
            try row.get("name", as: Int.self)
        } throws: { error in
            (error as? DatabaseError)?.message.contains("column name holds") == true
        }
        #expect(throws: DatabaseError.self) { try row.get("missing", as: Int.self) }
    }

    @Test func syntaxErrorCarriesCodeMessageAndSQL() throws {
        let db = try Database(path: directory.file("a.db"))
        let error = try #require(throws: DatabaseError.self) { try db.execute("SELEKT 1") }
        #expect(error.code == .error)
        #expect(error.message.contains("syntax error"))
        #expect(error.sql == "SELEKT 1")
        #expect(error.description.contains("SELEKT 1"))
    }

    @Test func leftoverSQLIsRejected() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.execute("CREATE TABLE t (x INTEGER)")
        let error = try #require(throws: DatabaseError.self) {
            try db.execute("INSERT INTO t VALUES (1); DROP TABLE t")
        }
        #expect(error.message.contains("leftover SQL"))
        #expect(try db.firstRow("SELECT count(*) FROM t")?.get(0, as: Int.self) == 0, "nothing ran")
        // Trailing whitespace, semicolons and comments are not a second statement.
        try db.execute("INSERT INTO t VALUES (1); -- done\n /* really */ ;")
        #expect(try db.firstRow("SELECT count(*) FROM t")?.get(0, as: Int.self) == 1)
    }

    @Test func wrongArgumentCountIsAnError() throws {
        let db = try Database(path: directory.file("a.db"))
        let error = try #require(throws: DatabaseError.self) { try db.execute("SELECT ?, ?", [1]) }
        #expect(error.message.contains("takes 2 arguments, got 1"))
    }

    @Test func statementsAreCached() throws {
        let db = try Database(path: directory.file("a.db"))
        let first = try db.cachedStatement("SELECT 1")
        let second = try db.cachedStatement("SELECT 1")
        #expect(first === second)
    }

    @Test func constraintViolationsAreTyped() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.executeScript("""
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (name <> ''));
            CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
            CREATE TRIGGER no_bob BEFORE INSERT ON parent WHEN NEW.name = 'bob' BEGIN SELECT RAISE(ABORT, 'no bob'); END;
            """)
        try db.execute("INSERT INTO parent (id, name) VALUES (1, 'a')")
        func violation(_ sql: String) throws -> DatabaseError.Constraint? {
            try #require(throws: DatabaseError.self) { try db.execute(sql) }.constraint
        }
        #expect(try violation("INSERT INTO parent (name) VALUES ('a')") == .unique)
        #expect(try violation("INSERT INTO parent (id, name) VALUES (1, 'b')") == .unique)
        #expect(try violation("INSERT INTO parent (name) VALUES ('')") == .check)
        #expect(try violation("INSERT INTO parent (name) VALUES (NULL)") == .notNull)
        #expect(try violation("INSERT INTO child VALUES (42)") == .foreignKey)
        #expect(try violation("INSERT INTO parent (name) VALUES ('bob')") == .trigger)
    }

    @Test func transactionCommitsOrRollsBack() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.execute("CREATE TABLE t (x INTEGER)")
        try db.transaction { db in try db.execute("INSERT INTO t VALUES (1)") }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction { db in
                try db.execute("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try db.rows("SELECT x FROM t").map { try $0.get(0, as: Int.self) } == [1])
        #expect(!db.isInTransaction)
    }

    @Test func nestedTransactionsUseSavepoints() throws {
        let db = try Database(path: directory.file("a.db"))
        try db.execute("CREATE TABLE t (x INTEGER)")
        struct Boom: Error {}
        try db.transaction { db in
            try db.execute("INSERT INTO t VALUES (1)")
            // The inner failure undoes only the inner work when the outer body handles it.
            do {
                try db.transaction { db in
                    try db.execute("INSERT INTO t VALUES (2)")
                    try db.transaction { db in try db.execute("INSERT INTO t VALUES (3)") }
                    throw Boom()
                }
            } catch is Boom {}
            try db.transaction { db in try db.execute("INSERT INTO t VALUES (4)") }
        }
        #expect(try db.rows("SELECT x FROM t ORDER BY x").map { try $0.get(0, as: Int.self) } == [1, 4])

        // An outer failure undoes everything, including committed savepoints.
        #expect(throws: Boom.self) {
            try db.transaction { db in
                try db.transaction { db in try db.execute("INSERT INTO t VALUES (5)") }
                throw Boom()
            }
        }
        #expect(try db.rows("SELECT x FROM t ORDER BY x").map { try $0.get(0, as: Int.self) } == [1, 4])
        #expect(!db.isInTransaction)
    }

    @Test func readOnlyConnectionRefusesWrites() throws {
        let path = directory.file("a.db")
        let writer = try Database(path: path)
        try writer.execute("CREATE TABLE t (x INTEGER)")
        try writer.execute("INSERT INTO t VALUES (7)")
        let reader = try Database(path: path, mode: .readOnly)
        #expect(try reader.firstRow("SELECT x FROM t")?.get(0, as: Int.self) == 7)
        let error = try #require(throws: DatabaseError.self) { try reader.execute("INSERT INTO t VALUES (8)") }
        #expect(error.code == .readOnly)
    }

    @Test func openingAMissingDirectoryFailsClearly() {
        let error = #expect(throws: DatabaseError.self) {
            try Database(path: "/nonexistent-herald-dir/x.db")
        }
        #expect(error?.code == .cantOpen)
        #expect(error?.message.contains("/nonexistent-herald-dir/x.db") == true)
    }
}

@Suite struct StoreTests {
    let directory = TemporaryDirectory()

    @Test func writesAreVisibleToReadersAndNewConnections() throws {
        let path = directory.file("herald.db")
        let store = try Store(path: path)
        try store.write { db in
            try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES ('n1', 0, 0)")
        }
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM nodes")!.get(0, as: Int.self) } == 1)
        let other = try Database(path: path, mode: .readOnly)
        #expect(try other.firstRow("SELECT name FROM nodes")?.get(0, as: String.self) == "n1")
    }

    @Test func concurrentWritersAreSerialised() async throws {
        let store = try Store(path: directory.file("herald.db"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<32 {
                group.addTask {
                    try store.write { db in
                        try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES (?, 0, 0)", ["n\(i)"])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM nodes")!.get(0, as: Int.self) } == 32)
    }

    @Test func failedWriteLeavesNothingBehind() throws {
        let store = try Store(path: directory.file("herald.db"))
        #expect(throws: DatabaseError.self) {
            try store.write { db in
                try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES ('ok', 0, 0)")
                try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES ('Bad Name', 0, 0)")
            }
        }
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM nodes")!.get(0, as: Int.self) } == 0)
    }
}

@Suite struct BackupTests {
    let directory = TemporaryDirectory()

    /// A backup taken while writers commit is one consistent snapshot: each writer's rows are
    /// either all in the copy or all absent, and the copy passes integrity_check.
    @Test func consistentUnderConcurrentWrites() async throws {
        let store = try Store(path: directory.file("live.db"))
        let writers = Task.detached {
            for batch in 0..<300 {
                try store.write { db in
                    // Each transaction inserts a pair; a torn copy would show an odd count.
                    try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES (?, 0, 0)", ["a\(batch)"])
                    try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES (?, 0, 0)", ["b\(batch)"])
                }
            }
        }
        var copies: [String] = []
        for index in 0..<5 {
            let path = directory.file("copy\(index).db")
            try store.backup(to: path)
            copies.append(path)
        }
        try await writers.value
        for path in copies {
            let copy = try Database(path: path, mode: .readOnly)
            #expect(try copy.firstRow("PRAGMA integrity_check")?.get(0, as: String.self) == "ok")
            let count = try copy.firstRow("SELECT count(*) FROM nodes")!.get(0, as: Int.self)
            #expect(count % 2 == 0, "a copy holds whole transactions only (\(count) rows)")
            let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
            #expect(walSize == 0, "the copy is self-contained")
        }
        let restored = try Store(path: copies.last!)
        #expect(restored.appliedAtOpen.isEmpty, "a copy opens as a current database")
    }
}

/// The database holds TCP MD5 passwords in clear: Herald creates it, its WAL and shared-memory
/// files and every backup readable by the owner only, whatever the umask.
@Suite struct FileModeTests {
    let directory = TemporaryDirectory()

    private func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func databaseAndBackupsAreCreatedOwnerOnly() throws {
        let path = directory.file("herald.db")
        let store = try Store(path: path)
        try store.write { db in try db.execute("INSERT INTO nodes (name, created_at, updated_at) VALUES ('n1', 0, 0)") }
        for file in [path, path + "-wal", path + "-shm"] {
            let found = try mode(file)
            #expect(found == 0o600, "\(file) is \(String(found, radix: 8))")
        }
        let copy = directory.file("copy.db")
        try store.backup(to: copy)
        let copyMode = try mode(copy)
        #expect(copyMode == 0o600, "a backup is \(String(copyMode, radix: 8))")
        let offline = directory.file("offline.db")
        try Store.backup(databaseAt: path, to: offline)
        let offlineMode = try mode(offline)
        #expect(offlineMode == 0o600, "herald backup's copy is \(String(offlineMode, radix: 8))")
        // A copy is one self-contained file (issue #18: -wal and -shm were left beside it), and
        // a store opened on it (a restore) works, in WAL mode again.
        for file in [copy, offline] {
            #expect(!FileManager.default.fileExists(atPath: file + "-wal") && !FileManager.default.fileExists(atPath: file + "-shm"), "\(file)")
        }
        let restored = try Store(path: offline)
        #expect(try restored.read { db in try db.firstRow("SELECT count(*) FROM nodes")?.get(0, as: Int.self) } == 1)
        #expect(try restored.read { db in try db.firstRow("PRAGMA journal_mode")?.get(0, as: String.self) } == "wal")
    }

    @Test func anExistingFileKeepsItsMode() throws {
        let path = directory.file("shared.db")
        #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]))
        _ = try Store(path: path)
        #expect(try mode(path) == 0o640, "the owner's choice stands")
    }
}
