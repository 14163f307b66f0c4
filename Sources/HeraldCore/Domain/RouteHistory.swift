public import IP
public import Store

/// How the desired table changed in one commit.
public struct RouteDiff: Sendable, Equatable {
    /// Prefixes that were not announced before.
    public var announced: [DesiredRoute] = []
    /// Prefixes still announced, with other paths or attributes (e.g. a node moved).
    public var updated: [DesiredRoute] = []
    /// Prefixes no longer announced (the route as it was).
    public var withdrawn: [DesiredRoute] = []

    public init(announced: [DesiredRoute] = [], updated: [DesiredRoute] = [], withdrawn: [DesiredRoute] = []) {
        self.announced = announced
        self.updated = updated
        self.withdrawn = withdrawn
    }

    public var isEmpty: Bool { announced.isEmpty && updated.isEmpty && withdrawn.isEmpty }

    /// The difference from `before` to `after`, each list sorted by prefix.
    public static func between(_ before: [IPPrefix: DesiredRoute], _ after: [IPPrefix: DesiredRoute]) -> RouteDiff {
        var diff = RouteDiff()
        for (prefix, route) in after {
            if let old = before[prefix] {
                if old.paths != route.paths || old.attributes != route.attributes { diff.updated.append(route) }
            } else {
                diff.announced.append(route)
            }
        }
        for (prefix, route) in before where after[prefix] == nil { diff.withdrawn.append(route) }
        diff.announced.sort { $0.prefix < $1.prefix }
        diff.updated.sort { $0.prefix < $1.prefix }
        diff.withdrawn.sort { $0.prefix < $1.prefix }
        return diff
    }
}

/// One row of the announce/withdraw history.
public struct RouteEvent: Sendable, Equatable {
    public enum Action: String, Sendable, Codable { case announce, withdraw, update }

    public let id: Int64
    public let at: Int64
    public let action: Action
    public let prefix: IPPrefix
    public let source: RouteSource
    /// Paths after the change (empty for a withdraw): next hop, node, attributes, as JSON text.
    public let pathsJSON: String
    public let reason: String
    public let requestID: String?
}

/// The persistent history of every announce, update and withdraw, written in the same
/// transaction as the change that caused it.
public enum RouteHistory {
    struct PathRecord: Encodable {
        let nextHop: String
        let node: String?
        let attributes: AnnounceAttributes

        enum CodingKeys: String, CodingKey {
            case nextHop = "next_hop"
            case node
            case attributes
        }
    }

    static func pathsJSON(_ route: DesiredRoute?) -> String {
        guard let route else { return "[]" }
        return JSONColumn.encode(route.paths.map { PathRecord(nextHop: $0.nextHop.description, node: $0.node, attributes: route.attributes) })
    }

    struct PathsKey: Hashable {
        let paths: [RoutePath]
        let attributes: AnnounceAttributes
    }

    /// Appends one row per changed prefix.
    public static func append(_ db: Database, _ diff: RouteDiff, reason: String, requestID: String?, now: Int64) throws {
        // Multi-row statements: a bulk load writes a million rows.
        var rows = BulkInsert(db, "INSERT INTO route_events (at, action, prefix, family, source, source_name, paths, reason, request_id, prefix_key)",
                              columns: 10)
        let requestIDValue: DatabaseValue = requestID.map { .text($0) } ?? .null
        // A bulk load announces a million routes with the same few path sets: encode each once,
        // and first compare with the previous route's (cheaper than hashing paths per row).
        var encoded: [PathsKey: String] = [:]
        var lastPaths: [RoutePath]?
        var lastAttributes = AnnounceAttributes()
        var lastText = ""
        for (action, routes) in [(RouteEvent.Action.announce, diff.announced), (.update, diff.updated), (.withdraw, diff.withdrawn)] {
            for route in routes {
                let paths: String
                if action == .withdraw {
                    paths = "[]"
                } else if let lastPaths, lastPaths == route.paths, lastAttributes == route.attributes {
                    paths = lastText
                } else {
                    let key = PathsKey(paths: route.paths, attributes: route.attributes)
                    if let known = encoded[key] {
                        paths = known
                    } else {
                        paths = pathsJSON(route)
                        if encoded.count < 4096 { encoded[key] = paths }
                    }
                    (lastPaths, lastAttributes, lastText) = (route.paths, route.attributes, paths)
                }
                let source = route.firstSource ?? RouteSource(kind: .static, name: "?")
                rows.append(.integer(now))
                rows.append(.text(action.rawValue))
                rows.append(.text(route.prefix.description))
                rows.append(.text(route.prefix.family.rawValue))
                rows.append(.text(source.kind.rawValue))
                rows.append(.text(source.name))
                rows.append(.text(paths))
                rows.append(.text(reason))
                rows.append(requestIDValue)
                rows.append(.blob(PrefixKey.of(route.prefix)))
                try rows.endRow()
            }
        }
        try rows.flush()
    }

    /// History rows in `order` (oldest first by default) after `cursor` (an event id: the ids
    /// above it, or below it newest first; nil for the first page), optionally only for
    /// prefixes inside `within` (a host prefix: that address), and inside a time window.
    ///
    /// With `within`, a page is found through the key index (`PrefixKey`): a host prefix costs
    /// one seek and the page, a wider one the index entries inside it; rows outside it are never
    /// read. The peer (`concerns`) is checked here, and so is `within` for rows that have no key
    /// yet (`fillPrefixKeys`), so pages are read until `limit` rows match.
    public static func list(_ db: Database, within: IPPrefix? = nil, since: Int64? = nil, until: Int64? = nil,
                            for peer: PeerConfig? = nil, order: EventOrder = .asc, after cursor: Int64? = nil, limit: Int = 100) throws -> [RouteEvent] {
        let (sql, keys) = pageQuery(within: within, order: order)
        var events: [RouteEvent] = []
        var next = cursor ?? order.start
        while events.count < limit {
            let rows = try db.rows(sql, [.integer(next), since.databaseValue, until.databaseValue, .integer(Int64(max(limit, 256)))] + keys)
            guard !rows.isEmpty else { break }
            for row in rows {
                next = try row.get(0)
                let event = try Self.event(row)
                if let within, !within.contains(event.prefix) { continue }
                if let peer, !concerns(event, peer) { continue }
                events.append(event)
                if events.count == limit { break }
            }
        }
        return events
    }

    /// The statement `list` pages with, and its key arguments. Its parameters: ?1 the cursor,
    /// ?2 and ?3 the time window (NULL: open), ?4 the page size, then the key or key range.
    static func pageQuery(within: IPPrefix?, order: EventOrder = .asc) -> (sql: String, keys: [DatabaseValue]) {
        guard let within else { return (everyPage(order), []) }
        if within.isHost { return (keyedPage("prefix_key = ?5", order), [.blob(PrefixKey.of(within))]) }
        let range = PrefixKey.range(inside: within)
        return (keyedPage("prefix_key BETWEEN ?5 AND ?6", order), [.blob(range.low), .blob(range.high)])
    }

    private static let columns = "id, at, action, prefix, source, source_name, paths, reason, request_id"

    private static func window(_ order: EventOrder) -> String {
        "id \(order.after) ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at <= ?3)"
    }

    /// Every row: the table's rowid order, walked backwards for newest first.
    private static func everyPage(_ order: EventOrder) -> String {
        "SELECT \(columns) FROM route_events WHERE \(window(order)) ORDER BY id\(order.direction) LIMIT ?4"
    }

    /// The page's ids are the keyed rows that match merged (in id order) with the rows that have
    /// no key yet, which `list` tests itself; once every row has a key the second half is one seek.
    /// One key (a host): the index hands its rows over in id order from the cursor, either way,
    /// nothing to sort. A range of keys comes out in key order, so its ids are sorted: ids only,
    /// read from the index (the table only for a time window's `at`), not whole rows.
    /// INDEXED BY: without statistics SQLite's planner prefers walking the table in id order (the
    /// ORDER BY for free) and testing each key, which reads the whole table for a rare prefix —
    /// what this replaces. SQLite's documentation ("The INDEXED BY Clause") keeps it for exactly
    /// this: a query whose plan must not change, and an error rather than a scan if the index goes.
    private static func keyedPage(_ keyed: String, _ order: EventOrder) -> String {
        """
        SELECT \(columns) FROM route_events WHERE id IN (
            SELECT id FROM route_events INDEXED BY route_events_by_key WHERE \(keyed) AND \(window(order))
            UNION ALL
            SELECT id FROM route_events INDEXED BY route_events_by_key WHERE prefix_key IS NULL AND \(window(order))
            ORDER BY id\(order.direction) LIMIT ?4)
        ORDER BY id\(order.direction)
        """
    }

    /// A path as `pathsJSON` stores it (the read side of `PathRecord`).
    struct StoredPath: Decodable {
        let nextHop: String
        let node: String?
        let attributes: AnnounceAttributes?

        enum CodingKeys: String, CodingKey {
            case nextHop = "next_hop"
            case node
            case attributes
        }
    }

    /// The paths of a history row, as stored.
    static func storedPaths(_ event: RouteEvent) -> [StoredPath] {
        (try? JSONColumn.decode([StoredPath].self, from: event.pathsJSON, column: "paths")) ?? []
    }

    /// Whether an event is about a route offered to `peer`: the peer carries the prefix's family,
    /// and the route's peer selector (in the stored paths) matches the peer's labels. A withdraw
    /// stores no paths, so it is listed for every peer of the family.
    static func concerns(_ event: RouteEvent, _ peer: PeerConfig) -> Bool {
        let family: PeerFamily = event.prefix.family == .ipv4 ? .ipv4Unicast : .ipv6Unicast
        guard peer.families.contains(family) else { return false }
        guard event.action != .withdraw, let first = storedPaths(event).first else { return true }
        return Labels.matches(first.attributes?.peerSelector ?? [:], peer.labels)
    }

    private static func event(_ row: Row) throws -> RouteEvent {
        guard let action = RouteEvent.Action(rawValue: try row.get(2)),
              let kind = RouteSource.Kind(rawValue: try row.get(4)) else {
            throw DatabaseError.typeMismatch("route event \(try row.get(0, as: Int64.self)) has an unknown action or source")
        }
        return RouteEvent(id: try row.get(0), at: try row.get(1), action: action, prefix: try IPPrefix(parsing: row.get(3, as: String.self)),
                          source: RouteSource(kind: kind, name: try row.get(5)), pathsJSON: try row.get(6), reason: try row.get(7),
                          requestID: try row.get(8))
    }
}
