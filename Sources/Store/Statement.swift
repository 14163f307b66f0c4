/// A prepared statement: compiled once, run many times, by whichever engine the store runs.
///
/// A statement holds exactly one SQL statement; text left after it (other than whitespace and
/// comments) is an error, so a stray `;` and a second statement cannot hide in a string.
public final class Statement {
    let engine: any StatementEngine
    public let sql: String

    init(_ engine: any StatementEngine, sql: String) {
        self.engine = engine
        self.sql = sql
    }

    // MARK: - Binding

    /// Resets the statement and binds `arguments` to its `?` parameters in order.
    public func bind(_ arguments: [any DatabaseValueConvertible]) throws(DatabaseError) {
        engine.reset()
        engine.clearBindings()
        let expected = engine.parameterCount
        guard arguments.count == expected else {
            throw DatabaseError(extendedCode: DatabaseError.rangeCode,
                               message: "statement takes \(expected) argument\(expected == 1 ? "" : "s"), got \(arguments.count)", sql: sql)
        }
        for (offset, argument) in arguments.enumerated() {
            try engine.bind(argument.databaseValue, at: Int32(offset + 1))
        }
    }

    // MARK: - Binding one value at a time

    /// For statements run a million times in a row (bulk loads): bind each `?` in place, then
    /// `run()`. No `[any DatabaseValueConvertible]` array is built per row, so nothing is boxed.
    /// Call `clear()` first, then bind every parameter: the bindings are not cleared, so the
    /// engine keeps each parameter's buffer from row to row instead of freeing and allocating it.
    public func clear() {
        engine.reset()
    }

    /// Binds `?` number `index` (1-based).
    public func bind(_ value: DatabaseValue, at index: Int32) throws(DatabaseError) {
        try engine.bind(value, at: index)
    }

    /// Binds `?` number `index` (1-based).
    public func bind(_ value: Int64, at index: Int32) throws(DatabaseError) {
        try engine.bind(value, at: index)
    }

    /// Binds `?` number `index` (1-based) as text; nil binds NULL.
    public func bind(_ value: String?, at index: Int32) throws(DatabaseError) {
        try engine.bind(value, at: index)
    }

    /// Runs the statement with the values bound since `clear()`, ignoring any rows.
    public func run() throws(DatabaseError) {
        try engine.execute()
    }

    // MARK: - Running

    /// Runs the statement to completion, ignoring any rows.
    public func execute(_ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) {
        try bind(arguments)
        try engine.execute()
    }

    /// Runs the statement and returns every row.
    public func rows(_ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) -> [Row] {
        var result: [Row] = []
        try forEachRow(arguments) { result.append($0) }
        return result
    }

    /// Runs the statement and returns the first row, if any.
    public func firstRow(_ arguments: [any DatabaseValueConvertible] = []) throws(DatabaseError) -> Row? {
        try bind(arguments)
        var first: Row?
        try engine.query { row throws(DatabaseError) in
            first = row
            return false
        }
        return first
    }

    /// Runs the statement, handing each row's columns to `body` in place, as text (`TextRow`):
    /// for passes over many rows that compare most of them and keep few.
    public func forEachTextRow(_ arguments: [any DatabaseValueConvertible] = [], _ body: (TextRow) throws(DatabaseError) -> Void) throws(DatabaseError) {
        try bind(arguments)
        try engine.queryText(body)
    }

    /// Runs the statement, calling `body` for each row as it is read.
    public func forEachRow(_ arguments: [any DatabaseValueConvertible] = [], _ body: (Row) throws(DatabaseError) -> Void) throws(DatabaseError) {
        try bind(arguments)
        try engine.query { row throws(DatabaseError) in
            try body(row)
            return true
        }
    }
}
