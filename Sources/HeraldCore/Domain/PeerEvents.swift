public import Store

/// A NOTIFICATION as recorded in session history.
public struct RecordedNotification: Sendable, Equatable {
    public enum Direction: String, Sendable { case sent, received }

    public let code: UInt8
    public let subcode: UInt8
    /// RFC 8203/9003 shutdown communication, or the data rendered for people.
    public let text: String?
    public let direction: Direction

    public init(code: UInt8, subcode: UInt8, text: String?, direction: Direction) {
        self.code = code
        self.subcode = subcode
        self.text = text
        self.direction = direction
    }
}

/// One session event: a state change with its reason in words.
public struct PeerEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case established, down, state, config, maxPrefix = "max_prefix" }

    public let id: Int64
    public let at: Int64
    public let peer: String
    public let kind: Kind
    public let fromState: String?
    public let toState: String?
    public let reason: String
    public let notification: RecordedNotification?
}

/// The persistent history of BGP sessions. Rows name the peer by text, so they outlive it.
public enum PeerEvents {
    public static func append(_ db: Database, peer: String, kind: PeerEvent.Kind, from: String? = nil, to: String? = nil,
                              reason: String, notification: RecordedNotification? = nil, now: Int64) throws {
        try db.execute("""
            INSERT INTO peer_events (at, peer, kind, from_state, to_state, reason, notification_code, notification_subcode,
                                     notification_text, notification_direction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [now, peer, kind.rawValue, from, to, reason, notification.map { Int($0.code) }, notification.map { Int($0.subcode) },
                  notification?.text, notification?.direction.rawValue])
    }

    /// Events of one peer in `order` (oldest first by default), after the id `cursor` in that
    /// order (nil: the first page). The index on (peer, id) serves either direction.
    public static func list(_ db: Database, peer: String, order: EventOrder = .asc, after cursor: Int64? = nil, limit: Int = 100) throws -> [PeerEvent] {
        try db.rows("""
            SELECT id, at, peer, kind, from_state, to_state, reason, notification_code, notification_subcode, notification_text,
                   notification_direction FROM peer_events WHERE peer = ? AND id \(order.after) ? ORDER BY id\(order.direction) LIMIT ?
            """, [peer, cursor ?? order.start, limit]).map { row in
            guard let kind = PeerEvent.Kind(rawValue: try row.get(3)) else {
                throw DatabaseError.typeMismatch("peer event \(try row.get(0, as: Int64.self)) has an unknown kind")
            }
            var notification: RecordedNotification?
            if let code: Int = try row.get(7), let subcode: Int = try row.get(8),
               let direction = RecordedNotification.Direction(rawValue: try row.get(10, as: String?.self) ?? "") {
                notification = RecordedNotification(code: UInt8(code), subcode: UInt8(subcode), text: try row.get(9), direction: direction)
            }
            return PeerEvent(id: try row.get(0), at: try row.get(1), peer: try row.get(2), kind: kind, fromState: try row.get(4),
                             toState: try row.get(5), reason: try row.get(6), notification: notification)
        }
    }
}
