internal import CSQLite

/// One connection, handed by `Store` to a closure inside a transaction: statements, rows and
/// savepoints, and nothing of the engine behind it (the rest of Herald never opens one itself).
///
/// A `Database` is not thread-safe; `Store` owns the connections and hands one to a closure at a
/// time. The SQLite engine: It opens in WAL mode with `synchronous=FULL`, so a transaction that returned from
/// `commit` survives a process crash or power loss, and with foreign keys enforced.
public final class Database {
    enum Mode: Sendable {
        /// Read-write; creates the file if missing.
        case readWrite
        /// Read-only; the file must exist. Used for reader connections beside the one writer.
        case readOnly
        /// Read-only on a read-only file system, where SQLite cannot create the WAL index
        /// (`-shm`) a WAL database needs: opened `immutable=1`, without locks. Only safe when no
        /// `-wal` file holds commits (the caller checks) and nothing else can write the file.
        case immutable
    }

    let connection: OpaquePointer
    let path: String
    let mode: Mode
    private var statementCache: [String: Statement] = [:]
    private var transactionDepth = 0

    /// How long a connection waits for another's lock before failing with SQLITE_BUSY.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000

    /// Process-wide SQLite settings, applied once before the first connection opens.
    private static let configureSQLite: Void = { _ = csqlite_disable_memstatus() }()

    /// `pageSizeForNewFile`: the page size of the file if this connection creates it (SQLite
    /// fixes it with the first table, and a WAL database cannot change it later); ignored for
    /// an existing file.
    init(path: String, mode: Mode = .readWrite, busyTimeoutMilliseconds: Int32 = Database.defaultBusyTimeoutMilliseconds,
                pageSizeForNewFile: Int? = nil) throws(DatabaseError) {
        Self.configureSQLite
        self.path = path
        self.mode = mode
        var connection: OpaquePointer?
        let flags = (mode == .readWrite ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY)
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | (mode == .immutable ? SQLITE_OPEN_URI : 0)
        let name = mode == .immutable ? Self.immutableURI(path) : path
        let code = sqlite3_open_v2(name, &connection, flags, nil)
        guard code == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(connection)
            throw DatabaseError(extendedCode: code, message: "cannot open \(path): \(message)")
        }
        self.connection = connection
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, busyTimeoutMilliseconds)
        do throws(DatabaseError) {
            if mode == .readWrite {
                if let pageSizeForNewFile { try execute("PRAGMA page_size = \(pageSizeForNewFile)") }
                let journal = try firstRow("PRAGMA journal_mode = WAL")?.get(0, as: String.self)
                guard journal == "wal" else {
                    throw DatabaseError(extendedCode: SQLITE_ERROR, message: "cannot switch \(path) to WAL journal mode (got \(journal ?? "nothing"))")
                }
            }
            // FULL: WAL is synced at every commit, so an acknowledged write survives power loss,
            // not only a process crash (NORMAL would lose the last commits on power loss).
            try execute("PRAGMA synchronous = FULL")
            try execute("PRAGMA foreign_keys = ON")
            if mode != .readWrite {
                try execute("PRAGMA query_only = ON")
                // Opening is lazy: read the schema now so that a file SQLite cannot read (a WAL
                // database on a read-only file system without its -shm) fails here, not later.
                _ = try firstRow("SELECT count(*) FROM sqlite_schema")
            }
            // SQLite's default page cache is 2 MiB. A bulk load of a million routes updates
            // indexes in random order, and with a small cache every transaction spills pages to
            // the WAL again and again (measured: 1M history rows 8.9 s → 3.7 s with a larger
            // cache). Pages are allocated only as they are used; small databases stay small.
            if mode == .readWrite { try execute("PRAGMA cache_size = \(-Self.defaultCacheKibibytes)") }
        } catch {
            statementCache.removeAll()
            sqlite3_close_v2(connection)
            throw error
        }
    }

    /// `file:` URI for `path` with `immutable=1` (RFC 8089; `?` and `#` must be escaped).
    static func immutableURI(_ path: String) -> String {
        var escaped = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "%"): escaped += "%" + String(byte, radix: 16, uppercase: true)
            default: escaped.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return "file:" + escaped + "?immutable=1"
    }

    private var isClosed = false

    /// True when SQLite opened the file read-only although asked for read-write (it does that
    /// silently when the file or its file system is write-protected).
    var opensReadOnly: Bool { sqlite3_db_readonly(connection, "main") == 1 }

    /// Closes the connection; further use throws SQLITE_MISUSE errors. Idempotent.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        statementCache.removeAll()
        sqlite3_close_v2(connection)
    }

    deinit { close() }

    /// Frees the page cache this connection holds beyond what it is using.
    func releaseCache() {
        if !isClosed { _ = sqlite3_db_release_memory(connection) }
    }

    /// Removes a WAL hook (and so any automatic checkpoint) from this connection.
    func detachWALHook() {
        if !isClosed { sqlite3_wal_hook(connection, nil, nil) }
    }

    private func checkOpen(_ sql: String) throws(DatabaseError) {
        if isClosed { throw DatabaseError(extendedCode: SQLITE_MISUSE, message: "database \(path) is closed", sql: sql) }
    }

    // MARK: - Statements

    /// A prepared statement for `sql`, compiled once per connection and reused.
    public func cachedStatement(_ sql: String) throws(DatabaseError) -> Statement {
        try checkOpen(sql)
        if let statement = statementCache[sql] { return statement }
        let statement = try Statement(connection: connection, sql: sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs one statement with arguments.
    public func execute(_ sql: String, _ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) {
        try cachedStatement(sql).execute(arguments)
    }

    public func rows(_ sql: String, _ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) -> [Row] {
        try cachedStatement(sql).rows(arguments)
    }

    public func firstRow(_ sql: String, _ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) -> Row? {
        try cachedStatement(sql).firstRow(arguments)
    }

    /// Runs a script of several statements without arguments (migrations). Only for trusted SQL.
    func executeScript(_ sql: String) throws(DatabaseError) {
        try checkOpen(sql)
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(connection, sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(connection))
            sqlite3_free(message)
            throw DatabaseError(extendedCode: sqlite3_extended_errcode(connection), message: text, sql: sql)
        }
    }

    /// The rowid of the last row inserted on this connection.
    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(connection) }

    /// Rows changed by the last INSERT, UPDATE or DELETE on this connection.
    public var changes: Int { Int(sqlite3_changes64(connection)) }

    var isInTransaction: Bool { sqlite3_get_autocommit(connection) == 0 }

    // MARK: - Backup

    /// Copies this database into a new file at `path` with SQLite's online backup API, while
    /// other connections keep reading and writing. The copy is one consistent snapshot: by
    /// default all pages are copied in one step, inside one read transaction, which WAL lets
    /// writers run beside; with smaller steps a change by another connection restarts the copy
    /// (sqlite3_backup_step), so what lands is always the state at one commit.
    func backup(to path: String, pagesPerStep: Int32 = -1) throws(DatabaseError) {
        try checkOpen("backup")
        // SQLite cannot back up into a WAL file of another page size: the copy takes this one's.
        let pageSize = try firstRow("PRAGMA page_size")?.get(0, as: Int.self)
        let destination = try Database(path: path, mode: .readWrite, pageSizeForNewFile: pageSize)
        guard let backup = sqlite3_backup_init(destination.connection, "main", connection, "main") else {
            throw DatabaseError(extendedCode: sqlite3_extended_errcode(destination.connection),
                               message: "cannot start backup to \(path): \(String(cString: sqlite3_errmsg(destination.connection)))")
        }
        var code: Int32
        repeat {
            code = sqlite3_backup_step(backup, pagesPerStep)
            if code == SQLITE_BUSY || code == SQLITE_LOCKED { sqlite3_sleep(5) }
        } while code == SQLITE_OK || code == SQLITE_BUSY || code == SQLITE_LOCKED
        let finish = sqlite3_backup_finish(backup)
        guard code == SQLITE_DONE, finish == SQLITE_OK else {
            throw DatabaseError(extendedCode: code == SQLITE_DONE ? finish : code,
                               message: "backup to \(path) failed: \(String(cString: sqlite3_errmsg(destination.connection)))")
        }
        // Leave a self-contained file: fold the copy's WAL into it.
        try destination.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        destination.close()
    }

    // MARK: - Transactions

    enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        /// Takes the write lock at BEGIN, so a writer never fails half-way with SQLITE_BUSY.
        case immediate = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"
    }

    /// The page cache of a read-write connection, in KiB.
    static let defaultCacheKibibytes = 65536
    /// Set by `expectBulkWrite`: the cache goes back to the default at the end of
    /// the outermost transaction.
    private var cacheGrown = false

    /// Says that this transaction will write about `bytes` (a bulk load): the engine may prepare
    /// for it. SQLite grows the page cache until the outermost transaction ends (committed or
    /// rolled back), then gives the memory back; without room SQLite spills dirty pages to the
    /// WAL mid-transaction and reads them back (measured: a million history rows 4.2 s → 3.3 s).
    public func expectBulkWrite(bytes: Int) throws(DatabaseError) {
        let kibibytes = min(1 << 20, bytes / 1024)
        guard kibibytes > Self.defaultCacheKibibytes, transactionDepth > 0 else { return }
        try execute("PRAGMA cache_size = \(-kibibytes)")
        cacheGrown = true
    }

    private func restoreCache() {
        guard cacheGrown else { return }
        cacheGrown = false
        try? execute("PRAGMA cache_size = \(-Self.defaultCacheKibibytes)")
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    /// Nested calls use savepoints, so an inner failure rolls back only the inner work
    /// (if the outer body catches the error).
    /// Runs `body` in a savepoint of the current transaction (a transaction of its own when none
    /// is open): if `body` throws, only its work is undone.
    public func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        try transaction(.immediate, body)
    }

    func transaction<T>(_ kind: TransactionKind, _ body: (Database) throws -> T) throws -> T {
        if transactionDepth > 0 { return try savepoint(body) }
        try execute("BEGIN \(kind.rawValue) TRANSACTION")
        transactionDepth += 1
        defer { restoreCache() }
        let result: T
        do {
            result = try body(self)
        } catch {
            transactionDepth -= 1
            rollbackIfNeeded()
            throw error
        }
        transactionDepth -= 1
        do {
            try execute("COMMIT TRANSACTION")
        } catch {
            rollbackIfNeeded()
            throw error
        }
        return result
    }

    private func savepoint<T>(_ body: (Database) throws -> T) throws -> T {
        let name = "herald_sp\(transactionDepth)"
        try execute("SAVEPOINT \(name)")
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        let result: T
        do {
            result = try body(self)
        } catch {
            // ROLLBACK TO keeps the savepoint open; RELEASE closes it (SQLite "SAVEPOINT" docs).
            try? execute("ROLLBACK TRANSACTION TO SAVEPOINT \(name)")
            try? execute("RELEASE SAVEPOINT \(name)")
            throw error
        }
        try execute("RELEASE SAVEPOINT \(name)")
        return result
    }

    private func rollbackIfNeeded() {
        if isInTransaction { try? execute("ROLLBACK TRANSACTION") }
    }
}
