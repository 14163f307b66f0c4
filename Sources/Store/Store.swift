internal import Synchronization

/// Herald's database: one writer connection and one reader connection over a SQLite file.
///
/// All writes go through the single writer, one transaction at a time, so concurrent API calls
/// never interleave half-done changes and never fail with SQLITE_BUSY against each other.
/// Reads use their own connection and, thanks to WAL, see the last committed state without
/// waiting for a writer. A `write` that returns has committed with `synchronous=FULL`.
public final class Store: Sendable {
    public let path: String
    private let writer: GuardedConnection
    private let reader: GuardedConnection
    /// The schema version after opening (the newest applied migration).
    public let schemaVersion: Int
    /// Migrations applied while opening (empty when the file was already current).
    public let appliedAtOpen: [Migration]

    /// Opens (creating if needed) the database at `path` and brings it to `migrator`'s schema.
    /// Throws `MigrationError` for an edited migration or a database from a newer Herald.
    public init(path: String, migrator: Migrator = .herald, now: Int64 = Clock.nowMilliseconds()) throws {
        self.path = path
        let writer = try Database(path: path, mode: .readWrite)
        appliedAtOpen = try migrator.migrate(writer, now: now)
        schemaVersion = try migrator.currentVersion(writer)
        self.writer = GuardedConnection(writer)
        self.reader = GuardedConnection(try Database(path: path, mode: .readOnly))
    }

    /// Closes both connections, the reader first, so that the writer's close (the last one)
    /// checkpoints the WAL into the main file and removes it. Further use fails.
    public func close() {
        reader.close()
        writer.close()
    }

    /// Runs `body` in one IMMEDIATE transaction on the writer connection; returns after COMMIT.
    public func write<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try writer.withConnection { db in
            try db.transaction(.immediate, body)
        }
    }

    /// Like `write`, then runs `afterCommit` with the result once COMMIT succeeded, still holding
    /// the writer lock: whatever `afterCommit` publishes is published in commit order, and only
    /// for commits that happened.
    public func write<T: Sendable>(_ body: (Database) throws -> T, afterCommit: (T) -> Void) throws -> T {
        try writer.withConnection { db in
            let result = try db.transaction(.immediate, body)
            afterCommit(result)
            return result
        }
    }

    /// Writes a consistent copy of the database to `path` (which must not exist) while writes go
    /// on; `herald serve --db path` on the copy restores it.
    public func backup(to path: String) throws {
        try reader.withConnection { db in try db.backup(to: path) }
    }

    /// Runs `body` on the reader connection in one read transaction (a consistent snapshot).
    public func read<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try reader.withConnection { db in
            try db.transaction(.deferred, body)
        }
    }
}

/// A connection used by one thread at a time. The only `@unchecked Sendable` in Store: the
/// connection is private and every use goes through the lock.
final class GuardedConnection: @unchecked Sendable {
    private let lock = Mutex(())
    private let connection: Database

    init(_ connection: Database) { self.connection = connection }

    func close() {
        lock.withLock { _ in connection.close() }
    }

    func withConnection<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try lock.withLock { _ in try body(connection) }
    }
}

/// Wall-clock milliseconds since the Unix epoch, the time unit of every `*_at` column.
public enum Clock {
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
