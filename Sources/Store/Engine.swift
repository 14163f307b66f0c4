/// What `Database` and `Statement` need from the storage engine behind one connection. Two
/// engines stand behind it: one SQLite file (`SQLiteConnection`, the default) and a dqlite
/// cluster reached through dqlite's wire protocol (`DqliteConnection`, cluster mode). Nothing
/// above `Store` sees which one runs.
protocol ConnectionEngine: AnyObject {
    /// Compiles one statement; text after it other than whitespace and comments is an error.
    func prepare(_ sql: String) throws(DatabaseError) -> any StatementEngine
    /// Runs several statements without arguments (migrations, transaction control).
    func executeScript(_ sql: String) throws(DatabaseError)
    /// The rowid of the last row inserted on this connection.
    var lastInsertedRowID: Int64 { get }
    /// Rows changed by the last INSERT, UPDATE or DELETE on this connection.
    var changes: Int { get }
    /// Whether a transaction is open on this connection.
    var isInTransaction: Bool { get }
    /// Names the connection in errors ("herald.db", "the cluster's leader").
    var name: String { get }
    /// The most `?` parameters one statement may take.
    var maximumParameters: Int { get }
    func close()
}

/// One prepared statement of an engine.
protocol StatementEngine: AnyObject {
    var parameterCount: Int { get }
    /// Makes the statement ready for new values; bindings stay until replaced (`clearBindings`).
    func reset()
    func clearBindings()
    func bind(_ value: DatabaseValue, at index: Int32) throws(DatabaseError)
    func bind(_ value: Int64, at index: Int32) throws(DatabaseError)
    func bind(_ value: String?, at index: Int32) throws(DatabaseError)
    /// Runs the statement with the values bound; result rows, if any, are not read (an INSERT,
    /// UPDATE or DELETE).
    func execute() throws(DatabaseError)
    /// Runs the statement with the values bound and hands each result row to `row` until it
    /// returns false.
    func query(_ row: (Row) throws(DatabaseError) -> Bool) throws(DatabaseError)
}
