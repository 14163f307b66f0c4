internal import CSQLite

/// A SQLite prepared statement: compiled once in `init`, finalized in `deinit`. Every SQLite
/// return code is checked.
final class SQLiteStatement: StatementEngine {
    let handle: OpaquePointer
    let connection: OpaquePointer
    let sql: String
    let columnNames: [String]

    init(connection: OpaquePointer, sql: String) throws(DatabaseError) {
        self.connection = connection
        self.sql = sql
        var statement: OpaquePointer?
        var leftover: String?
        let code = sql.withCString { text -> Int32 in
            var tail: UnsafePointer<CChar>?
            let code = sqlite3_prepare_v3(connection, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            if code == SQLITE_OK, let tail {
                let rest = String(cString: tail)
                if !Self.isBlankOrComment(rest) { leftover = rest }
            }
            return code
        }
        guard code == SQLITE_OK, let statement else {
            throw DatabaseError(extendedCode: sqlite3_extended_errcode(connection),
                               message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
        if let leftover {
            sqlite3_finalize(statement)
            throw DatabaseError(extendedCode: SQLITE_MISUSE,
                               message: "more than one statement: leftover SQL \"\(leftover.prefix(80))\"", sql: sql)
        }
        handle = statement
        columnNames = (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
    }

    deinit { sqlite3_finalize(handle) }

    /// True when `text` holds only whitespace, semicolons, `-- …` and `/* … */` comments.
    static func isBlankOrComment(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ";"):
                i += 1
            case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "-"):
                while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*"):
                i += 2
                while i + 1 < bytes.count && !(bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i += 2
            default:
                return false
            }
        }
        return true
    }

    // MARK: - Binding

    var parameterCount: Int { Int(sqlite3_bind_parameter_count(handle)) }

    func reset() { sqlite3_reset(handle) }

    func clearBindings() { sqlite3_clear_bindings(handle) }

    /// Binds `?` number `index` (1-based).
    func bind(_ value: DatabaseValue, at index: Int32) throws(DatabaseError) {
        let code: Int32
        switch value {
        case .null: code = sqlite3_bind_null(handle, index)
        case .integer(let v): code = sqlite3_bind_int64(handle, index, v)
        case .real(let v): code = sqlite3_bind_double(handle, index, v)
        case .text(var v):
            // Bind by byte count, not as a C string, so text with U+0000 inside is kept whole.
            code = v.withUTF8 { utf8 in
                let start = UnsafeRawPointer(utf8.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
                return sqlite3_bind_text(handle, index, start, Int32(utf8.count), csqlite_transient())
            }
        case .blob(let v):
            code = v.withUnsafeBytes { bytes in
                // A zero-length blob must still bind as a blob, not as NULL.
                sqlite3_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), csqlite_transient())
            }
        }
        try check(code)
    }

    /// Binds `?` number `index` (1-based).
    func bind(_ value: Int64, at index: Int32) throws(DatabaseError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    /// Binds `?` number `index` (1-based) as text; nil binds NULL.
    func bind(_ value: String?, at index: Int32) throws(DatabaseError) {
        guard var value else { return try check(sqlite3_bind_null(handle, index)) }
        let code = value.withUTF8 { utf8 in
            let start = UnsafeRawPointer(utf8.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
            return sqlite3_bind_text(handle, index, start, Int32(utf8.count), csqlite_transient())
        }
        try check(code)
    }

    func execute() throws(DatabaseError) {
        defer { sqlite3_reset(handle) }
        while try step() {}
    }

    func query(_ row: (Row) throws(DatabaseError) -> Bool) throws(DatabaseError) {
        defer { sqlite3_reset(handle) }
        while try step() {
            if try !row(currentRow()) { return }
        }
    }

    func queryText(_ row: (TextRow) throws(DatabaseError) -> Void) throws(DatabaseError) {
        defer { sqlite3_reset(handle) }
        let texts = TextRow(.sqlite(handle))
        while try step() { try row(texts) }
    }

    /// Advances one row: true when a row is available, false when done.
    func step() throws(DatabaseError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            // Since 3.7.15 sqlite3_step returns the specific code; the connection's extended code
            // distinguishes e.g. a UNIQUE from a CHECK failure.
            throw DatabaseError(extendedCode: sqlite3_extended_errcode(connection),
                               message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
    }

    func currentRow() -> Row {
        var values: [DatabaseValue] = []
        values.reserveCapacity(columnNames.count)
        for column in 0..<Int32(columnNames.count) {
            switch sqlite3_column_type(handle, column) {
            case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, column)))
            case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(handle, column)))
            case SQLITE_TEXT:
                let text = sqlite3_column_text(handle, column)
                let count = Int(sqlite3_column_bytes(handle, column))
                values.append(.text(text.map { String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self) } ?? ""))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(handle, column))
                let bytes = sqlite3_column_blob(handle, column)
                values.append(.blob(bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []))
            default: values.append(.null)
            }
        }
        return Row(columns: columnNames, values: values)
    }

    private func check(_ code: Int32) throws(DatabaseError) {
        guard code == SQLITE_OK else {
            throw DatabaseError(extendedCode: sqlite3_extended_errcode(connection),
                               message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
    }
}

/// Column `column` of the row `handle` stands on, as bytes (valid until the next step):
/// sqlite3_column_text, then sqlite3_column_bytes, the order SQLite documents for text.
func sqliteText(_ handle: OpaquePointer, _ column: Int32) -> UnsafeRawBufferPointer {
    let text = sqlite3_column_text(handle, column)
    return UnsafeRawBufferPointer(start: text, count: text == nil ? 0 : Int(sqlite3_column_bytes(handle, column)))
}
