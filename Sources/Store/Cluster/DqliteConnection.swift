internal import DqliteWire
#if canImport(Glibc)
internal import Glibc
#endif

/// The cluster engine: one connection to the dqlite leader, through which a `Database` runs its
/// statements and transactions. Used by one thread at a time (the store's lock).
///
/// When the leader goes (a failure, a new election, a partition), the next use finds the new
/// leader and prepares its statements again. A transaction cannot survive that: if the leader is
/// lost inside one, every statement fails until the caller rolls back, so no statement of a
/// half-done transaction can run outside it on the new leader. A COMMIT whose answer was lost
/// may or may not have happened: it throws `DatabaseError.outcomeUnknown`.
final class DqliteConnection: ConnectionEngine {
    let client: ClusterClient
    /// The database's name in the cluster.
    let database: String
    private var socket: DqliteSocket?
    private var databaseID: UInt32 = 0
    /// Bumped at each new leader connection: statements prepared on an older one are prepared
    /// again.
    private(set) var generation = 0
    private(set) var lastInsertedRowID: Int64 = 0
    private(set) var changes = 0
    private(set) var isInTransaction = false
    /// The leader was lost inside the open transaction.
    private var broken = false

    init(client: ClusterClient, database: String) {
        self.client = client
        self.database = database
    }

    var name: String { "the cluster's database \"\(database)\"" }

    /// dqlite 1.11 reads a parameter count of one byte whatever the schema says.
    var maximumParameters: Int { 255 }

    func close() {
        socket?.close()
        socket = nil
    }

    /// The connection to the leader, opened (and the database opened on it) if needed.
    func session() throws(DatabaseError) -> (DqliteSocket, UInt32) {
        if broken {
            throw DatabaseError.unavailable("the cluster's leader was lost inside this transaction; it was not committed")
        }
        if let socket, socket.isOpen { return (socket, databaseID) }
        let fresh = try client.connectToLeader()
        guard case .database(let id) = try fresh.call(.open(name: database)) else {
            fresh.close()
            throw DatabaseError.unavailable("the cluster's leader \(fresh.address) did not open database \(database)")
        }
        socket = fresh
        databaseID = id
        generation += 1
        // Per connection, as with SQLite: the leader keeps one SQLite connection per client.
        _ = try call(.execSQL(database: id, sql: "PRAGMA foreign_keys = ON"), sql: "PRAGMA foreign_keys = ON")
        return (fresh, id)
    }

    /// Sends a request on the leader connection and returns the answer; a FAILURE becomes a
    /// `DatabaseError` with SQLite's code (dqlite passes SQLite's through), a lost leader
    /// `.unavailable` (or `.outcomeUnknown` for a COMMIT).
    func call(_ request: DqliteRequest, sql: String) throws(DatabaseError) -> DqliteResponse {
        guard let socket, socket.isOpen else { throw leaderLost(sql, "no connection") }
        let answer: DqliteResponse
        do { answer = try socket.call(request) } catch { throw leaderLost(sql, error.message) }
        if case .failure(let failure) = answer {
            if failure.code == DqliteFailure.notLeader || failure.code == DqliteFailure.leadershipLost || failure.code == Self.raftNotLeader
                || failure.code == Self.databaseClosed {
                self.socket?.close()
                self.socket = nil
                throw leaderLost(sql, failure.message)
            }
            throw DatabaseError(extendedCode: Int32(truncatingIfNeeded: failure.code), message: failure.message, sql: sql)
        }
        return answer
    }

    /// dqlite 1.11 answers a transaction's last EXEC with Raft's own RAFT_NOTLEADER (7), not
    /// translated, when Raft refuses its frames — the leader is handing leadership over (POST
    /// /v1/cluster/transfer) or has just lost it — so the code reads as SQLITE_NOMEM, with
    /// whatever message the connection had ("no more rows available").
    static let raftNotLeader: UInt64 = 7

    /// dqlite 1.11 closes a connection's database when its node stops being the leader (a
    /// leadership transfer, a lost election); a request on that connection then fails with
    /// SQLITE_NOTFOUND (12) "no database opened". The leader is gone for this connection: find
    /// the new one. (ClusterInteropTests' rolling restart met it about once in three runs as a
    /// 500, in the middle of a transaction and at COMMIT.)
    static let databaseClosed: UInt64 = 12

    private func leaderLost(_ sql: String, _ why: String) -> DatabaseError {
        socket?.close()
        socket = nil
        if isInTransaction { broken = true }
        if Self.keyword(sql) == "COMMIT" || Self.keyword(sql) == "END" {
            return DatabaseError.outcomeUnknown("the cluster's leader was lost while committing (\(why)); the change may or may not have been made — retry it (every change is an idempotent PUT)")
        }
        return DatabaseError.unavailable("the cluster's leader was lost (\(why)); the change was not made")
    }

    /// Runs `attempt`, trying again where that cannot repeat anything:
    /// - when the leader connection turns out to be gone before anything was done — outside a
    ///   transaction, for a statement that changes nothing or opens one (BEGIN) — on the new
    ///   leader, once. A statement inside a transaction is never retried: the transaction died
    ///   with the connection.
    /// - when BEGIN finds another replica's write transaction under way (dqlite's leader answers
    ///   SQLITE_BUSY at once, where a local SQLite would wait), for up to `busyTimeout`, as
    ///   SQLite's busy timeout does for the single-file store.
    func retrying<T>(_ sql: String, _ attempt: () throws(DatabaseError) -> T) throws(DatabaseError) -> T {
        let keyword = Self.keyword(sql)
        let deadline = DqliteSocket.now() + Self.busyTimeoutMilliseconds
        var pause: UInt32 = 1_000
        var newLeaderTried = false
        while true {
            do {
                return try attempt()
            } catch {
                if keyword == "BEGIN", error.code == .busy || error.code == .locked, DqliteSocket.now() < deadline {
                    usleep(pause)
                    pause = min(pause * 2, 20_000)
                    continue
                }
                let retryable = ["BEGIN", "SELECT", "PRAGMA", "WITH"].contains(keyword)
                guard !newLeaderTried, !isInTransaction, !broken, retryable, error.isClusterUnavailability else { throw error }
                newLeaderTried = true
            }
        }
    }

    /// How long BEGIN waits for another replica's write transaction (SQLite's busy timeout).
    static let busyTimeoutMilliseconds: Int64 = 5_000

    // MARK: - Transaction control

    /// The first word of `sql`, upper-cased.
    static func keyword(_ sql: String) -> String {
        String(sql.drop { $0.isWhitespace }.prefix { $0.isLetter }).uppercased()
    }

    /// Runs transaction-control statements without the leader when the leader was lost inside
    /// the transaction (a ROLLBACK then only forgets it); true when handled here.
    func handleLocally(_ sql: String) -> Bool {
        guard broken, Self.keyword(sql) == "ROLLBACK", !sql.uppercased().contains(" TO ") else { return false }
        broken = false
        isInTransaction = false
        return true
    }

    /// Notes BEGIN, COMMIT and ROLLBACK after they ran.
    func noteRan(_ sql: String) {
        switch Self.keyword(sql) {
        case "BEGIN": isInTransaction = true
        case "COMMIT", "END": isInTransaction = false
        case "ROLLBACK" where !sql.uppercased().contains(" TO "): isInTransaction = false
        default: break
        }
    }

    func noteResult(_ result: DqliteResult) {
        lastInsertedRowID = result.lastInsertID
        changes = Int(truncatingIfNeeded: result.rowsAffected)
    }

    // MARK: - ConnectionEngine

    func prepare(_ sql: String) throws(DatabaseError) -> any StatementEngine {
        try DqliteStatement(connection: self, sql: sql)
    }

    func executeScript(_ sql: String) throws(DatabaseError) {
        if handleLocally(sql) { return }
        let (_, id) = try session()
        guard case .result(let result) = try call(.execSQL(database: id, sql: sql), sql: sql) else {
            throw DatabaseError.unavailable("the cluster's leader answered EXEC_SQL with something else")
        }
        noteResult(result)
        noteRan(sql)
    }

    /// Reads every ROWS message of a query's answer, handing rows to `row` until it says stop
    /// (the rest are read and dropped, so the connection stays in step).
    func readRows(_ first: DqliteResponse, sql: String, _ row: (Row) throws(DatabaseError) -> Bool) throws(DatabaseError) {
        var answer = first
        var wanted = true
        while true {
            guard case .rows(let rows) = answer else {
                throw DatabaseError.unavailable("the cluster's leader answered a query with \(answer.type)")
            }
            for values in rows.rows where wanted {
                wanted = try row(Row(columns: rows.columns, values: values.map(Self.value)))
            }
            guard rows.hasMore else { return }
            guard let socket else { throw leaderLost(sql, "no connection") }
            do { answer = try socket.receive() } catch { throw leaderLost(sql, error.message) }
        }
    }

    static func value(_ value: DqliteValue) -> DatabaseValue {
        switch value {
        case .integer(let v): .integer(v)
        case .real(let v): .real(v)
        case .text(let v): .text(v)
        case .blob(let v): .blob(v)
        case .null: .null
        }
    }

    static func value(_ value: DatabaseValue) -> DqliteValue {
        switch value {
        case .integer(let v): .integer(v)
        case .real(let v): .real(v)
        case .text(let v): .text(v)
        case .blob(let v): .blob(v)
        case .null: .null
        }
    }
}

/// A statement prepared on the leader; prepared again after the leader changed.
final class DqliteStatement: StatementEngine {
    unowned let connection: DqliteConnection
    let sql: String
    private var id: UInt32 = 0
    private var generation = -1
    private(set) var parameterCount = 0
    private var values: [DqliteValue] = []

    init(connection: DqliteConnection, sql: String) throws(DatabaseError) {
        self.connection = connection
        self.sql = sql
        if !connection.handleLocallyPossible(sql) { try prepared() }
    }

    /// The statement's id on the current leader connection.
    @discardableResult
    private func prepared() throws(DatabaseError) -> (UInt32, UInt32) {
        let (_, database) = try connection.session()
        if generation != connection.generation {
            guard case .statement(let statement) = try connection.call(.prepare(database: database, sql: sql), sql: sql) else {
                throw DatabaseError.unavailable("the cluster's leader answered PREPARE with something else")
            }
            id = statement.id
            generation = connection.generation
            parameterCount = Int(statement.parameterCount)
        }
        return (database, id)
    }

    func reset() {}

    func clearBindings() { values = [] }

    func bind(_ value: DatabaseValue, at index: Int32) throws(DatabaseError) {
        let slot = Int(index) - 1
        guard slot >= 0, slot < max(parameterCount, slot + 1) else {
            throw DatabaseError(extendedCode: DatabaseError.rangeCode, message: "no parameter \(index)", sql: sql)
        }
        if values.count <= slot { values += Array(repeating: .null, count: slot + 1 - values.count) }
        values[slot] = DqliteConnection.value(value)
    }

    func bind(_ value: Int64, at index: Int32) throws(DatabaseError) { try bind(.integer(value), at: index) }

    func bind(_ value: String?, at index: Int32) throws(DatabaseError) { try bind(value.map { .text($0) } ?? .null, at: index) }

    func execute() throws(DatabaseError) {
        if connection.handleLocally(sql) { return }
        let result = try connection.retrying(sql) { () throws(DatabaseError) -> DqliteResult in
            let (database, statement) = try prepared()
            guard case .result(let result) = try connection.call(.exec(database: database, statement: statement, parameters: values), sql: sql) else {
                throw DatabaseError.unavailable("the cluster's leader answered EXEC with something else")
            }
            return result
        }
        connection.noteResult(result)
        connection.noteRan(sql)
    }

    func query(_ row: (Row) throws(DatabaseError) -> Bool) throws(DatabaseError) {
        let first = try connection.retrying(sql) { () throws(DatabaseError) -> DqliteResponse in
            let (database, statement) = try prepared()
            return try connection.call(.query(database: database, statement: statement, parameters: values), sql: sql)
        }
        try connection.readRows(first, sql: sql, row)
    }
}

extension DqliteConnection {
    /// A ROLLBACK may have to run without a leader (see `handleLocally`): it is prepared lazily.
    func handleLocallyPossible(_ sql: String) -> Bool {
        Self.keyword(sql) == "ROLLBACK" && !sql.uppercased().contains(" TO ")
    }
}
