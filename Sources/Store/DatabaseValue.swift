internal import CSQLite

/// One SQLite value, as stored (SQLite's five storage classes).
public enum DatabaseValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A Swift type that binds to and reads from a SQLite value.
public protocol DatabaseValueConvertible {
    var databaseValue: DatabaseValue { get }
    /// Nil when the stored value is not of this type (no silent coercion).
    init?(databaseValue: DatabaseValue)
}

extension DatabaseValue: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { self }
    public init?(databaseValue: DatabaseValue) { self = databaseValue }
}

extension Int64: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(self) }
    public init?(databaseValue: DatabaseValue) {
        guard case .integer(let v) = databaseValue else { return nil }
        self = v
    }
}

extension Int: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(Int64(self)) }
    public init?(databaseValue: DatabaseValue) {
        guard case .integer(let v) = databaseValue else { return nil }
        self = Int(v)
    }
}

extension UInt32: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(Int64(self)) }
    public init?(databaseValue: DatabaseValue) {
        guard case .integer(let v) = databaseValue, let value = UInt32(exactly: v) else { return nil }
        self = value
    }
}

extension Bool: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(self ? 1 : 0) }
    public init?(databaseValue: DatabaseValue) {
        guard case .integer(let v) = databaseValue, v == 0 || v == 1 else { return nil }
        self = v == 1
    }
}

extension Double: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .real(self) }
    public init?(databaseValue: DatabaseValue) {
        switch databaseValue {
        case .real(let v): self = v
        case .integer(let v): self = Double(v)
        default: return nil
        }
    }
}

extension String: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .text(self) }
    public init?(databaseValue: DatabaseValue) {
        guard case .text(let v) = databaseValue else { return nil }
        self = v
    }
}

extension Array: DatabaseValueConvertible where Element == UInt8 {
    public var databaseValue: DatabaseValue { .blob(self) }
    public init?(databaseValue: DatabaseValue) {
        guard case .blob(let v) = databaseValue else { return nil }
        self = v
    }
}

extension Optional: DatabaseValueConvertible where Wrapped: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { self?.databaseValue ?? .null }
    public init?(databaseValue: DatabaseValue) {
        if case .null = databaseValue {
            self = .none
        } else if let value = Wrapped(databaseValue: databaseValue) {
            self = .some(value)
        } else {
            return nil
        }
    }
}

/// One result row: the column names of its statement and the values read.
public struct Row: Sendable, CustomStringConvertible {
    public let columns: [String]
    public let values: [DatabaseValue]

    public init(columns: [String], values: [DatabaseValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ index: Int) -> DatabaseValue { values[index] }

    public subscript(_ column: String) -> DatabaseValue? {
        columns.firstIndex(of: column).map { values[$0] }
    }

    /// The value of column `index` as `T`, or an error naming the column and what was found.
    public func get<T: DatabaseValueConvertible>(_ index: Int, as type: T.Type = T.self) throws(DatabaseError) -> T {
        guard index >= 0 && index < values.count else {
            throw DatabaseError(extendedCode: SQLITE_RANGE, message: "column index \(index) out of range (\(values.count) columns)")
        }
        guard let value = T(databaseValue: values[index]) else {
            throw DatabaseError(extendedCode: SQLITE_MISMATCH, message: "column \(columns[index]) holds \(values[index]), not \(T.self)")
        }
        return value
    }

    /// The value of the named column as `T`.
    public func get<T: DatabaseValueConvertible>(_ column: String, as type: T.Type = T.self) throws(DatabaseError) -> T {
        guard let index = columns.firstIndex(of: column) else {
            throw DatabaseError(extendedCode: SQLITE_RANGE, message: "no column named \(column) (have \(columns.joined(separator: ", ")))")
        }
        return try get(index)
    }

    public var description: String {
        zip(columns, values).map { "\($0)=\($1)" }.joined(separator: " ")
    }
}
