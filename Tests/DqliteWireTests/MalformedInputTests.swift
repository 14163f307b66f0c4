import TestSupport
import Testing
@testable import DqliteWire

/// Malformed input: each vector asserts the exact error (message, field, problem, body offset).
@Suite struct MalformedInputTests {
    func expectError(_ expected: DqliteWireError, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: expected, sourceLocation: sourceLocation) { _ = try DqliteResponse.decode(bytes) }
    }

    // MARK: - Header

    @Test func unknownResponseType() {
        expectError(DqliteWireError(.header, field: "type", .unknownMessageType(42)), message(42, "0000000000000000"))
    }

    @Test func unknownSchema() {
        expectError(DqliteWireError(.response(.database), field: "schema", .unsupportedSchema(1)), message(4, schema: 1, "0000000000000000"))
        expectError(DqliteWireError(.response(.statement), field: "schema", .unsupportedSchema(2)), message(5, schema: 2, "0000000000000000 0000000000000000"))
    }

    // MARK: - Truncation and leftovers

    @Test func truncatedBodies() {
        // WELCOME with no body at all
        expectError(DqliteWireError(.response(.welcome), field: "heartbeat timeout", .truncated(needed: 8, available: 0)), message(2, ""))
        // RESULT with only the last insert id
        expectError(DqliteWireError(.response(.result), field: "rows affected", .truncated(needed: 8, available: 0), offset: 8), message(6, "0100000000000000"))
        // STMT schema 1 without its tail offset
        expectError(DqliteWireError(.response(.statement), field: "tail offset", .truncated(needed: 8, available: 0), offset: 16),
                    message(5, schema: 1, "00000000 00000000 0000000000000000"))
    }

    @Test func trailingBytes() {
        expectError(DqliteWireError(.response(.empty), field: "end of body", .trailingBytes(count: 8), offset: 8), message(8, "0000000000000000 0000000000000000"))
        // bytes after the DONE marker
        expectError(DqliteWireError(.response(.rows), field: "end of body", .trailingBytes(count: 8), offset: 24),
                    message(7, "0100000000000000 6100000000000000 ffffffffffffffff 0000000000000000"))
    }

    // MARK: - Strings

    @Test func missingNUL() {
        // FAILURE whose message fills the body without a terminator
        expectError(DqliteWireError(.response(.failure), field: "message", .missingTerminator, offset: 8), message(0, "0100000000000000 6162636465666768"))
        // a column name that runs into the end
        expectError(DqliteWireError(.response(.rows), field: "column 1 name", .missingTerminator, offset: 16), message(7, "0200000000000000 6100000000000000 6262626262626262"))
    }

    @Test func invalidUTF8() {
        expectError(DqliteWireError(.response(.failure), field: "message", .invalidUTF8, offset: 8), message(0, "0100000000000000 fffe000000000000"))
    }

    /// A framed body is a whole number of words and every field starts on one, so padding can
    /// only run past the end of a body that is not word-aligned: the reader checks it anyway.
    @Test func paddingPastTheEnd() {
        var text = WireReader(body: hex("6162 00")[...], message: .response(.failure))
        #expect(throws: DqliteWireError(.response(.failure), field: "message", .paddingPastEnd(needed: 8, available: 3))) {
            _ = try text.readText("message")
        }
        var blob = WireReader(body: hex("0300000000000000 010203")[...], message: .response(.files))
        #expect(throws: DqliteWireError(.response(.files), field: "file 0 data", .paddingPastEnd(needed: 8, available: 3), offset: 8)) {
            _ = try blob.readBlob("file 0 data")
        }
    }

    @Test func blobLongerThanTheBody() {
        // FILES: a 2^63 size with 8 bytes left must neither trap nor allocate
        expectError(DqliteWireError(.response(.files), field: "file 0 data", .truncated(needed: Int.max, available: 8), offset: 24),
                    message(9, "0100000000000000 6100000000000000 0000000000000080 0000000000000000"))
        expectError(DqliteWireError(.response(.files), field: "file 0 data", .truncated(needed: 9, available: 8), offset: 24),
                    message(9, "0100000000000000 6100000000000000 0900000000000000 0000000000000000"))
    }

    // MARK: - Counts

    @Test func absurdCountsFailBeforeAllocating() {
        // ROWS claiming 2^60 columns in a 16-byte body
        expectError(DqliteWireError(.response(.rows), field: "column count", .countTooLarge(count: 1 << 60, limit: 1)),
                    message(7, "0000000000000010 ffffffffffffffff"))
        // NODES claiming 2 nodes with room for 1
        expectError(DqliteWireError(.response(.nodes), field: "node count", .countTooLarge(count: 2, limit: 1)),
                    message(3, "0200000000000000 0100000000000000 6100000000000000 0000000000000000"))
        // FILES claiming UInt64.max files
        expectError(DqliteWireError(.response(.files), field: "file count", .countTooLarge(count: .max, limit: 0)), message(9, "ffffffffffffffff"))
    }

    @Test func absurdParameterCountInARequest() {
        // EXEC_SQL, schema 1: 2^32-1 parameters announced, 16 bytes left
        let bytes = message(8, schema: 1, "0000000000000000 7800000000000000 ffffffff 01000000 0000000000000000")
        #expect(throws: DqliteWireError(.request(.execSQL), field: "parameter count", .countTooLarge(count: 0xffff_ffff, limit: 1), offset: 16)) {
            _ = try DqliteRequest.decode(bytes)
        }
    }

    // MARK: - Values and rows

    @Test func unknownValueType() {
        // row header type 6 (there is none)
        expectError(DqliteWireError(.response(.rows), field: "row 0 column 0", .unknownValueType(6), offset: 24),
                    message(7, "0100000000000000 6100000000000000 0600000000000000 0000000000000000 ffffffffffffffff"))
        // type 0 in the second column's nibble
        expectError(DqliteWireError(.response(.rows), field: "row 0 column 1", .unknownValueType(0), offset: 40),
                    message(7, "0200000000000000 6100000000000000 6200000000000000 0100000000000000 0000000000000000 ffffffffffffffff"))
    }

    @Test func rowsCutInsideARow() {
        // two INTEGER columns; the body ends after the first value of the row
        expectError(DqliteWireError(.response(.rows), field: "row 0 column 1", .truncated(needed: 8, available: 0), offset: 40),
                    message(7, "0200000000000000 6100000000000000 6200000000000000 1100000000000000 0700000000000000"))
        // a TEXT value whose NUL never comes
        expectError(DqliteWireError(.response(.rows), field: "row 0 column 0", .missingTerminator, offset: 24),
                    message(7, "0100000000000000 6100000000000000 0300000000000000 6161616161616161"))
        // a whole row, then no end marker
        expectError(DqliteWireError(.response(.rows), field: "end marker", .truncated(needed: 8, available: 0), offset: 32),
                    message(7, "0100000000000000 6100000000000000 0100000000000000 0700000000000000"))
    }

    @Test func rowWithoutColumns() throws {
        // zero columns, then a word that is not a marker: a zero-width row would loop forever
        expectError(DqliteWireError(.response(.rows), field: "row 0", .rowWithoutColumns, offset: 8), message(7, "0000000000000000 0000000000000000"))
        // zero columns and DONE is fine
        #expect(try DqliteResponse.decode(message(7, "0000000000000000 ffffffffffffffff")) == .rows(DqliteRows(columns: [], rows: [])))
    }

    @Test func unknownRole() {
        expectError(DqliteWireError(.response(.nodes), field: "node 0 role", .invalidValue(7), offset: 24),
                    message(3, "0100000000000000 0100000000000000 6100000000000000 0700000000000000"))
    }

    // MARK: - Requests (the server's view)

    @Test func malformedRequests() {
        #expect(throws: DqliteWireError(.header, field: "type", .unknownMessageType(11))) {
            _ = try DqliteRequest.decode(message(11, "0000000000000000"))
        }
        #expect(throws: DqliteWireError(.request(.cluster), field: "format", .invalidValue(0))) {
            _ = try DqliteRequest.decode(message(16, "0000000000000000"))
        }
        #expect(throws: DqliteWireError(.request(.prepare), field: "database id", .invalidValue(1 << 32))) {
            _ = try DqliteRequest.decode(message(4, "0000000001000000 7800000000000000"))
        }
        #expect(throws: DqliteWireError(.request(.open), field: "schema", .unsupportedSchema(1))) {
            _ = try DqliteRequest.decode(message(3, schema: 1, "6100000000000000 0000000000000000 0000000000000000"))
        }
    }

    // MARK: - Encoding refusals

    @Test func textWithNULIsRefusedAndTheWriterIsLeftWhole() throws {
        var writer = DqliteWriter()
        try DqliteRequest.leader.encode(into: &writer)
        let before = writer.bytes
        #expect(throws: DqliteWireError(.request(.execSQL), field: "parameter 2", .nulInText, offset: 40)) {
            try DqliteRequest.execSQL(database: 0, sql: "SELECT ?, ?", parameters: [.null, .text("a\u{0}b")]).encode(into: &writer)
        }
        #expect(throws: DqliteWireError(.request(.prepare), field: "sql", .nulInText, offset: 8)) {
            try DqliteRequest.prepare(database: 0, sql: "SELECT 1;\u{0}DROP TABLE t").encode(into: &writer)
        }
        #expect(writer.bytes == before)
    }

    @Test func tooManyParametersForSchema0() {
        let many = [DqliteValue](repeating: .integer(1), count: 256)
        #expect(throws: DqliteWireError(.request(.query), field: "parameter count", .tooManyParameters(count: 256, limit: 255))) {
            _ = try DqliteRequest.query(database: 0, statement: 0, parameters: many).encoded(parameterSchema: .v0)
        }
    }

    @Test func responseEncoderRefusesRaggedRows() {
        #expect(throws: DqliteWireError(.response(.rows), field: "row 0", .columnCountMismatch(expected: 2, actual: 1))) {
            _ = try DqliteResponse.rows(DqliteRows(columns: ["a", "b"], rows: [[.null]])).encoded()
        }
    }

    @Test func errorsReadAsOneSentence() {
        let error = DqliteWireError(.response(.rows), field: "row 0 column 1", .truncated(needed: 8, available: 0), offset: 40)
        #expect(error.description == "rows response, row 0 column 1 at body offset 40: needs 8 bytes, 0 left")
    }
}
