public import IP
public import Store

/// A next hop as written for a static route: "self", a literal address, or a node name.
/// Text that parses as an address is an address (so do not name nodes like addresses).
public enum StaticNextHop: Hashable, Sendable, CustomStringConvertible {
    case session
    case address(IPAddress)
    case node(String)

    public init(parsing text: String) throws(InvalidField) {
        if text == "self" {
            self = .session
        } else if let address = IPAddress(text) {
            self = .address(address)
        } else if ObjectName.validate(text) == nil {
            self = .node(text)
        } else {
            throw InvalidField("next_hops", "\"\(text)\" is not \"self\", an IP address or a node name")
        }
    }

    public var description: String {
        switch self {
        case .session: "self"
        case .address(let address): address.description
        case .node(let name): name
        }
    }
}

public struct StaticRouteSpec: Sendable, Equatable {
    public var prefix: IPPrefix
    public var nextHops: [StaticNextHop]
    public var announce: AnnounceAttributes
    public var labels: [String: String]

    public init(prefix: IPPrefix, nextHops: [StaticNextHop] = [.session], announce: AnnounceAttributes = .init(), labels: [String: String] = [:]) {
        self.prefix = prefix
        self.nextHops = nextHops
        self.announce = announce
        self.labels = labels
    }
}

public struct StaticRoute: Sendable, Equatable {
    public var name: String
    public var prefix: IPPrefix
    public var nextHops: [StaticNextHop]
    public var announce: AnnounceAttributes
    public var labels: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// Static prefixes (pod CIDRs and the like) in the database.
public enum StaticRoutes {
    static let selectSQL = "SELECT name, prefix, next_hops, announce, labels, created_at, updated_at FROM routes"

    public static func get(_ db: Database, name: String) throws -> StaticRoute? {
        try db.firstRow(selectSQL + " WHERE name = ?", [name]).map(route)
    }

    /// The static route for exactly `prefix`, if any.
    public static func get(_ db: Database, prefix: IPPrefix) throws -> StaticRoute? {
        try db.firstRow(selectSQL + " WHERE prefix = ?", [prefix.description]).map(route)
    }

    public static func list(_ db: Database) throws -> [StaticRoute] {
        try db.rows(selectSQL + " ORDER BY name").map(route)
    }

    private static func route(_ row: Row) throws -> StaticRoute {
        let hops = try JSONColumn.decode([String].self, from: row.get("next_hops"), column: "next_hops").map { text in
            do { return try StaticNextHop(parsing: text) } catch { throw DatabaseError.typeMismatch("next hop \(text) is invalid") }
        }
        return StaticRoute(name: try row.get("name"), prefix: try IPPrefix(parsing: row.get("prefix", as: String.self)), nextHops: hops,
                           announce: try JSONColumn.decode(AnnounceAttributes.self, from: row.get("announce"), column: "announce"),
                           labels: try row.labels("labels"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"))
    }

    static func validate(_ db: Database, name: String, spec: StaticRouteSpec, field: String = "", into validator: inout Validator) throws {
        if let problem = ObjectName.validate(name) { validator.add(field + "name", problem) }
        if spec.nextHops.isEmpty { validator.add(field + "next_hops", "at least one next hop (\"self\", a node name or an address)") }
        for (index, hop) in spec.nextHops.enumerated() {
            switch hop {
            case .session: break
            case .address(let address):
                if address.family != spec.prefix.family {
                    validator.add(field + "next_hops[\(index)]", "\(address) is not of the prefix's family (\(spec.prefix.family.rawValue))")
                } else if address.isUnspecified || address.isMulticast || address.isLoopback {
                    validator.add(field + "next_hops[\(index)]", "\(address) cannot be a next hop")
                }
            case .node(let node):
                if try Nodes.id(db, name: node) == nil { validator.add(field + "next_hops[\(index)]", "node \"\(node)\" does not exist") }
            }
        }
        spec.announce.validate(field: field + "announce", into: &validator)
        Labels.validate(spec.labels, field: field + "labels", into: &validator)
    }

    /// Creates or replaces a static route. A prefix belongs to one static route.
    @discardableResult
    public static func put(_ db: Database, name: String, spec: StaticRouteSpec, now: Int64) throws -> (route: StaticRoute, created: Bool, previous: StaticRoute?) {
        var validator = Validator()
        try validate(db, name: name, spec: spec, into: &validator)
        try validator.finish()
        if let owner = try db.firstRow("SELECT name FROM routes WHERE prefix = ? AND name <> ?", [spec.prefix.description, name])?.get(0, as: String.self) {
            throw DomainError.conflict("prefix \(spec.prefix) is already the static route \"\(owner)\"")
        }
        let previous = try get(db, name: name)
        try db.execute("""
            INSERT INTO routes (name, family, prefix, next_hops, announce, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET family = excluded.family, prefix = excluded.prefix, next_hops = excluded.next_hops,
                announce = excluded.announce, labels = excluded.labels, updated_at = excluded.updated_at
            """, [name, spec.prefix.family.rawValue, spec.prefix.description, JSONColumn.encode(spec.nextHops.map(\.description)),
                  JSONColumn.encode(spec.announce), JSONColumn.encode(spec.labels), now, now])
        return (try get(db, name: name)!, previous == nil, previous)
    }

    /// Deletes a static route and returns it.
    @discardableResult
    public static func delete(_ db: Database, name: String) throws -> StaticRoute {
        guard let route = try get(db, name: name) else { throw DomainError.notFound(kind: "route", name: name) }
        try db.execute("DELETE FROM routes WHERE name = ?", [name])
        return route
    }
}
