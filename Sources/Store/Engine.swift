internal import Glibc
internal import CSQLite
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
    /// As `query`, but each row's columns are read in place as text (see `TextRow`).
    func queryText(_ row: (TextRow) throws(DatabaseError) -> Void) throws(DatabaseError)
}

extension StatementEngine {
    /// Engines without in-place access read each `Row` and hand its texts over.
    func queryText(_ body: (TextRow) throws(DatabaseError) -> Void) throws(DatabaseError) {
        try query { row throws(DatabaseError) in
            try body(TextRow(.copied(row.values.map { value in
                if case .text(let text) = value { return Array(text.utf8) }
                return []
            })))
            return true
        }
    }
}

/// A result row whose columns are read in place, as their text's UTF-8 bytes: compared with a
/// string or copied out only when needed, with no `Row` built (a pass over a million rows, where
/// building them cost most of the pass). Valid only inside the call that hands it over.
public struct TextRow {
    enum Columns {
        /// A SQLite statement stepped onto the row.
        case sqlite(OpaquePointer)
        /// Another engine's row, copied.
        case copied([[UInt8]])
    }
    let columns: Columns

    init(_ columns: Columns) {
        self.columns = columns
    }

    /// Whether column `index` holds exactly `text` (NULL and non-text columns read as empty).
    public func text(_ index: Int, equals text: String) -> Bool {
        switch columns {
        case .sqlite(let handle):
            let bytes = sqliteText(handle, Int32(index))
            return text.utf8.withContiguousStorageIfAvailable { utf8 in
                utf8.count == bytes.count && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
            } ?? text.utf8.elementsEqual(bytes)
        case .copied(let texts):
            return text.utf8.elementsEqual(texts[index])
        }
    }

    /// Column `index` as a string.
    public func string(_ index: Int) -> String {
        switch columns {
        case .sqlite(let handle): String(decoding: sqliteText(handle, Int32(index)), as: UTF8.self)
        case .copied(let texts): String(decoding: texts[index], as: UTF8.self)
        }
    }
}
