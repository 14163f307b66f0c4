import TestSupport
import Testing
@testable import DqliteWire

/// Responses both ways: bytes → value (checked) → bytes (compared as hex). Vectors marked
/// "from dqlite 1.11" are bodies a real node (dqlite-demo, libdqlite 1.11.1) sent; the rest are
/// derived by hand from the layout.
@Suite struct ResponseVectorTests {
    func roundTrip(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> DqliteResponse {
        let decoded = try DqliteResponse.decode(bytes)
        #expect(try decoded.encoded().hexString == bytes.hexString, sourceLocation: sourceLocation)
        return decoded
    }

    @Test func failure() throws {
        // from dqlite 1.11 (EXEC_SQL "SELEC bad"): code 1 (SQLITE_ERROR) | 'near "SELEC": syntax error' (26) NUL + 5 zeros
        let bytes = message(0, "0100000000000000 | 6e656172202253454c4543223a2073796e746178206572726f72000000000000")
        #expect(try roundTrip(bytes) == .failure(DqliteFailure(code: 1, message: #"near "SELEC": syntax error"#)))
    }

    @Test func failureCodes() {
        #expect(DqliteFailure.notLeader == 10250)
        #expect(DqliteFailure.leadershipLost == 10506)
        #expect(DqliteFailure(code: DqliteFailure.notLeader, message: "").primaryCode == 10)
    }

    @Test func node() throws {
        // from dqlite 1.11 (LEADER): id 0x2dc171858c3155be | "127.0.0.1:39102" (15) NUL
        let bytes = message(1, "be55318c8571c12d | 3132372e302e302e 313a333931303200")
        #expect(try roundTrip(bytes) == .node(id: 0x2dc1_7185_8c31_55be, address: "127.0.0.1:39102"))
    }

    @Test func nodeWithoutLeader() throws {
        // id 0 | "" (no leader known)
        #expect(try roundTrip(message(1, "0000000000000000 | 0000000000000000")) == .node(id: 0, address: ""))
    }

    @Test func welcome() throws {
        // from dqlite 1.11 (CLIENT): heartbeat timeout 15000 ms
        #expect(try roundTrip(message(2, "983a000000000000")) == .welcome(heartbeatTimeout: 15000))
    }

    @Test func nodes() throws {
        // from dqlite 1.11 (CLUSTER format 1): count 1 | id | "127.0.0.1:39102" NUL | role 0 (voter)
        let bytes = message(3, "0100000000000000 | be55318c8571c12d | 3132372e302e302e 313a333931303200 | 0000000000000000")
        #expect(try roundTrip(bytes) == .nodes([DqliteNode(id: 0x2dc1_7185_8c31_55be, address: "127.0.0.1:39102", role: .voter)]))
    }

    @Test func database() throws {
        // from dqlite 1.11 (OPEN): id u32 0 | unused u32
        #expect(try roundTrip(message(4, "00000000 00000000")) == .database(id: 0))
    }

    @Test func statement() throws {
        // from dqlite 1.11 (PREPARE "SELECT ?, ?, ?"): database u32 0 | statement u32 0 | 3 parameters
        #expect(try roundTrip(message(5, "00000000 00000000 | 0300000000000000")) == .statement(DqliteStatement(database: 0, id: 0, parameterCount: 3)))
        // schema 1 (newer dqlite, PREPARE schema 1) adds the tail offset
        #expect(try roundTrip(message(5, schema: 1, "00000000 05000000 | 0000000000000000 | 0800000000000000"))
                == .statement(DqliteStatement(database: 0, id: 5, parameterCount: 0, tailOffset: 8)))
    }

    @Test func result() throws {
        // from dqlite 1.11 (an INSERT): last insert id 1 | rows affected 1
        #expect(try roundTrip(message(6, "0100000000000000 0100000000000000")) == .result(DqliteResult(lastInsertID: 1, rowsAffected: 1)))
        // a negative rowid travels as its bit pattern
        #expect(try roundTrip(message(6, "feffffffffffffff 0000000000000000")) == .result(DqliteResult(lastInsertID: -2, rowsAffected: 0)))
    }

    @Test func rowsWithIntegerTextNull() throws {
        // from dqlite 1.11 (QUERY of "SELECT ?, ?, ?" bound to -2, "hé", NULL):
        // 3 columns | "?" × 3 | row header: column 0 type 1 low nibble, column 1 type 3 high,
        // column 2 type 5, padded to a word | -2 | "hé" (3 bytes) NUL + 4 zeros | NULL word | DONE
        let bytes = message(7, """
            0300000000000000 | 3f00000000000000 3f00000000000000 3f00000000000000
            | 3105000000000000 | feffffffffffffff | 68c3a90000000000 | 0000000000000000
            | ffffffffffffffff
            """)
        #expect(try roundTrip(bytes) == .rows(DqliteRows(columns: ["?", "?", "?"], rows: [[.integer(-2), .text("hé"), .null]])))
    }

    @Test func rowsWithRealAndBlobAndPartMarker() throws {
        // 2 columns "r", "b" | two rows, each: header types 2, 4 (0x42) | value words | PART marker
        let bytes = message(7, """
            0200000000000000 | 7200000000000000 6200000000000000
            | 4200000000000000 | 000000000000f0bf | 0000000000000000
            | 4200000000000000 | 182d4454fb210940 | 0900000000000000 0001020304050607 0800000000000000
            | eeeeeeeeeeeeeeee
            """)
        #expect(try roundTrip(bytes) == .rows(DqliteRows(
            columns: ["r", "b"],
            rows: [[.real(-1), .blob([])], [.real(3.141592653589793), .blob([0, 1, 2, 3, 4, 5, 6, 7, 8])]],
            hasMore: true)))
    }

    @Test func rowsWithSpecialTypesDecodeToPlainValues() throws {
        // from dqlite 1.11 (SELECT * FROM t with a INTEGER, ts DATETIME, d DATE, b BOOLEAN):
        // 4 columns | "a" "ts" "d" "b" | header: types 1, 9 (UNIXTIME), 10 (ISO8601), 11 (BOOLEAN)
        // | 5 | 1700000000 | "2024-01-02 03:04:05" (19) NUL + 4 zeros | 1 | DONE
        let bytes = message(7, """
            0400000000000000 | 6100000000000000 7473000000000000 6400000000000000 6200000000000000
            | 91ba000000000000 | 0500000000000000 | 00f1536500000000
            | 323032342d30312d 30322030333a3034 3a30350000000000 | 0100000000000000
            | ffffffffffffffff
            """)
        // Decode only: the special types come back as INTEGER and TEXT, so the bytes differ.
        #expect(try DqliteResponse.decode(bytes) == .rows(DqliteRows(
            columns: ["a", "ts", "d", "b"],
            rows: [[.integer(5), .integer(1_700_000_000), .text("2024-01-02 03:04:05"), .integer(1)]])))
        // BOOLEAN reads any non-zero word as 1, as go-dqlite and dqlite's binding do.
        let seven = message(7, "0100000000000000 | 6200000000000000 | 0b00000000000000 | 0700000000000000 | ffffffffffffffff")
        #expect(try DqliteResponse.decode(seven) == .rows(DqliteRows(columns: ["b"], rows: [[.integer(1)]])))
    }

    @Test func rowsWithSeventeenColumnsNeedATwoWordHeader() throws {
        // 17 columns: 17 nibbles = 9 bytes, padded to 16
        let names = String(repeating: "6300000000000000 ", count: 17)
        let bytes = message(7, "1100000000000000 | \(names) | 1111111111111111 0100000000000000 | \(String(repeating: "0000000000000000 ", count: 17)) | ffffffffffffffff")
        let rows = DqliteRows(columns: Array(repeating: "c", count: 17), rows: [Array(repeating: .integer(0), count: 17)])
        #expect(try roundTrip(bytes) == .rows(rows))
    }

    @Test func emptyResultSet() throws {
        // from dqlite 1.11 (SELECT 1 WHERE 0): 1 column "1" | no rows | DONE
        #expect(try roundTrip(message(7, "0100000000000000 | 3100000000000000 | ffffffffffffffff")) == .rows(DqliteRows(columns: ["1"], rows: [])))
    }

    @Test func empty() throws {
        // from dqlite 1.11 (FINALIZE): one unused word
        #expect(try roundTrip(message(8, "0000000000000000")) == .empty)
    }

    @Test func files() throws {
        // count 2 | "demo" NUL + 3 | size 8 | 8 bytes | "demo-wal" (8) NUL + 7 | size 0 | (no data)
        let bytes = message(9, """
            0200000000000000
            | 64656d6f00000000 | 0800000000000000 | 0102030405060708
            | 64656d6f2d77616c 0000000000000000 | 0000000000000000
            """)
        #expect(try roundTrip(bytes) == .files([DqliteFile(name: "demo", data: [1, 2, 3, 4, 5, 6, 7, 8]), DqliteFile(name: "demo-wal", data: [])]))
    }

    @Test func metadata() throws {
        // failure domain 3 | weight 7
        #expect(try roundTrip(message(10, "0300000000000000 0700000000000000")) == .metadata(failureDomain: 3, weight: 7))
    }

    @Test func decodeFromHeaderAndBody() throws {
        let bytes = message(2, "983a000000000000")
        let header = try #require(DqliteHeader(bytes))
        #expect(header == DqliteHeader(words: 1, type: 2))
        #expect(try DqliteResponse.decode(header: header, body: bytes[8...]) == .welcome(heartbeatTimeout: 15000))
    }
}
