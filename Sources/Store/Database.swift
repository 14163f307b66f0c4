/// One connection, handed by `Store` to a closure inside a transaction: statements, rows and
/// savepoints, and nothing of the engine behind it (the rest of Herald never opens one itself).
///
/// A `Database` is not thread-safe; `Store` owns the connections and hands one to a closure at a
/// time.
public final class Database {
    let engine: any ConnectionEngine
    private var statementCache: [String: Statement] = [:]
    private var transactionDepth = 0
    private var isClosed = false

    init(engine: any ConnectionEngine) {
        self.engine = engine
    }

    /// A SQLite connection to the file at `path` (see `SQLiteConnection`).
    convenience init(path: String, mode: SQLiteConnection.Mode = .readWrite,
                     busyTimeoutMilliseconds: Int32 = SQLiteConnection.defaultBusyTimeoutMilliseconds,
                     pageSizeForNewFile: Int? = nil) throws(DatabaseError) {
        self.init(engine: try SQLiteConnection(path: path, mode: mode, busyTimeoutMilliseconds: busyTimeoutMilliseconds,
                                               pageSizeForNewFile: pageSizeForNewFile))
    }

    /// The SQLite engine, when that is what runs (file-specific work: checkpoints, backups).
    var sqlite: SQLiteConnection? { engine as? SQLiteConnection }

    /// Names the database in errors.
    var path: String { engine.name }

    var opensReadOnly: Bool { sqlite?.opensReadOnly ?? false }

    /// Closes the connection; further use throws errors. Idempotent.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        statementCache.removeAll()
        engine.close()
    }

    deinit { close() }

    /// Frees memory the engine holds beyond what it is using.
    func releaseCache() { sqlite?.releaseCache() }

    func backup(to path: String) throws(DatabaseError) {
        guard let sqlite else { throw DatabaseError(extendedCode: DatabaseError.misuseCode, message: "this engine copies itself (Store.backup)") }
        try sqlite.backup(to: path)
    }

    private func checkOpen(_ sql: String) throws(DatabaseError) {
        if isClosed { throw DatabaseError(extendedCode: DatabaseError.misuseCode, message: "database \(path) is closed", sql: sql) }
    }

    // MARK: - Statements

    /// A prepared statement for `sql`, compiled once per connection and reused.
    public func cachedStatement(_ sql: String) throws(DatabaseError) -> Statement {
        try checkOpen(sql)
        if let statement = statementCache[sql] { return statement }
        let statement = Statement(try engine.prepare(sql), sql: sql)
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
        try engine.executeScript(sql)
    }

    /// The most `?` parameters one statement may take.
    public var maximumParameters: Int { engine.maximumParameters }

    /// The rowid of the last row inserted on this connection.
    public var lastInsertedRowID: Int64 { engine.lastInsertedRowID }

    /// Rows changed by the last INSERT, UPDATE or DELETE on this connection.
    public var changes: Int { engine.changes }

    var isInTransaction: Bool { engine.isInTransaction }

    /// Drops every cached statement (the engine's connection was replaced, and with it the
    /// statements it had prepared).
    func forgetStatements() { statementCache.removeAll() }

    // MARK: - Transactions

    enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        /// Takes the write lock at BEGIN, so a writer never fails half-way with SQLITE_BUSY.
        case immediate = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"
    }

    /// Set by `expectBulkWrite`: the cache goes back to the default at the end of
    /// the outermost transaction.
    private var cacheGrown = false

    /// Says that this transaction will write about `bytes` (a bulk load): the engine may prepare
    /// for it. SQLite grows the page cache until the outermost transaction ends (committed or
    /// rolled back), then gives the memory back; without room SQLite spills dirty pages to the
    /// WAL mid-transaction and reads them back (measured: a million history rows 4.2 s → 3.3 s).
    public func expectBulkWrite(bytes: Int) throws(DatabaseError) {
        let kibibytes = min(1 << 20, bytes / 1024)
        guard sqlite != nil, kibibytes > SQLiteConnection.defaultCacheKibibytes, transactionDepth > 0 else { return }
        try execute("PRAGMA cache_size = \(-kibibytes)")
        cacheGrown = true
    }

    private func restoreCache() {
        guard cacheGrown else { return }
        cacheGrown = false
        try? execute("PRAGMA cache_size = \(-SQLiteConnection.defaultCacheKibibytes)")
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
