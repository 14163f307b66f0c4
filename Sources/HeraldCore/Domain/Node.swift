public import IP
public import Store

/// A host that LoadBalancer traffic is sent to: its addresses are next hops of routes.
public struct Node: Sendable, Equatable {
    public var name: String
    /// At most one address per family, IPv4 first.
    public var addresses: [IPAddress]
    public var labels: [String: String]
    /// How Herald checks that the node takes traffic; nil: never checked, always serving.
    public var healthCheck: HealthCheck?
    public var createdAt: Int64
    public var updatedAt: Int64

    public func address(of family: IPFamily) -> IPAddress? { addresses.first { $0.family == family } }

    /// Where its health check connects: the check's own address, else the node's first
    /// (IPv4 before IPv6).
    public var healthCheckAddress: IPAddress? { healthCheck?.address ?? addresses.first }
}

/// What a client asks a node to be.
public struct NodeSpec: Sendable, Equatable {
    public var addresses: [IPAddress]
    public var labels: [String: String]
    public var healthCheck: HealthCheck?

    public init(addresses: [IPAddress], labels: [String: String] = [:], healthCheck: HealthCheck? = nil) {
        self.addresses = addresses
        self.labels = labels
        self.healthCheck = healthCheck
    }

    func validate(into validator: inout Validator) {
        if addresses.isEmpty { validator.add("addresses", "a node needs at least one address") }
        for family in IPFamily.allCases where addresses.filter({ $0.family == family }).count > 1 {
            validator.add("addresses", "at most one \(family.rawValue) address per node (it is the next hop for that family)")
        }
        for (index, address) in addresses.enumerated()
        where address.isUnspecified || address.isMulticast || address.isLoopback {
            validator.add("addresses[\(index)]", "\(address) cannot be a next hop (unspecified, multicast or loopback)")
        }
        Labels.validate(labels, field: "labels", into: &validator)
        healthCheck?.validate(field: "health_check", into: &validator)
    }
}

/// Nodes in the database.
public enum Nodes {
    public static func get(_ db: Database, name: String) throws -> Node? {
        guard let row = try db.firstRow("SELECT id, name, labels, health_check, created_at, updated_at FROM nodes WHERE name = ?", [name]) else { return nil }
        return try node(db, row)
    }

    public static func list(_ db: Database) throws -> [Node] {
        try db.rows("SELECT id, name, labels, health_check, created_at, updated_at FROM nodes ORDER BY name").map { try node(db, $0) }
    }

    /// Up to `limit` nodes after the name `after`, in name order.
    public static func page(_ db: Database, after: String?, limit: Int) throws -> [Node] {
        try db.rows("SELECT id, name, labels, health_check, created_at, updated_at FROM nodes WHERE name > ? ORDER BY name LIMIT ?",
                    [after ?? "", limit]).map { try node(db, $0) }
    }

    static func id(_ db: Database, name: String) throws -> Int64? {
        try db.firstRow("SELECT id FROM nodes WHERE name = ?", [name])?.get(0)
    }

    private static func node(_ db: Database, _ row: Row) throws -> Node {
        let id: Int64 = try row.get("id")
        let addresses = try db.rows("SELECT address FROM node_addresses WHERE node_id = ? ORDER BY family, address", [id])
            .map { try IPAddress(parsing: $0.get(0, as: String.self)) }
        let check: String? = try row.get("health_check")
        return Node(name: try row.get("name"), addresses: addresses, labels: try row.labels("labels"),
                    healthCheck: try check.map { try JSONColumn.decode(HealthCheck.self, from: $0, column: "health_check") },
                    createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"))
    }

    /// Creates or replaces the node. Returns the node and whether it was created.
    @discardableResult
    public static func put(_ db: Database, name: String, spec: NodeSpec, now: Int64) throws -> (node: Node, created: Bool, changed: Bool) {
        var validator = Validator()
        if let problem = ObjectName.validate(name) { validator.add("name", problem) }
        spec.validate(into: &validator)
        try validator.finish()

        // The same node again: nothing to write, and `updated_at` keeps its meaning.
        if let current = try get(db, name: name), Set(current.addresses) == Set(spec.addresses), current.labels == spec.labels,
           current.healthCheck == spec.healthCheck {
            return (current, false, false)
        }

        let existing = try id(db, name: name)
        for address in spec.addresses {
            if let owner = try db.firstRow("""
                SELECT n.name FROM node_addresses a JOIN nodes n ON n.id = a.node_id WHERE a.address = ? AND n.name <> ?
                """, [address.description, name])?.get(0, as: String.self) {
                throw DomainError.conflict("address \(address) already belongs to node \"\(owner)\"")
            }
        }
        let nodeID: Int64
        if let existing {
            try db.execute("UPDATE nodes SET labels = ?, health_check = ?, updated_at = ? WHERE id = ?",
                           [JSONColumn.encode(spec.labels), spec.healthCheck.map(JSONColumn.encode), now, existing])
            try db.execute("DELETE FROM node_addresses WHERE node_id = ?", [existing])
            nodeID = existing
        } else {
            try db.execute("INSERT INTO nodes (name, labels, health_check, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                           [name, JSONColumn.encode(spec.labels), spec.healthCheck.map(JSONColumn.encode), now, now])
            nodeID = db.lastInsertedRowID
        }
        for address in spec.addresses {
            try db.execute("INSERT INTO node_addresses (node_id, family, address) VALUES (?, ?, ?)",
                           [nodeID, address.family.rawValue, address.description])
        }
        return (try get(db, name: name)!, existing == nil, true)
    }

    /// Deletes the node; refused while a `local` allocation sends traffic to it.
    public static func delete(_ db: Database, name: String) throws {
        guard let nodeID = try id(db, name: name) else { throw DomainError.notFound(kind: "node", name: name) }
        let users = try db.rows("""
            SELECT a.name FROM allocation_nodes x JOIN allocations a ON a.id = x.allocation_id WHERE x.node_id = ? ORDER BY a.name
            """, [nodeID]).map { try $0.get(0, as: String.self) }
        guard users.isEmpty else {
            throw DomainError.conflict("node \"\(name)\" is a next hop of allocation\(users.count == 1 ? "" : "s") \(users.map { "\"\($0)\"" }.joined(separator: ", ")); change their nodes first")
        }
        try db.execute("DELETE FROM nodes WHERE id = ?", [nodeID])
    }
}
