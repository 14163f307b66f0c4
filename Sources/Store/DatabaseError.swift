internal import CSQLite

/// An error reported by SQLite, with everything needed to act on it.
///
/// `extendedCode` is SQLite's extended result code (e.g. 2067, csqlite_CONSTRAINT_UNIQUE);
/// `code` is its primary part (19, SQLITE_CONSTRAINT), which is what callers usually match on.
public struct DatabaseError: Error, Sendable, CustomStringConvertible {
    public let extendedCode: Int32
    public let message: String
    /// The statement that failed, when there was one.
    public let sql: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    /// The database cannot take writes (answered with 503 by the API).
    public static func readOnly(_ message: String) -> DatabaseError {
        DatabaseError(extendedCode: SQLITE_READONLY, message: message)
    }

    // Herald's own extended codes under SQLITE_IOERR (SQLite uses ext codes up to 33 << 8;
    // dqlite's NOT_LEADER and LEADERSHIP_LOST are 40 << 8 and 41 << 8), for the replicated store.
    static let unavailableCode = SQLITE_IOERR | (0x60 << 8)
    static let rangeCode = SQLITE_RANGE
    static let misuseCode = SQLITE_MISUSE
    static let outcomeUnknownCode = SQLITE_IOERR | (0x61 << 8)

    /// The replicated store has no leader to write through (no quorum, or none reachable): the
    /// change was not made. The message says how many replicas were reachable.
    public static func unavailable(_ message: String) -> DatabaseError {
        DatabaseError(extendedCode: unavailableCode, message: message)
    }

    /// The leader was lost after COMMIT was sent and before it answered: the change may or may
    /// not have been made. Herald's changes are idempotent PUTs, so the client may retry.
    public static func outcomeUnknown(_ message: String) -> DatabaseError {
        DatabaseError(extendedCode: outcomeUnknownCode, message: message)
    }

    /// A failure of the replicated store whose message is written for the operator (the API
    /// passes it on as it is).
    public var isClusterUnavailability: Bool { extendedCode == Self.unavailableCode || extendedCode == Self.outcomeUnknownCode }

    /// A stored value that is not of the type its reader expects (SQLITE_MISMATCH).
    public static func typeMismatch(_ message: String, sql: String? = nil) -> DatabaseError {
        DatabaseError(extendedCode: SQLITE_MISMATCH, message: message, sql: sql)
    }

    public var code: ResultCode { ResultCode(rawValue: extendedCode & 0xFF) }

    public var description: String {
        // The cluster's own failures are written for the operator; an SQLite code would only
        // mislead ("disk I/O error").
        if isClusterUnavailability { return sql.map { "\(message) — in: \($0)" } ?? message }
        var text = "SQLite error \(extendedCode) (\(code.name)): \(message)"
        if let sql { text += " — in: \(sql)" }
        return text
    }

    /// True for any constraint failure: NOT NULL, CHECK, UNIQUE, FOREIGN KEY or a trigger's RAISE.
    public var isConstraintViolation: Bool { code == .constraint }

    /// The kind of constraint that failed, from the extended code.
    public var constraint: Constraint? {
        guard code == .constraint else { return nil }
        switch extendedCode {
        case csqlite_CONSTRAINT_UNIQUE, csqlite_CONSTRAINT_PRIMARYKEY: return .unique
        case csqlite_CONSTRAINT_FOREIGNKEY: return .foreignKey
        case csqlite_CONSTRAINT_NOTNULL: return .notNull
        case csqlite_CONSTRAINT_CHECK: return .check
        case csqlite_CONSTRAINT_TRIGGER:
            // SQLite enforces ON DELETE RESTRICT with internal triggers, so that failure arrives
            // with the trigger code; its message tells it apart from a RAISE in our own triggers.
            return message.hasPrefix("FOREIGN KEY constraint failed") ? .foreignKey : .trigger
        case csqlite_CONSTRAINT_DATATYPE: return .datatype
        default: return .other
        }
    }

    public enum Constraint: Sendable, Equatable {
        case unique, foreignKey, notNull, check, trigger, datatype, other
    }

    /// SQLite primary result codes that callers match on.
    public struct ResultCode: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let error = ResultCode(rawValue: SQLITE_ERROR)
        public static let busy = ResultCode(rawValue: SQLITE_BUSY)
        public static let locked = ResultCode(rawValue: SQLITE_LOCKED)
        public static let readOnly = ResultCode(rawValue: SQLITE_READONLY)
        public static let ioError = ResultCode(rawValue: SQLITE_IOERR)
        public static let corrupt = ResultCode(rawValue: SQLITE_CORRUPT)
        public static let full = ResultCode(rawValue: SQLITE_FULL)
        public static let cantOpen = ResultCode(rawValue: SQLITE_CANTOPEN)
        public static let constraint = ResultCode(rawValue: SQLITE_CONSTRAINT)
        public static let misuse = ResultCode(rawValue: SQLITE_MISUSE)
        public static let range = ResultCode(rawValue: SQLITE_RANGE)
        public static let notADatabase = ResultCode(rawValue: SQLITE_NOTADB)

        public var name: String { String(cString: sqlite3_errstr(rawValue)) }
    }
}

extension DatabaseError.ResultCode {
    /// True when the database cannot take writes right now (read-only file, full disk, I/O
    /// error): the API answers 503 and reads keep working.
    public var meansUnavailableForWrites: Bool {
        self == .readOnly || self == .full || self == .ioError || self == .busy || self == .locked
    }
}
