/// Writes many rows through multi-row `INSERT … VALUES (…), (…), …` statements.
///
/// Each execution of a statement opens and closes a cursor on the table and on each of its
/// indexes and, for an AUTOINCREMENT table, reads and writes `sqlite_sequence`; a bulk load of a
/// million single-row INSERTs pays that a million times. Rows here are collected (as plain
/// `DatabaseValue`s, nothing boxed) and written `rowsPerStatement` at a time, in the order added,
/// so AUTOINCREMENT ids follow that order. Call `flush()` at the end. A failing statement undoes
/// only its own rows (SQLite's statement rollback; a remainder written row by row keeps the rows
/// before the failing one, which the enclosing transaction or savepoint then rolls back), so the
/// caller can look for the culprit among the rows it added since the last full statement.
public struct BulkInsert {
    let db: Database
    let head: String
    let tail: String
    public let columns: Int
    public let rowsPerStatement: Int
    private var values: [DatabaseValue] = []

    /// `head` is `INSERT INTO table (a, b, …)`, or any statement a VALUES list continues (an
    /// `UPDATE … FROM (`); `tail` follows the VALUES list (e.g. an `ON CONFLICT … DO UPDATE`
    /// clause, or what closes the UPDATE's FROM). At most as many parameters per statement as the engine
    /// takes (`Database.maximumParameters`: 999 for SQLite, 255 for dqlite), at most 128 rows.
    public init(_ db: Database, _ head: String, columns: Int, tail: String = "") {
        precondition(columns >= 1 && columns <= db.maximumParameters, "BulkInsert: 1 to \(db.maximumParameters) columns")
        self.db = db
        self.head = head
        self.tail = tail
        self.columns = columns
        rowsPerStatement = min(128, db.maximumParameters / columns)
        values.reserveCapacity(rowsPerStatement * columns)
    }

    /// Rows added since the last write.
    public var pendingRows: Int { values.count / columns }

    /// Adds the next value of the current row; `endRow()` ends it. (One value at a time: a
    /// variadic row would allocate an array per row.)
    public mutating func append(_ value: DatabaseValue) {
        values.append(value)
    }

    /// Ends the row begun since the last `endRow()`, which must have `columns` values; writes a
    /// full statement's worth when that many rows are waiting.
    public mutating func endRow() throws(DatabaseError) {
        precondition(values.count % columns == 0, "BulkInsert: \(columns) values per row")
        if values.count == rowsPerStatement * columns { try flush() }
    }

    /// Writes every waiting row (they are no longer waiting even when this fails).
    public mutating func flush() throws(DatabaseError) {
        let rows = pendingRows
        guard rows > 0 else { return }
        defer { values.removeAll(keepingCapacity: true) }
        // A full statement's worth in one statement; a remainder row by row, so a connection
        // caches two statements per table, not one per remainder size.
        if rows == rowsPerStatement {
            let statement = try db.cachedStatement(sql(rows: rows))
            statement.clear()
            for (offset, value) in values.enumerated() { try statement.bind(value, at: Int32(offset + 1)) }
            try statement.run()
        } else {
            let statement = try db.cachedStatement(sql(rows: 1))
            for row in 0..<rows {
                statement.clear()
                for column in 0..<columns { try statement.bind(values[row * columns + column], at: Int32(column + 1)) }
                try statement.run()
            }
        }
    }

    func sql(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return head + " VALUES " + Array(repeating: row, count: rows).joined(separator: ", ") + (tail.isEmpty ? "" : " " + tail)
    }
}
