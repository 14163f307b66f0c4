// Responses: what a dqlite node answers (dqlite src/response.h, src/gateway.c, src/query.c).
//
// As for requests, each diagram is one body, each row one word-aligned field. A decoder gets
// exactly one framed message and must consume all of it; counts are checked against what is
// left of the body before anything is allocated.

/// A FAILURE response: an SQLite (extended) result code or a dqlite one, and its message.
public struct DqliteFailure: Hashable, Sendable, CustomStringConvertible {
    public var code: UInt64
    public var message: String

    public init(code: UInt64, message: String) {
        self.code = code
        self.message = message
    }

    /// `SQLITE_IOERR_NOT_LEADER`: this node is not the leader; ask LEADER and reconnect.
    public static let notLeader: UInt64 = 10 | 40 << 8
    /// `SQLITE_IOERR_LEADERSHIP_LOST`: leadership was lost while the request ran; its outcome
    /// is unknown.
    public static let leadershipLost: UInt64 = 10 | 41 << 8
    /// `DQLITE_PARSE`: the node could not parse the request.
    public static let parse: UInt64 = 1005
    /// `DQLITE_PROTO`: the node saw a protocol error (an unknown parameter type, …).
    public static let proto: UInt64 = 1001

    /// The primary SQLite result code (the low byte), as SQLite's own errors are matched.
    public var primaryCode: UInt64 { code & 0xff }

    public var description: String { "dqlite failure \(code): \(message)" }
}

/// One node of the answer to CLUSTER.
public struct DqliteNode: Hashable, Sendable {
    public var id: UInt64
    public var address: String
    public var role: DqliteRole

    public init(id: UInt64, address: String, role: DqliteRole) {
        self.id = id
        self.address = address
        self.role = role
    }
}

/// The answer to PREPARE.
public struct DqliteStatement: Hashable, Sendable {
    public var database: UInt32
    public var id: UInt32
    /// How many parameters the statement takes (`sqlite3_bind_parameter_count`).
    public var parameterCount: UInt64
    /// Schema 1 only (dqlite ≥ 1.16, never asked for here): how far into the SQL the first
    /// statement ended.
    public var tailOffset: UInt64?

    public init(database: UInt32, id: UInt32, parameterCount: UInt64, tailOffset: UInt64? = nil) {
        self.database = database
        self.id = id
        self.parameterCount = parameterCount
        self.tailOffset = tailOffset
    }
}

/// The answer to EXEC and EXEC_SQL.
public struct DqliteResult: Hashable, Sendable {
    /// `sqlite3_last_insert_rowid`, sent as its 64-bit pattern.
    public var lastInsertID: Int64
    /// `sqlite3_changes` of the last statement run.
    public var rowsAffected: UInt64

    public init(lastInsertID: Int64, rowsAffected: UInt64) {
        self.lastInsertID = lastInsertID
        self.rowsAffected = rowsAffected
    }
}

/// One ROWS message: a batch of a result set. Every batch repeats the column names.
public struct DqliteRows: Hashable, Sendable {
    public var columns: [String]
    /// Each row has exactly `columns.count` values.
    public var rows: [[DqliteValue]]
    /// True when the batch ended with the PART marker: more ROWS messages follow for the same
    /// query without another request (or send INTERRUPT to stop them).
    public var hasMore: Bool

    public init(columns: [String], rows: [[DqliteValue]], hasMore: Bool = false) {
        self.columns = columns
        self.rows = rows
        self.hasMore = hasMore
    }
}

/// One file of the answer to DUMP (the database, then its WAL).
public struct DqliteFile: Hashable, Sendable {
    public var name: String
    public var data: [UInt8]

    public init(name: String, data: [UInt8]) {
        self.name = name
        self.data = data
    }
}

/// One response, as the client receives it.
public enum DqliteResponse: Hashable, Sendable {
    /// The request failed; the connection stays usable.
    ///   | code (u64) | message (text) |
    case failure(DqliteFailure)
    /// The answer to LEADER: id 0 and an empty address when this node knows no leader.
    ///   | node id (u64) | address (text) |
    case node(id: UInt64, address: String)
    /// The answer to CLIENT.
    ///   | heartbeat timeout in milliseconds (u64) |
    case welcome(heartbeatTimeout: UInt64)
    /// The answer to CLUSTER format 1.
    ///   | count (u64) |
    ///   then per node: | node id (u64) | address (text) | role (u64) |
    case nodes([DqliteNode])
    /// The answer to OPEN.
    ///   | database id (u32) | unused (u32) |
    case database(id: UInt32)
    /// The answer to PREPARE.
    ///   | database id (u32) | statement id (u32) | parameter count (u64) |
    ///   schema 1 adds: | tail offset (u64) |
    case statement(DqliteStatement)
    /// The answer to EXEC and EXEC_SQL.
    ///   | last insert id (u64) | rows affected (u64) |
    case result(DqliteResult)
    /// The answer to QUERY and QUERY_SQL, one batch at a time.
    ///   | column count (u64) | column name (text) × count |
    ///   then per row: | row header | values |   (Tuple.swift)
    ///   | 0xffffffffffffffff (done) or 0xeeeeeeeeeeeeeeee (part: more follow) |
    case rows(DqliteRows)
    /// The answer to FINALIZE, INTERRUPT, ADD, ASSIGN, REMOVE and TRANSFER.
    ///   | unused (u64) |
    case empty
    /// The answer to DUMP.
    ///   | count (u64) |
    ///   then per file: | name (text) | size (u64) | data (size bytes, zeros to a word) |
    case files([DqliteFile])
    /// The answer to DESCRIBE.
    ///   | failure domain (u64) | weight (u64) |
    case metadata(failureDomain: UInt64, weight: UInt64)

    public var type: DqliteResponseType {
        switch self {
        case .failure: .failure
        case .node: .node
        case .welcome: .welcome
        case .nodes: .nodes
        case .database: .database
        case .statement: .statement
        case .result: .result
        case .rows: .rows
        case .empty: .empty
        case .files: .files
        case .metadata: .metadata
        }
    }

    // MARK: - Decoding

    /// Decodes one whole message (header included), exactly as framed by
    /// `DqliteFraming.nextMessage`.
    public static func decode(_ message: ArraySlice<UInt8>) throws(DqliteWireError) -> DqliteResponse {
        let (header, body) = try DqliteFraming.split(message)
        return try decode(header: header, body: body)
    }

    public static func decode(_ message: [UInt8]) throws(DqliteWireError) -> DqliteResponse {
        try decode(message[...])
    }

    /// Decodes a body read after its header (for a reader that reads the 8 header bytes first,
    /// then `header.bodyLength` bytes).
    public static func decode(header: DqliteHeader, body: ArraySlice<UInt8>) throws(DqliteWireError) -> DqliteResponse {
        guard body.count == header.bodyLength else {
            throw DqliteWireError(.header, field: "body length", .lengthMismatch(declared: header.bodyLength, actual: body.count))
        }
        guard let type = DqliteResponseType(rawValue: header.type) else {
            throw DqliteWireError(.header, field: "type", .unknownMessageType(header.type))
        }
        guard header.schema == 0 || (type == .statement && header.schema == 1) else {
            throw DqliteWireError(.response(type), field: "schema", .unsupportedSchema(header.schema))
        }
        var r = WireReader(body: body, message: .response(type))
        let response: DqliteResponse
        switch type {
        case .failure:
            response = .failure(DqliteFailure(code: try r.readUInt64("code"), message: try r.readText("message")))
        case .node:
            response = .node(id: try r.readUInt64("node id"), address: try r.readText("address"))
        case .welcome:
            response = .welcome(heartbeatTimeout: try r.readUInt64("heartbeat timeout"))
        case .nodes:
            // id, a one-word address at least, role.
            let count = try r.readCount("node count", minimumSize: 24)
            var nodes: [DqliteNode] = []
            nodes.reserveCapacity(count)
            for i in 0..<count {
                let id = try r.readUInt64("node \(i) id"), address = try r.readText("node \(i) address")
                let start = r.offset
                let role = try r.readUInt64("node \(i) role")
                guard let known = DqliteRole(rawValue: role) else { throw r.error("node \(i) role", .invalidValue(role), at: start) }
                nodes.append(DqliteNode(id: id, address: address, role: known))
            }
            response = .nodes(nodes)
        case .database:
            let id = try r.readUInt32("database id")
            _ = try r.readUInt32("unused")
            response = .database(id: id)
        case .statement:
            let database = try r.readUInt32("database id"), id = try r.readUInt32("statement id")
            let parameters = try r.readUInt64("parameter count")
            let tail = header.schema == 1 ? try r.readUInt64("tail offset") : nil
            response = .statement(DqliteStatement(database: database, id: id, parameterCount: parameters, tailOffset: tail))
        case .result:
            response = .result(DqliteResult(lastInsertID: try r.readInt64("last insert id"), rowsAffected: try r.readUInt64("rows affected")))
        case .rows:
            response = .rows(try decodeRows(&r))
        case .empty:
            _ = try r.readUInt64("unused")
            response = .empty
        case .files:
            // A one-word name at least, and the size.
            let count = try r.readCount("file count", minimumSize: 16)
            var files: [DqliteFile] = []
            files.reserveCapacity(count)
            for i in 0..<count {
                // The size and data are laid out as a blob; dqlite sends whole pages, so there
                // is never padding, but reading it as a blob accepts it if there were.
                files.append(DqliteFile(name: try r.readText("file \(i) name"), data: try r.readBlob("file \(i) data")))
            }
            response = .files(files)
        case .metadata:
            response = .metadata(failureDomain: try r.readUInt64("failure domain"), weight: try r.readUInt64("weight"))
        }
        try r.expectEnd()
        return response
    }

    private static func decodeRows(_ r: inout WireReader) throws(DqliteWireError) -> DqliteRows {
        // Each name is at least one word.
        let count = try r.readCount("column count", minimumSize: 8)
        var columns: [String] = []
        columns.reserveCapacity(count)
        for i in 0..<count { columns.append(try r.readText("column \(i) name")) }
        var rows: [[DqliteValue]] = []
        while true {
            // No row header can be a marker: its nibbles would be type codes 14 or 15.
            guard let word = r.peekUInt64() else {
                throw r.error("end marker", .truncated(needed: 8, available: r.remaining))
            }
            if word == DqliteProtocol.rowsDone || word == DqliteProtocol.rowsPart {
                _ = try r.readUInt64("end marker")
                return DqliteRows(columns: columns, rows: rows, hasMore: word == DqliteProtocol.rowsPart)
            }
            // A row of no columns would take no bytes: refuse it rather than loop.
            guard count > 0 else { throw r.error("row \(rows.count)", .rowWithoutColumns) }
            rows.append(try Tuple.readRow(from: &r, columns: count, row: rows.count))
        }
    }

    // MARK: - Encoding (the server's side; for tests)

    /// Appends the response (header included) as a dqlite node would send it.
    func encode(into writer: inout DqliteWriter) throws(DqliteWireError) {
        let message = DqliteWireError.Message.response(type)
        let position = writer.beginMessage()
        var schema: UInt8 = 0
        do throws(DqliteWireError) {
            switch self {
            case .failure(let failure):
                writer.writeUInt64(failure.code)
                try writer.writeText(failure.message, message: message, field: "message")
            case .node(let id, let address):
                writer.writeUInt64(id)
                try writer.writeText(address, message: message, field: "address")
            case .welcome(let timeout):
                writer.writeUInt64(timeout)
            case .nodes(let nodes):
                writer.writeUInt64(UInt64(nodes.count))
                for (i, node) in nodes.enumerated() {
                    writer.writeUInt64(node.id)
                    try writer.writeText(node.address, message: message, field: "node \(i) address")
                    writer.writeUInt64(node.role.rawValue)
                }
            case .database(let id):
                writer.writeUInt32(id)
                writer.writeUInt32(0)
            case .statement(let statement):
                writer.writeUInt32(statement.database)
                writer.writeUInt32(statement.id)
                writer.writeUInt64(statement.parameterCount)
                if let tail = statement.tailOffset {
                    writer.writeUInt64(tail)
                    schema = 1
                }
            case .result(let result):
                writer.writeInt64(result.lastInsertID)
                writer.writeUInt64(result.rowsAffected)
            case .rows(let rows):
                writer.writeUInt64(UInt64(rows.columns.count))
                for (i, name) in rows.columns.enumerated() {
                    try writer.writeText(name, message: message, field: "column \(i) name")
                }
                for (i, row) in rows.rows.enumerated() {
                    guard row.count == rows.columns.count, !row.isEmpty else {
                        throw DqliteWireError(message, field: "row \(i)", row.isEmpty ? .rowWithoutColumns : .columnCountMismatch(expected: rows.columns.count, actual: row.count))
                    }
                    try Tuple.writeRow(row, into: &writer, message: message, row: i)
                }
                writer.writeUInt64(rows.hasMore ? DqliteProtocol.rowsPart : DqliteProtocol.rowsDone)
            case .empty:
                writer.writeUInt64(0)
            case .files(let files):
                writer.writeUInt64(UInt64(files.count))
                for (i, file) in files.enumerated() {
                    try writer.writeText(file.name, message: message, field: "file \(i) name")
                    writer.writeBlob(file.data)
                }
            case .metadata(let failureDomain, let weight):
                writer.writeUInt64(failureDomain)
                writer.writeUInt64(weight)
            }
            try writer.finishMessage(at: position, type: type.rawValue, schema: schema, message: message)
        } catch {
            writer.abandonMessage(at: position)
            throw error
        }
    }

    func encoded() throws(DqliteWireError) -> [UInt8] {
        var writer = DqliteWriter(capacity: 64)
        try encode(into: &writer)
        return writer.bytes
    }
}
