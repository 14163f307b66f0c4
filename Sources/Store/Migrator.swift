internal import CSQLite

/// One numbered schema change, from `Migrations/NNNN_name.sql`.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Identifies the exact text that was applied, so an edited migration is noticed.
    public var checksum: String { "fnv1a64:" + Self.fnv1a64(Array(sql.utf8)) }

    /// FNV-1a, 64-bit: a change detector, not a security measure.
    static func fnv1a64(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A migration recorded in `schema_migrations`.
public struct AppliedMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let checksum: String
    public let appliedAt: Int64
}

/// Why a database cannot be brought to this build's schema. Each says what to do.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    /// A migration already applied to this database no longer has the same text.
    case changedAfterApply(version: Int, name: String, recorded: String, current: String)
    /// The database was migrated by a newer Herald that knows migrations this build does not.
    case databaseIsNewer(path: String, databaseVersion: Int, knownVersion: Int)
    /// The database records a migration this build has under another name.
    case nameMismatch(version: Int, recorded: String, current: String)
    /// Applying a migration failed; nothing of it was kept.
    case failed(version: Int, name: String, DatabaseError)

    public var description: String {
        switch self {
        case let .changedAfterApply(version, name, recorded, current):
            "migration \(version) (\(name)) was changed after it was applied (recorded checksum \(recorded), "
                + "this build has \(current)); applied migrations must never be edited: restore the file and add a new migration instead"
        case let .databaseIsNewer(path, databaseVersion, knownVersion):
            "database \(path) has schema version \(databaseVersion), but this Herald knows only up to \(knownVersion); "
                + "it was written by a newer Herald: run that version, or point --db at another file"
        case let .nameMismatch(version, recorded, current):
            "migration \(version) is recorded as \"\(recorded)\" but this build calls it \"\(current)\"; the database belongs to another schema history"
        case let .failed(version, name, error):
            "migration \(version) (\(name)) failed and was rolled back: \(error)"
        }
    }
}

/// Applies migrations in version order, each in its own transaction, and records them.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The newest version this build knows.
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    static let bookkeeping = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            checksum   TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT
        """

    /// The migrations recorded in the database, in order.
    public func appliedMigrations(_ db: Database) throws(DatabaseError) -> [AppliedMigration] {
        let exists = try db.firstRow("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'") != nil
        guard exists else { return [] }
        return try db.rows("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").map { row throws(DatabaseError) in
            AppliedMigration(version: try row.get(0), name: try row.get(1), checksum: try row.get(2), appliedAt: try row.get(3))
        }
    }

    /// Checks what is applied, refuses an edited or newer history, then applies what is missing.
    /// Returns the migrations applied now (empty when the database was already current).
    @discardableResult
    public func migrate(_ db: Database, now: Int64) throws -> [Migration] {
        try db.execute(Self.bookkeeping)
        let applied = try appliedMigrations(db)
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for record in applied {
            guard let migration = known[record.version] else {
                throw MigrationError.databaseIsNewer(path: db.path, databaseVersion: applied.last!.version, knownVersion: latestVersion)
            }
            guard migration.name == record.name else {
                throw MigrationError.nameMismatch(version: record.version, recorded: record.name, current: migration.name)
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError.changedAfterApply(version: record.version, name: record.name,
                                                       recorded: record.checksum, current: migration.checksum)
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        var done: [Migration] = []
        for migration in migrations where !appliedVersions.contains(migration.version) {
            do {
                try db.transaction(.immediate) { db in
                    try db.executeScript(migration.sql)
                    try db.execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                                   [migration.version, migration.name, migration.checksum, now])
                    try db.execute("PRAGMA user_version = \(migration.version)")
                }
            } catch let error as DatabaseError {
                throw MigrationError.failed(version: migration.version, name: migration.name, error)
            }
            done.append(migration)
        }
        // A migration may disable foreign keys for a table rebuild; make sure they hold now.
        if !done.isEmpty, let violation = try db.firstRow("PRAGMA foreign_key_check") {
            throw DatabaseError(extendedCode: csqlite_CONSTRAINT_FOREIGNKEY, message: "foreign key violation after migration: \(violation)")
        }
        return done
    }

    /// Checks the recorded history against the known migrations without writing anything (for
    /// a read-only database): the same refusals as `migrate`.
    public func verify(_ db: Database) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for record in try appliedMigrations(db) {
            guard let migration = known[record.version] else {
                throw MigrationError.databaseIsNewer(path: db.path, databaseVersion: record.version, knownVersion: latestVersion)
            }
            guard migration.name == record.name else {
                throw MigrationError.nameMismatch(version: record.version, recorded: record.name, current: migration.name)
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError.changedAfterApply(version: record.version, name: record.name,
                                                       recorded: record.checksum, current: migration.checksum)
            }
        }
    }

    /// The schema version of the database: the newest applied migration, 0 for a new file.
    public func currentVersion(_ db: Database) throws(DatabaseError) -> Int {
        try appliedMigrations(db).last?.version ?? 0
    }
}
