public import IP
public import Store

/// The speaker row: who Herald is in BGP and where it listens.
public struct SpeakerSettings: Sendable, Equatable {
    public var asn: UInt32
    public var routerID: IPv4Address
    public var listen: IPEndpoint
    public var holdTime: Int
    public var keepaliveTime: Int
    public var connectRetryTime: Int
    public var gracefulRestartEnabled: Bool
    public var gracefulRestartTime: Int

    /// Reads the speaker row, or nil before the first start.
    public static func load(_ db: Database) throws -> SpeakerSettings? {
        guard let row = try db.firstRow("""
            SELECT asn, router_id, listen_address, listen_port, hold_time, keepalive_time, connect_retry_time,
                   graceful_restart_enabled, graceful_restart_time
            FROM speaker WHERE id = 1
            """) else { return nil }
        return SpeakerSettings(
            asn: try row.get(0),
            routerID: try IPv4Address(parsing: row.get(1, as: String.self)),
            listen: IPEndpoint(address: try IPAddress(parsing: row.get(2, as: String.self)), port: UInt16(try row.get(3, as: Int.self))),
            holdTime: try row.get(4),
            keepaliveTime: try row.get(5),
            connectRetryTime: try row.get(6),
            gracefulRestartEnabled: try row.get(7),
            gracefulRestartTime: try row.get(8))
    }

    /// Writes the speaker row (insert or replace the one row).
    public func save(_ db: Database, now: Int64) throws {
        try db.execute("""
            INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, hold_time, keepalive_time,
                                 connect_retry_time, graceful_restart_enabled, graceful_restart_time, updated_at)
            VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                asn = excluded.asn, router_id = excluded.router_id, listen_address = excluded.listen_address,
                listen_port = excluded.listen_port, hold_time = excluded.hold_time, keepalive_time = excluded.keepalive_time,
                connect_retry_time = excluded.connect_retry_time, graceful_restart_enabled = excluded.graceful_restart_enabled,
                graceful_restart_time = excluded.graceful_restart_time, updated_at = excluded.updated_at
            """, [asn, routerID.description, listen.address.description, Int(listen.port), holdTime, keepaliveTime,
                  connectRetryTime, gracefulRestartEnabled, gracefulRestartTime, now])
    }
}
