// DqliteWire: the client side of dqlite's wire protocol, as a pure codec.
//
// dqlite 1.11 (Debian libdqlite-dev 1.11.1, what Herald runs on) has no public C client API, so
// Herald speaks the protocol itself. This module only turns values into bytes and bytes into
// values: no sockets, no clocks, no Foundation. The I/O client drives it:
//
//   1. connect, send `DqliteProtocol.handshake` (the protocol version, one little-endian word);
//   2. for each call, `DqliteRequest.encode(into:)` and write the bytes;
//   3. read until `DqliteFraming.nextMessage(in:)` says `.message`, then hand exactly that many
//      bytes to `DqliteResponse.decode(_:)`; a ROWS response with `hasMore` is followed by
//      further ROWS messages for the same query, with no request in between.
//
// A `DqliteWireError` from framing or decoding means the byte stream can no longer be trusted:
// close the connection. One from encoding (a NUL inside a string, too many parameters) leaves
// nothing sent and the connection as it was. A FAILURE *response* is neither: it decodes to
// `.failure`, and the connection stays usable.
//
// Deviations from the newest dqlite sources, on purpose (what the installed 1.11 node does wins):
// - Parameters use schema 0 (a one-byte count) unless a statement has more than 255 of them:
//   1.11 ignores the header's schema byte and always reads a one-byte count, so a schema-1
//   tuple is misread there (FAILURE 1005). Schema 1 needs dqlite ≥ 1.12. go-dqlite chooses the
//   same way.
// - NODES is always read as the answer to CLUSTER format 1 (id, address, role); `.cluster`
//   never asks for format 0, whose answer has no role and cannot be told apart on the wire.

/// Protocol-wide constants.
public enum DqliteProtocol {
    /// The protocol version Herald speaks (`DQLITE_PROTOCOL_VERSION`).
    public static let version: UInt64 = 1

    /// The client's first word on a new connection: `version`, little endian, 8 bytes.
    /// The server answers nothing; it closes the connection on a version it does not know.
    public static let handshake: [UInt8] = littleEndianBytes(version)

    /// The word that ends the last ROWS message of a result set.
    public static let rowsDone: UInt64 = 0xffff_ffff_ffff_ffff
    /// The word that ends a ROWS message that more ROWS messages follow.
    public static let rowsPart: UInt64 = 0xeeee_eeee_eeee_eeee

    /// The size of a word: every field of a message body starts on a multiple of it.
    public static let wordSize = 8

    static func littleEndianBytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}

/// Request type codes (`DQLITE_REQUEST_*`). 11 (CONNECT) is raft's, 19 (WEIGHT) unused here.
public enum DqliteRequestType: UInt8, Hashable, Sendable, CaseIterable {
    case leader = 0
    case client = 1
    case heartbeat = 2
    case open = 3
    case prepare = 4
    case exec = 5
    case query = 6
    case finalize = 7
    case execSQL = 8
    case querySQL = 9
    case interrupt = 10
    case add = 12
    case assign = 13
    case remove = 14
    case dump = 15
    case cluster = 16
    case transfer = 17
    case describe = 18
}

/// Response type codes (`DQLITE_RESPONSE_*`).
public enum DqliteResponseType: UInt8, Hashable, Sendable, CaseIterable {
    case failure = 0
    case node = 1
    case welcome = 2
    case nodes = 3
    case database = 4
    case statement = 5
    case result = 6
    case rows = 7
    case empty = 8
    case files = 9
    case metadata = 10
}

/// Which version of a parameter tuple's layout a request uses (the header's schema byte).
public enum DqliteParameterSchema: UInt8, Hashable, Sendable {
    /// A one-byte parameter count: at most 255 parameters. The only one dqlite 1.11 reads.
    case v0 = 0
    /// A four-byte parameter count (dqlite ≥ 1.12).
    case v1 = 1

    /// The narrowest schema that can carry `count` parameters, as go-dqlite chooses: v0 up to
    /// 255 (so dqlite 1.11 understands), v1 above.
    public static func narrowest(for count: Int) -> DqliteParameterSchema {
        count <= Int(UInt8.max) ? .v0 : .v1
    }
}

/// A node's role in the Raft configuration (`DQLITE_VOTER`, …).
public enum DqliteRole: UInt64, Hashable, Sendable, CaseIterable {
    case voter = 0
    case standby = 1
    case spare = 2
}

/// One value bound as a parameter or read from a row: SQLite's five storage classes.
///
/// Rows can carry three more type codes, which decode into these: UNIXTIME (a DATETIME, DATE or
/// TIMESTAMP column holding an integer) as `.integer`, ISO8601 (such a column holding text, or
/// NULL, which dqlite sends as an empty string) as `.text`, BOOLEAN as `.integer(0)` or
/// `.integer(1)`.
public enum DqliteValue: Hashable, Sendable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// The value type codes of tuples (SQLite's, plus dqlite's three special types).
enum DqliteTypeCode: UInt8 {
    case integer = 1
    case float = 2
    case text = 3
    case blob = 4
    case null = 5
    case unixTime = 9
    case iso8601 = 10
    case boolean = 11

    init(of value: DqliteValue) {
        switch value {
        case .integer: self = .integer
        case .real: self = .float
        case .text: self = .text
        case .blob: self = .blob
        case .null: self = .null
        }
    }
}
