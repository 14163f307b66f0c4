import TestSupport
import Testing
@testable import DqliteWire

/// Requests both ways: value → bytes (compared as hex with a vector derived by hand from the
/// layout) → value. Each vector reads: header (words, type, schema, unused) | body fields.
@Suite struct RequestVectorTests {
    func check(_ request: DqliteRequest, schema: DqliteParameterSchema? = nil, _ vector: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try request.encoded(parameterSchema: schema)
        #expect(bytes.hexString == hex(vector).hexString, sourceLocation: sourceLocation)
        #expect(try DqliteRequest.decode(bytes) == request, sourceLocation: sourceLocation)
    }

    @Test func handshakeIsVersionOneLittleEndian() {
        #expect(DqliteProtocol.handshake.hexString == "0100000000000000")
    }

    @Test func leader() throws {
        // 1 word, type 0 | unused u64
        try check(.leader, "01000000 00 00 0000 | 0000000000000000")
    }

    @Test func client() throws {
        // 1 word, type 1 | client id 7
        try check(.client(id: 7), "01000000 01 00 0000 | 0700000000000000")
    }

    @Test func heartbeat() throws {
        // 1 word, type 2 | timestamp 0x0102
        try check(.heartbeat(timestamp: 0x0102), "01000000 02 00 0000 | 0201000000000000")
    }

    @Test func open() throws {
        // 3 words, type 3 | "demo" NUL + 3 zeros | flags 6 | vfs "" is one NUL and 7 zeros
        try check(.open(name: "demo", flags: 6), "03000000 03 00 0000 | 64656d6f00000000 | 0600000000000000 | 0000000000000000")
        // a name of exactly 8 bytes needs a second word for its NUL
        try check(.open(name: "herald-1", vfs: "volatile"),
                  "05000000 03 00 0000 | 686572616c642d31 0000000000000000 | 0000000000000000 | 766f6c6174696c65 0000000000000000")
    }

    @Test func prepare() throws {
        // 3 words, type 4 | database 0 as u64 | "SELECT 1" (8 bytes) NUL + 7 zeros
        try check(.prepare(database: 0, sql: "SELECT 1"), "03000000 04 00 0000 | 0000000000000000 | 53454c4543542031 0000000000000000")
    }

    static let fiveParameters: [DqliteValue] = [.integer(-1), .real(1.5), .text("hi"), .blob([1, 2, 3]), .null]

    @Test func execWithEveryParameterTypeSchema0() throws {
        // 8 words, type 5, schema 0
        // | database u32 0 | statement u32 1 |
        // | count 5 | types 1 2 3 4 5 | 2 zeros to the word |
        // | -1 | 1.5 = 0x3ff8000000000000 | "hi" NUL + 5 zeros | blob length 3 | 01 02 03 + 5 zeros | NULL word |
        try check(.exec(database: 0, statement: 1, parameters: Self.fiveParameters), """
            08000000 05 00 0000 | 00000000 01000000
            | 05 0102030405 0000
            | ffffffffffffffff | 000000000000f83f | 6869000000000000 | 0300000000000000 0102030000000000 | 0000000000000000
            """)
    }

    @Test func execWithEveryParameterTypeSchema1() throws {
        // 9 words, type 5, schema 1
        // | database u32 0 | statement u32 1 |
        // | count u32 5 | types 1 2 3 4 5 | 7 zeros: count and types padded together to 16 |
        // | values as above |
        try check(.exec(database: 0, statement: 1, parameters: Self.fiveParameters), schema: .v1, """
            09000000 05 01 0000 | 00000000 01000000
            | 05000000 0102030405 000000 00000000
            | ffffffffffffffff | 000000000000f83f | 6869000000000000 | 0300000000000000 0102030000000000 | 0000000000000000
            """)
    }

    @Test func queryWithoutParametersHasNoTuple() throws {
        // 1 word, type 6 | database u32 0 | statement u32 2 | (no tuple at all)
        try check(.query(database: 0, statement: 2), "01000000 06 00 0000 | 00000000 02000000")
    }

    @Test func finalize() throws {
        try check(.finalize(database: 0, statement: 2), "01000000 07 00 0000 | 00000000 02000000")
    }

    @Test func execSQL() throws {
        // 5 words, type 8 | database 0 as u64 | "DELETE FROM t" (13) NUL + 2 zeros | count 1 type 1 + 6 zeros | 7
        try check(.execSQL(database: 0, sql: "DELETE FROM t", parameters: [.integer(7)]), """
            05000000 08 00 0000 | 0000000000000000 | 44454c4554452046 524f4d2074000000
            | 0101000000000000 | 0700000000000000
            """)
    }

    @Test func querySQL() throws {
        // 5 words, type 9 | database 0 | "SELECT ?" NUL + 7 zeros | count 1 type 3 + 6 zeros | "" = NUL + 7 zeros
        try check(.querySQL(database: 0, sql: "SELECT ?", parameters: [.text("")]), """
            05000000 09 00 0000 | 0000000000000000 | 53454c454354203f 0000000000000000
            | 0103000000000000 | 0000000000000000
            """)
    }

    @Test func interrupt() throws {
        try check(.interrupt(database: 0), "01000000 0a 00 0000 | 0000000000000000")
    }

    @Test func add() throws {
        // 3 words, type 12 | id 2 | "127.0.0.1:9002" (14) NUL + 1 zero
        try check(.add(id: 2, address: "127.0.0.1:9002"), "03000000 0c 00 0000 | 0200000000000000 | 3132372e302e302e 313a393030320000")
    }

    @Test func assign() throws {
        // 2 words, type 13 | id 2 | role 2 (spare)
        try check(.assign(id: 2, role: .spare), "02000000 0d 00 0000 | 0200000000000000 | 0200000000000000")
        // dqlite reads the older one-field PROMOTE under the same code as "make it a voter"
        #expect(try DqliteRequest.decode(hex("01000000 0d 00 0000 | 0200000000000000")) == .assign(id: 2, role: .voter))
    }

    @Test func remove() throws {
        try check(.remove(id: 2), "01000000 0e 00 0000 | 0200000000000000")
    }

    @Test func dump() throws {
        try check(.dump(name: "demo"), "01000000 0f 00 0000 | 64656d6f00000000")
    }

    @Test func clusterAsksForFormat1() throws {
        try check(.cluster, "01000000 10 00 0000 | 0100000000000000")
    }

    @Test func transfer() throws {
        try check(.transfer(id: 3), "01000000 11 00 0000 | 0300000000000000")
    }

    @Test func describeAsksForFormat0() throws {
        try check(.describe, "01000000 12 00 0000 | 0000000000000000")
    }

    @Test func narrowestSchemaFollowsTheParameterCount() throws {
        #expect(DqliteParameterSchema.narrowest(for: 255) == .v0)
        #expect(DqliteParameterSchema.narrowest(for: 256) == .v1)
        let many = [DqliteValue](repeating: .null, count: 256)
        let bytes = try DqliteRequest.execSQL(database: 0, sql: "x", parameters: many).encoded()
        // header schema 1, then database, "x", and the u32 count 256
        #expect(bytes[5] == 1)
        #expect(Array(bytes[24..<28]).hexString == "00010000")
        #expect(try DqliteRequest.decode(bytes) == .execSQL(database: 0, sql: "x", parameters: many))
    }

    @Test func requestsAppendToOneWriter() throws {
        var writer = DqliteWriter()
        try DqliteRequest.leader.encode(into: &writer)
        try DqliteRequest.client(id: 1).encode(into: &writer)
        #expect(writer.bytes.hexString == hex("01000000 00 00 0000 0000000000000000 01000000 01 00 0000 0100000000000000").hexString)
    }
}
