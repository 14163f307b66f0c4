// Tuples: the parameters of EXEC, QUERY, EXEC_SQL and QUERY_SQL, and the rows of ROWS
// (dqlite src/tuple.h). A tuple is a header of type codes padded to a word, then the values,
// each word-aligned:
//
//   INTEGER  1   i64
//   FLOAT    2   f64 (IEEE 754 bits)
//   TEXT     3   UTF-8, NUL, zeros to a word
//   BLOB     4   u64 length, bytes, zeros to a word
//   NULL     5   one zero word
//   UNIXTIME 9   i64 seconds (rows only)
//   ISO8601 10   a TEXT (rows only)
//   BOOLEAN 11   u64 0 or 1 (rows only)
//
// Parameters, schema 0 (8-bit count) and schema 1 (32-bit count); no parameters at all is no
// tuple at all (the body ends before it, as go-dqlite sends and dqlite reads):
//
//   +-------+------+------+-    -+-------+      +---------------+------+-    -+-------+
//   | count | type | type | …    | zeros |      | count (u32)   | type | …    | zeros |
//   +-------+------+------+-    -+-------+      +---------------+------+-    -+-------+
//   | values …                           |      | values …                           |
//
// Rows: 4-bit type codes, column 0 in the low nibble of the first byte, padded to a word; the
// column count comes from the ROWS message, not the row:
//
//   +-------+-------+-------+-    -+-------+
//   | t1 t0 | t3 t2 | t5 t4 | …    | zeros |
//   +-------+-------+-------+-    -+-------+
//   | values …                             |

enum Tuple {
    // MARK: - Values

    static func write(_ value: DqliteValue, into writer: inout DqliteWriter, message: DqliteWireError.Message, field: @autoclosure () -> String) throws(DqliteWireError) {
        switch value {
        case .integer(let v): writer.writeInt64(v)
        case .real(let v): writer.writeDouble(v)
        case .text(let v): try writer.writeText(v, message: message, field: field())
        case .blob(let v): writer.writeBlob(v)
        case .null: writer.writeUInt64(0)
        }
    }

    /// Reads one value of type `code`; the three special types become the value they carry.
    static func read(_ code: UInt8, from reader: inout WireReader, field: @autoclosure () -> String) throws(DqliteWireError) -> DqliteValue {
        guard let type = DqliteTypeCode(rawValue: code) else { throw reader.error(field(), .unknownValueType(code)) }
        switch type {
        case .integer, .unixTime: return .integer(try reader.readInt64(field()))
        case .float: return .real(try reader.readDouble(field()))
        case .text, .iso8601: return .text(try reader.readText(field()))
        case .blob: return .blob(try reader.readBlob(field()))
        // dqlite reads the NULL word without looking at it; so do we.
        case .null: _ = try reader.readUInt64(field()); return .null
        // go-dqlite reads any non-zero word as true; dqlite binds it as 1.
        case .boolean: return .integer(try reader.readUInt64(field()) == 0 ? 0 : 1)
        }
    }

    // MARK: - Parameters

    static func writeParameters(_ values: [DqliteValue], schema: DqliteParameterSchema, into writer: inout DqliteWriter, message: DqliteWireError.Message) throws(DqliteWireError) {
        guard !values.isEmpty else { return }
        switch schema {
        case .v0:
            guard let count = UInt8(exactly: values.count) else {
                throw DqliteWireError(message, field: "parameter count", .tooManyParameters(count: values.count, limit: Int(UInt8.max)))
            }
            writer.writeUInt8(count)
        case .v1:
            guard let count = UInt32(exactly: values.count) else {
                throw DqliteWireError(message, field: "parameter count", .tooManyParameters(count: values.count, limit: Int(UInt32.max)))
            }
            writer.writeUInt32(count)
        }
        for value in values { writer.writeUInt8(DqliteTypeCode(of: value).rawValue) }
        writer.writePadding()
        for (i, value) in values.enumerated() {
            try write(value, into: &writer, message: message, field: "parameter \(i + 1)")
        }
    }

    static func readParameters(from reader: inout WireReader, schema: DqliteParameterSchema) throws(DqliteWireError) -> [DqliteValue] {
        if reader.isAtEnd { return [] }
        let start = reader.offset
        let count: UInt64, countSize: Int
        switch schema {
        case .v0: count = UInt64(try reader.readUInt8("parameter count")); countSize = 1
        case .v1: count = UInt64(try reader.readUInt32("parameter count")); countSize = 4
        }
        // Each parameter takes a type byte and at least one word of value.
        let limit = reader.remaining / 9
        guard count <= UInt64(limit) else {
            throw reader.error("parameter count", .countTooLarge(count: count, limit: limit), at: start)
        }
        let n = Int(count)
        let types = try reader.readSlice(n, "parameter types")
        _ = try reader.readSlice(WireReader.padded(countSize + n) - countSize - n, "parameter type padding")
        var values: [DqliteValue] = []
        values.reserveCapacity(n)
        for (i, code) in types.enumerated() {
            values.append(try read(code, from: &reader, field: "parameter \(i + 1)"))
        }
        return values
    }

    // MARK: - Rows

    /// Bytes of a row header for `columns` columns: half a byte each, padded to a word.
    static func rowHeaderSize(columns: Int) -> Int { WireReader.padded((columns + 1) / 2) }

    static func writeRow(_ values: [DqliteValue], into writer: inout DqliteWriter, message: DqliteWireError.Message, row: Int) throws(DqliteWireError) {
        var header = [UInt8](repeating: 0, count: rowHeaderSize(columns: values.count))
        for (i, value) in values.enumerated() {
            header[i / 2] |= DqliteTypeCode(of: value).rawValue << (i % 2 == 0 ? 0 : 4)
        }
        for byte in header { writer.writeUInt8(byte) }
        for (i, value) in values.enumerated() {
            try write(value, into: &writer, message: message, field: "row \(row) column \(i)")
        }
    }

    static func readRow(from reader: inout WireReader, columns: Int, row: Int) throws(DqliteWireError) -> [DqliteValue] {
        let header = try reader.readSlice(rowHeaderSize(columns: columns), "row \(row) header")
        var values: [DqliteValue] = []
        // Every value takes at least a word: reserve no more than what is left could hold.
        values.reserveCapacity(min(columns, reader.remaining / 8))
        for i in 0..<columns {
            let byte = header[header.startIndex + i / 2]
            let code = i % 2 == 0 ? byte & 0x0f : byte >> 4
            values.append(try read(code, from: &reader, field: "row \(row) column \(i)"))
        }
        return values
    }
}
