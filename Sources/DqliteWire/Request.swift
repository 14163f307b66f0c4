// Requests: what the client sends after the handshake (dqlite src/request.h).
//
// Each body is a sequence of word-aligned fields; every diagram below is one body, each row one
// field, with its size. "text" is a NUL-terminated UTF-8 string padded with zeros to a word;
// "params" is the parameter tuple of Tuple.swift, absent when there are no parameters.
//
// Only EXEC, QUERY, EXEC_SQL and QUERY_SQL put a schema in the header (the parameter tuple's);
// every other request sends 0.

/// One request, as the client sends it.
public enum DqliteRequest: Hashable, Sendable {
    /// Who is the leader? Answered by NODE (id 0 and "" when this node does not know).
    ///   | unused (u64, 0) |
    case leader
    /// Registers the client. Answered by WELCOME.
    ///   | client id (u64) |
    case client(id: UInt64)
    /// A legacy keep-alive. dqlite 1.11 has no handler for it and sends no answer at all:
    /// do not wait for one.
    ///   | timestamp (u64) |
    case heartbeat(timestamp: UInt64)
    /// Opens a database on this connection (one per connection). Answered by DB.
    /// dqlite 1.11 uses only the name; flags and VFS are read and ignored.
    ///   | name (text) | flags (u64) | vfs (text) |
    case open(name: String, flags: UInt64 = 0, vfs: String = "")
    /// Prepares one statement. Answered by STMT.
    ///   | database id (u64) | sql (text) |
    case prepare(database: UInt32, sql: String)
    /// Runs a prepared statement. Answered by RESULT.
    ///   | database id (u32) | statement id (u32) | params |
    case exec(database: UInt32, statement: UInt32, parameters: [DqliteValue] = [])
    /// Runs a prepared query. Answered by ROWS (one or more messages).
    ///   | database id (u32) | statement id (u32) | params |
    case query(database: UInt32, statement: UInt32, parameters: [DqliteValue] = [])
    /// Releases a prepared statement. Answered by EMPTY.
    ///   | database id (u32) | statement id (u32) |
    case finalize(database: UInt32, statement: UInt32)
    /// Prepares and runs SQL (several statements allowed; parameters bind to the first).
    /// Answered by RESULT.
    ///   | database id (u64) | sql (text) | params |
    case execSQL(database: UInt32, sql: String, parameters: [DqliteValue] = [])
    /// Prepares and runs one query. Answered by ROWS (one or more messages).
    ///   | database id (u64) | sql (text) | params |
    case querySQL(database: UInt32, sql: String, parameters: [DqliteValue] = [])
    /// Stops a query whose ROWS are still coming. Answered by EMPTY.
    ///   | database id (u64) |
    case interrupt(database: UInt32)
    /// Adds a node to the cluster as a spare. Answered by EMPTY.
    ///   | node id (u64) | address (text) |
    case add(id: UInt64, address: String)
    /// Changes a node's role. Answered by EMPTY.
    ///   | node id (u64) | role (u64) |
    case assign(id: UInt64, role: DqliteRole)
    /// Removes a node from the cluster. Answered by EMPTY.
    ///   | node id (u64) |
    case remove(id: UInt64)
    /// Asks for a database's files. Answered by FILES.
    ///   | name (text) |
    case dump(name: String)
    /// Asks for the cluster's nodes with their roles (format 1). Answered by NODES.
    ///   | format (u64, 1) |
    case cluster
    /// Hands leadership to another voter. Answered by EMPTY.
    ///   | node id (u64) |
    case transfer(id: UInt64)
    /// Asks for this node's failure domain and weight (format 0). Answered by METADATA.
    ///   | format (u64, 0) |
    case describe

    public var type: DqliteRequestType {
        switch self {
        case .leader: .leader
        case .client: .client
        case .heartbeat: .heartbeat
        case .open: .open
        case .prepare: .prepare
        case .exec: .exec
        case .query: .query
        case .finalize: .finalize
        case .execSQL: .execSQL
        case .querySQL: .querySQL
        case .interrupt: .interrupt
        case .add: .add
        case .assign: .assign
        case .remove: .remove
        case .dump: .dump
        case .cluster: .cluster
        case .transfer: .transfer
        case .describe: .describe
        }
    }

    /// The CLUSTER format asked for: id, address and role per node.
    static let clusterFormat: UInt64 = 1
    /// The DESCRIBE format asked for: failure domain and weight.
    static let describeFormat: UInt64 = 0

    /// The parameters, for the four requests that carry them.
    var parameters: [DqliteValue]? {
        switch self {
        case .exec(_, _, let p), .query(_, _, let p), .execSQL(_, _, let p), .querySQL(_, _, let p): p
        default: nil
        }
    }

    // MARK: - Encoding

    /// Appends the request (header included) to `writer`.
    ///
    /// - Parameter parameterSchema: the layout of the parameter tuple; by default the narrowest
    ///   that fits (`DqliteParameterSchema.narrowest(for:)`), which dqlite 1.11 reads whenever
    ///   it can. Ignored by requests without parameters.
    /// - Throws: `DqliteWireError` when a string holds a NUL byte (`.nulInText`) or there are
    ///   more parameters than the schema can count (`.tooManyParameters`); `writer` is then left
    ///   as it was.
    public func encode(into writer: inout DqliteWriter, parameterSchema: DqliteParameterSchema? = nil) throws(DqliteWireError) {
        let message = DqliteWireError.Message.request(type)
        var schema: DqliteParameterSchema = .v0
        if let parameters { schema = parameterSchema ?? .narrowest(for: parameters.count) }
        let position = writer.beginMessage()
        do throws(DqliteWireError) {
            try encodeBody(into: &writer, schema: schema, message: message)
            try writer.finishMessage(at: position, type: type.rawValue, schema: parameters == nil ? 0 : schema.rawValue, message: message)
        } catch {
            writer.abandonMessage(at: position)
            throw error
        }
    }

    /// The request's bytes (header included).
    public func encoded(parameterSchema: DqliteParameterSchema? = nil) throws(DqliteWireError) -> [UInt8] {
        var writer = DqliteWriter(capacity: 64)
        try encode(into: &writer, parameterSchema: parameterSchema)
        return writer.bytes
    }

    private func encodeBody(into w: inout DqliteWriter, schema: DqliteParameterSchema, message m: DqliteWireError.Message) throws(DqliteWireError) {
        switch self {
        case .leader:
            w.writeUInt64(0)
        case .client(let id), .remove(let id), .transfer(let id):
            w.writeUInt64(id)
        case .heartbeat(let timestamp):
            w.writeUInt64(timestamp)
        case .open(let name, let flags, let vfs):
            try w.writeText(name, message: m, field: "name")
            w.writeUInt64(flags)
            try w.writeText(vfs, message: m, field: "vfs")
        case .prepare(let database, let sql):
            w.writeUInt64(UInt64(database))
            try w.writeText(sql, message: m, field: "sql")
        case .exec(let database, let statement, let parameters), .query(let database, let statement, let parameters):
            w.writeUInt32(database)
            w.writeUInt32(statement)
            try Tuple.writeParameters(parameters, schema: schema, into: &w, message: m)
        case .finalize(let database, let statement):
            w.writeUInt32(database)
            w.writeUInt32(statement)
        case .execSQL(let database, let sql, let parameters), .querySQL(let database, let sql, let parameters):
            w.writeUInt64(UInt64(database))
            try w.writeText(sql, message: m, field: "sql")
            try Tuple.writeParameters(parameters, schema: schema, into: &w, message: m)
        case .interrupt(let database):
            w.writeUInt64(UInt64(database))
        case .add(let id, let address):
            w.writeUInt64(id)
            try w.writeText(address, message: m, field: "address")
        case .assign(let id, let role):
            w.writeUInt64(id)
            w.writeUInt64(role.rawValue)
        case .dump(let name):
            try w.writeText(name, message: m, field: "name")
        case .cluster:
            w.writeUInt64(Self.clusterFormat)
        case .describe:
            w.writeUInt64(Self.describeFormat)
        }
    }

    // MARK: - Decoding (the server's side; for tests)

    /// Decodes one whole request (header included), as a dqlite node would read it.
    static func decode(_ message: ArraySlice<UInt8>) throws(DqliteWireError) -> DqliteRequest {
        let (header, body) = try DqliteFraming.split(message)
        guard let type = DqliteRequestType(rawValue: header.type) else {
            throw DqliteWireError(.header, field: "type", .unknownMessageType(header.type))
        }
        var r = WireReader(body: body, message: .request(type))
        let hasParameters = [.exec, .query, .execSQL, .querySQL].contains(type)
        guard header.schema == 0 || (hasParameters && header.schema == 1) else {
            throw DqliteWireError(.request(type), field: "schema", .unsupportedSchema(header.schema))
        }
        let schema: DqliteParameterSchema = header.schema == 1 ? .v1 : .v0
        let request: DqliteRequest
        switch type {
        case .leader:
            _ = try r.readUInt64("unused")
            request = .leader
        case .client: request = .client(id: try r.readUInt64("client id"))
        case .heartbeat: request = .heartbeat(timestamp: try r.readUInt64("timestamp"))
        case .open:
            request = .open(name: try r.readText("name"), flags: try r.readUInt64("flags"), vfs: try r.readText("vfs"))
        case .prepare:
            request = .prepare(database: try Self.readDatabase64(&r), sql: try r.readText("sql"))
        case .exec, .query:
            let database = try r.readUInt32("database id"), statement = try r.readUInt32("statement id")
            let parameters = try Tuple.readParameters(from: &r, schema: schema)
            request = type == .exec
                ? .exec(database: database, statement: statement, parameters: parameters)
                : .query(database: database, statement: statement, parameters: parameters)
        case .finalize:
            request = .finalize(database: try r.readUInt32("database id"), statement: try r.readUInt32("statement id"))
        case .execSQL, .querySQL:
            let database = try Self.readDatabase64(&r), sql = try r.readText("sql")
            let parameters = try Tuple.readParameters(from: &r, schema: schema)
            request = type == .execSQL
                ? .execSQL(database: database, sql: sql, parameters: parameters)
                : .querySQL(database: database, sql: sql, parameters: parameters)
        case .interrupt: request = .interrupt(database: try Self.readDatabase64(&r))
        case .add: request = .add(id: try r.readUInt64("node id"), address: try r.readText("address"))
        case .assign:
            let id = try r.readUInt64("node id")
            // dqlite reads a one-field ASSIGN as the older PROMOTE: make it a voter.
            let start = r.offset
            let role = r.isAtEnd ? DqliteRole.voter.rawValue : try r.readUInt64("role")
            guard let known = DqliteRole(rawValue: role) else { throw r.error("role", .invalidValue(role), at: start) }
            request = .assign(id: id, role: known)
        case .remove: request = .remove(id: try r.readUInt64("node id"))
        case .dump: request = .dump(name: try r.readText("name"))
        case .cluster:
            let format = try r.readUInt64("format")
            guard format == clusterFormat else { throw r.error("format", .invalidValue(format), at: 0) }
            request = .cluster
        case .transfer: request = .transfer(id: try r.readUInt64("node id"))
        case .describe:
            let format = try r.readUInt64("format")
            guard format == describeFormat else { throw r.error("format", .invalidValue(format), at: 0) }
            request = .describe
        }
        try r.expectEnd()
        return request
    }

    static func decode(_ message: [UInt8]) throws(DqliteWireError) -> DqliteRequest {
        try decode(message[...])
    }

    /// A database id sent as a u64, though dqlite hands out u32 ids (DB carries a u32).
    private static func readDatabase64(_ r: inout WireReader) throws(DqliteWireError) -> UInt32 {
        let start = r.offset
        let id = try r.readUInt64("database id")
        guard let narrow = UInt32(exactly: id) else { throw r.error("database id", .invalidValue(id), at: start) }
        return narrow
    }
}
