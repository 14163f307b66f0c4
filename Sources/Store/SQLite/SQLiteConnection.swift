internal import CSQLite
#if canImport(Glibc)
internal import Glibc
#endif

/// One SQLite connection (the default engine): a WAL database with `synchronous=FULL`, so a
/// transaction that returned from COMMIT survives a process crash or power loss, and with
/// foreign keys enforced.
final class SQLiteConnection: ConnectionEngine {
    /// Creates a missing database file readable by its owner only (0600) before SQLite opens it.
    /// The peers table holds TCP MD5 passwords in clear (the kernel needs the key itself), and
    /// SQLite would create the file with the caller's umask, often 0644. SQLite gives the -wal and
    /// -shm files the database file's mode, and a backup is a new file made the same way. An
    /// existing file keeps the mode its owner gave it.
    static func createPrivately(_ path: String) {
        guard !path.isEmpty, !path.hasPrefix(":"), !path.hasPrefix("file:") else { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 { Glibc.close(descriptor) }  // otherwise it exists, or SQLite says why not
    }

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

    /// How long a connection waits for another's lock before failing with SQLITE_BUSY.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000

    /// Process-wide SQLite settings, applied once before the first connection opens.
    private static let configureSQLite: Void = { _ = csqlite_disable_memstatus() }()

    /// `pageSizeForNewFile`: the page size of the file if this connection creates it (SQLite
    /// fixes it with the first table, and a WAL database cannot change it later); ignored for
    /// an existing file.
    init(path: String, mode: Mode = .readWrite, busyTimeoutMilliseconds: Int32 = SQLiteConnection.defaultBusyTimeoutMilliseconds,
         pageSizeForNewFile: Int? = nil) throws(DatabaseError) {
        Self.configureSQLite
        self.path = path
        self.mode = mode
        var connection: OpaquePointer?
        let flags = (mode == .readWrite ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY)
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | (mode == .immutable ? SQLITE_OPEN_URI : 0)
        let name = mode == .immutable ? Self.immutableURI(path) : path
        if mode == .readWrite { Self.createPrivately(path) }
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
                if let pageSizeForNewFile { try executeScript("PRAGMA page_size = \(pageSizeForNewFile)") }
                let journal = try firstValue("PRAGMA journal_mode = WAL")
                guard journal == "wal" else {
                    throw DatabaseError(extendedCode: SQLITE_ERROR, message: "cannot switch \(path) to WAL journal mode (got \(journal ?? "nothing"))")
                }
            }
            // FULL: WAL is synced at every commit, so an acknowledged write survives power loss,
            // not only a process crash (NORMAL would lose the last commits on power loss).
            try executeScript("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
            if mode != .readWrite {
                try executeScript("PRAGMA query_only = ON")
                // Opening is lazy: read the schema now so that a file SQLite cannot read (a WAL
                // database on a read-only file system without its -shm) fails here, not later.
                _ = try firstValue("SELECT count(*) FROM sqlite_schema")
            }
            // SQLite's default page cache is 2 MiB. A bulk load of a million routes updates
            // indexes in random order, and with a small cache every transaction spills pages to
            // the WAL again and again (measured: 1M history rows 8.9 s → 3.7 s with a larger
            // cache). Pages are allocated only as they are used; small databases stay small.
            if mode == .readWrite { try executeScript("PRAGMA cache_size = \(-Self.defaultCacheKibibytes)") }
        } catch {
            sqlite3_close_v2(connection)
            throw error
        }
    }

    /// The page cache of a read-write connection, in KiB.
    static let defaultCacheKibibytes = 65536

    /// The first column of the first row of `sql`, as text.
    private func firstValue(_ sql: String) throws(DatabaseError) -> String? {
        let statement = try SQLiteStatement(connection: connection, sql: sql)
        var value: String?
        try statement.query { row throws(DatabaseError) in
            value = row.values.first.map { value in
                switch value {
                case .text(let text): text
                case .integer(let number): String(number)
                default: ""
                }
            }
            return false
        }
        return value
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

    var name: String { path }

    /// SQLite's lowest SQLITE_MAX_VARIABLE_NUMBER (999 before 3.32; Debian's is larger).
    var maximumParameters: Int { 999 }

    /// True when SQLite opened the file read-only although asked for read-write (it does that
    /// silently when the file or its file system is write-protected).
    var opensReadOnly: Bool { sqlite3_db_readonly(connection, "main") == 1 }

    /// Closes the connection (statements already finalized by their owners). Idempotent.
    func close() {
        guard !isClosed else { return }
        isClosed = true
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

    func prepare(_ sql: String) throws(DatabaseError) -> any StatementEngine {
        try checkOpen(sql)
        return try SQLiteStatement(connection: connection, sql: sql)
    }

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

    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(connection) }

    var changes: Int { Int(sqlite3_changes64(connection)) }

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
        let pageSize = try firstValue("PRAGMA page_size").flatMap { Int($0) }
        let destination = try SQLiteConnection(path: path, mode: .readWrite, pageSizeForNewFile: pageSize)
        defer { destination.close() }
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
        // Leave a self-contained file: fold the copy's WAL into it, and leave WAL mode, so that
        // nothing beside the copy is needed or made (a read of a WAL-mode file, such as the
        // integrity check that follows, leaves -wal and -shm files next to it). Herald switches
        // a database back to WAL when it opens it.
        try destination.executeScript("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE")
    }
}
