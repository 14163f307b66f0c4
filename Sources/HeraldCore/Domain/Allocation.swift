public import IP
internal import IPAM
public import Store

/// Which address families an allocation holds.
public enum AllocationFamily: String, Sendable, CaseIterable, Codable {
    case ipv4, ipv6, dual

    var families: [IPFamily] {
        switch self {
        case .ipv4: [.ipv4]
        case .ipv6: [.ipv6]
        case .dual: [.ipv4, .ipv6]
        }
    }
}

/// Where traffic for an allocation goes (Kubernetes' externalTrafficPolicy).
public enum TrafficPolicy: String, Sendable, CaseIterable, Codable {
    /// Next hops are the pool's nodes (its node selector).
    case cluster
    /// Next hops are the nodes listed on the allocation, e.g. where the pods run, so client
    /// source addresses are kept.
    case local
}

/// What a client asks an allocation to be (PUT is an idempotent upsert of this).
public struct AllocationSpec: Sendable, Equatable {
    /// The pool to draw from; nil to choose by `labels` against the pools' service selectors.
    public var pool: String?
    public var labels: [String: String]
    /// Specific addresses wanted (at most one per family).
    public var addresses: [IPAddress]
    /// Nil: inferred from `addresses`, else the pool's families (IPv4 first).
    public var family: AllocationFamily?
    public var sharingKey: String?
    public var trafficPolicy: TrafficPolicy
    /// Node names, for `local` traffic policy.
    public var nodes: [String]

    public init(pool: String? = nil, labels: [String: String] = [:], addresses: [IPAddress] = [], family: AllocationFamily? = nil,
                sharingKey: String? = nil, trafficPolicy: TrafficPolicy = .cluster, nodes: [String] = []) {
        self.pool = pool
        self.labels = labels
        self.addresses = addresses
        self.family = family
        self.sharingKey = sharingKey
        self.trafficPolicy = trafficPolicy
        self.nodes = nodes
    }
}

/// A stored allocation.
public struct Allocation: Sendable, Equatable {
    public var name: String
    public var pool: String
    public var family: AllocationFamily
    /// One address per family held, IPv4 first.
    public var addresses: [IPAddress]
    public var sharingKey: String?
    public var trafficPolicy: TrafficPolicy
    public var nodes: [String]
    public var labels: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// The outcome of an upsert: what the allocation is now and which addresses moved.
public struct AllocationChange: Sendable, Equatable {
    public let allocation: Allocation
    public let created: Bool
    /// Addresses newly held by this allocation.
    public let assigned: [IPAddress]
    /// Addresses this allocation no longer holds.
    public let released: [IPAddress]
}

/// Allocations in the database. Every function runs inside the caller's write transaction, so
/// the address picked is the address stored: concurrent callers never get the same address.
public enum Allocations {
    public static func get(_ db: Database, name: String) throws -> Allocation? {
        guard let row = try db.firstRow(selectSQL + " WHERE a.name = ?", [name]) else { return nil }
        return try allocation(db, row)
    }

    /// All allocations (the route derivation's whole-table read; the API pages with `page`).
    public static func list(_ db: Database) throws -> [Allocation] {
        // Three statements for the whole table (not two per allocation): the route derivation
        // reads every allocation on each commit.
        var addresses: [Int64: [(family: String, address: IPAddress)]] = [:]
        try db.cachedStatement("SELECT allocation_id, family, address FROM allocation_addresses").forEachRow { row throws(DatabaseError) in
            let text: String = try row.get(2)
            guard let parsed = IPAddress(text) else { throw DatabaseError.typeMismatch("allocation address \(text) is not an address") }
            addresses[try row.get(0), default: []].append((try row.get(1), parsed))
        }
        var nodes: [Int64: [String]] = [:]
        try db.cachedStatement("SELECT x.allocation_id, n.name FROM allocation_nodes x JOIN nodes n ON n.id = x.node_id").forEachRow { row throws(DatabaseError) in
            nodes[try row.get(0), default: []].append(try row.get(1))
        }
        var all: [Allocation] = []
        for row in try db.rows(selectSQL + " ORDER BY a.name") {
            let id: Int64 = try row.get("id")
            guard let family = AllocationFamily(rawValue: try row.get("family")),
                  let policy = TrafficPolicy(rawValue: try row.get("traffic_policy")) else {
                throw DatabaseError.typeMismatch("allocation \(try row.get("name", as: String.self)) has an unknown family or traffic policy")
            }
            all.append(Allocation(
                name: try row.get("name"), pool: try row.get("pool"), family: family,
                addresses: (addresses[id] ?? []).sorted { $0.family < $1.family }.map(\.address),
                sharingKey: try row.get("sharing_key"), trafficPolicy: policy, nodes: (nodes[id] ?? []).sorted(),
                labels: try row.labels("labels"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")))
        }
        return all
    }

    /// Which allocations a page holds.
    public struct Filter: Sendable {
        public var pool: String?
        public var node: String?
        /// Labels an allocation must all carry.
        public var labels: [(key: String, value: String)]
        public var address: IPAddress?

        public init(pool: String? = nil, node: String? = nil, labels: [(key: String, value: String)] = [], address: IPAddress? = nil) {
            self.pool = pool
            self.node = node
            self.labels = labels
            self.address = address
        }
    }

    /// Up to `limit` allocations after the name `after`, in name order, filtered in SQL (each
    /// filter an indexed lookup or a check per row visited), so a page costs `limit` rows however
    /// large the table.
    public static func page(_ db: Database, after: String?, limit: Int, filter: Filter = Filter()) throws -> [Allocation] {
        let address = filter.address?.description
        let labels = String(repeating: "\n  AND EXISTS (SELECT 1 FROM json_each(a.labels) l WHERE l.key = ? AND l.value = ?)",
                            count: filter.labels.count)
        let values: [any DatabaseValueConvertible] = [after ?? "", filter.pool, filter.pool, filter.node, filter.node, address, address]
            + filter.labels.flatMap { [$0.key, $0.value] } + [limit]
        return try db.rows(selectSQL + """
             WHERE a.name > ? AND (? IS NULL OR p.name = ?)
              AND (? IS NULL OR EXISTS (SELECT 1 FROM allocation_nodes x JOIN nodes n ON n.id = x.node_id
                                        WHERE x.allocation_id = a.id AND n.name = ?))
              AND (? IS NULL OR EXISTS (SELECT 1 FROM allocation_addresses d WHERE d.allocation_id = a.id AND d.address = ?))\(labels)
            ORDER BY a.name LIMIT ?
            """, values).map { try allocation(db, $0) }
    }

    static let selectSQL = """
        SELECT a.id, a.name, p.name AS pool, a.family, a.sharing_key, a.traffic_policy, a.labels, a.created_at, a.updated_at
        FROM allocations a JOIN pools p ON p.id = a.pool_id
        """

    private static func allocation(_ db: Database, _ row: Row) throws -> Allocation {
        let id: Int64 = try row.get("id")
        let addresses = try db.rows("SELECT address FROM allocation_addresses WHERE allocation_id = ? ORDER BY family", [id])
            .map { try IPAddress(parsing: $0.get(0, as: String.self)) }
        let nodes = try db.rows("""
            SELECT n.name FROM allocation_nodes x JOIN nodes n ON n.id = x.node_id WHERE x.allocation_id = ? ORDER BY n.name
            """, [id]).map { try $0.get(0, as: String.self) }
        guard let family = AllocationFamily(rawValue: try row.get("family")),
              let policy = TrafficPolicy(rawValue: try row.get("traffic_policy")) else {
            throw DatabaseError.typeMismatch("allocation \(try row.get("name", as: String.self)) has an unknown family or traffic policy")
        }
        return Allocation(name: try row.get("name"), pool: try row.get("pool"), family: family, addresses: addresses,
                          sharingKey: try row.get("sharing_key"), trafficPolicy: policy, nodes: nodes, labels: try row.labels("labels"),
                          createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"))
    }

    // MARK: - Upsert

    private struct PoolChoice {
        let id: Int64
        let name: String
        let disabled: Bool
        let usable: [UsableBlock<Int64>]
    }

    /// Creates or updates the allocation named `name` to match `spec`. Repeating the same call
    /// returns the same addresses; addresses already held are kept unless the spec asks for
    /// others or moves the allocation to another pool.
    public static func put(_ db: Database, name: String, spec: AllocationSpec, now: Int64, hints: LowestFreeHints? = nil) throws -> AllocationChange {
        var validator = Validator()
        if let problem = ObjectName.validate(name) { validator.add("name", problem) }
        Labels.validate(spec.labels, field: "labels", into: &validator)
        for family in IPFamily.allCases where spec.addresses.filter({ $0.family == family }).count > 1 {
            validator.add("addresses", "at most one \(family.rawValue) address")
        }
        if let key = spec.sharingKey, key.isEmpty || key.utf8.count > 253 {
            validator.add("sharing_key", "must be 1–253 characters")
        }
        if spec.trafficPolicy == .cluster && !spec.nodes.isEmpty {
            validator.add("nodes", "nodes are chosen by the pool's node_selector for traffic_policy cluster; list nodes only with traffic_policy local")
        }
        if spec.trafficPolicy == .local && spec.nodes.isEmpty {
            validator.add("nodes", "traffic_policy local needs the nodes that serve the traffic")
        }
        if let family = spec.family {
            for (index, address) in spec.addresses.enumerated() where !family.families.contains(address.family) {
                validator.add("addresses[\(index)]", "\(address) is not of family \(family.rawValue)")
            }
        }
        var nodeIDs: [Int64] = []
        for (index, node) in spec.nodes.enumerated() {
            if let id = try Nodes.id(db, name: node) { nodeIDs.append(id) } else { validator.add("nodes[\(index)]", "node \"\(node)\" does not exist") }
        }
        try validator.finish()

        let existing = try db.firstRow("SELECT id, pool_id, sharing_key FROM allocations WHERE name = ?", [name])
        let existingID: Int64? = try existing?.get(0)
        let pool = try choosePool(db, spec: spec, currentPoolID: try existing?.get(1, as: Int64.self))
        let families = spec.family?.families ?? inferFamilies(spec: spec, pool: pool)
        guard !families.isEmpty else {
            throw DomainError.unprocessable("pool \"\(pool.name)\" has no usable block")
        }
        for family in families where !pool.usable.contains(where: { $0.range.family == family }) {
            throw DomainError.unprocessable("pool \"\(pool.name)\" has no usable \(family.rawValue) block")
        }

        // What this allocation holds now (only what stays in the same pool can be kept).
        var held: [IPFamily: (address: IPAddress, block: Int64)] = [:]
        var allHeld: [IPAddress] = []
        if let existingID {
            for row in try db.rows("""
                SELECT x.address, x.pool_block_id, b.pool_id FROM allocation_addresses x JOIN pool_blocks b ON b.id = x.pool_block_id
                WHERE x.allocation_id = ?
                """, [existingID]) {
                let address = try IPAddress(parsing: row.get(0, as: String.self))
                allHeld.append(address)
                if try row.get(2, as: Int64.self) == pool.id { held[address.family] = (address, try row.get(1)) }
            }
        }
        let sharingUnchanged = try existing?.get(2, as: String?.self) == spec.sharingKey

        // Decide one address per family.
        var chosen: [(family: IPFamily, address: IPAddress, block: Int64, requested: Bool)] = []
        for family in families {
            let requested = spec.addresses.first { $0.family == family }
            if let current = held[family], sharingUnchanged, requested == nil || requested == current.address {
                chosen.append((family, current.address, current.block, requested != nil))
                continue
            }
            if let requested {
                guard let block = Allocator.block(containing: requested, in: pool.usable) else {
                    throw DomainError.unprocessable("address \(requested) is not in a usable block of pool \"\(pool.name)\"")
                }
                if let holder = try conflictingHolder(db, address: requested, sharingKey: spec.sharingKey, except: existingID) {
                    throw DomainError.conflict("address \(requested) is already allocated to \"\(holder)\"")
                }
                chosen.append((family, requested, block, true))
                continue
            }
            if let key = spec.sharingKey, let shared = try db.firstRow("""
                SELECT x.address, x.pool_block_id FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
                WHERE a.sharing_key = ? AND a.pool_id = ? AND x.family = ? AND a.id IS NOT ? LIMIT 1
                """, [key, pool.id, family.rawValue, existingID]) {
                chosen.append((family, try IPAddress(parsing: shared.get(0, as: String.self)), try shared.get(1), false))
                continue
            }
            guard !pool.disabled else {
                throw DomainError.conflict("pool \"\(pool.name)\" is disabled: it keeps its allocations but hands out no new address")
            }
            let pick = try lowestFree(db, family: family, in: pool.usable, except: existingID, hints: hints)
            guard let pick else { throw DomainError.exhausted(pool: pool.name, family: family.rawValue) }
            chosen.append((family, pick.address, pick.block, false))
        }

        // Write: addresses go first so that the sharing-key trigger sees the new state only.
        let allocationID: Int64
        let family = spec.family ?? (families.count == 2 ? .dual : families[0] == .ipv4 ? .ipv4 : .ipv6)
        if let existingID {
            hints?.forget()  // addresses may be released below a hint
            try db.execute("DELETE FROM allocation_addresses WHERE allocation_id = ?", [existingID])
            try db.execute("""
                UPDATE allocations SET pool_id = ?, family = ?, sharing_key = ?, traffic_policy = ?, labels = ?, updated_at = ? WHERE id = ?
                """, [pool.id, family.rawValue, spec.sharingKey, spec.trafficPolicy.rawValue, JSONColumn.encode(spec.labels), now, existingID])
            try db.execute("DELETE FROM allocation_nodes WHERE allocation_id = ?", [existingID])
            allocationID = existingID
        } else {
            try db.execute("""
                INSERT INTO allocations (name, pool_id, family, sharing_key, traffic_policy, labels, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [name, pool.id, family.rawValue, spec.sharingKey, spec.trafficPolicy.rawValue, JSONColumn.encode(spec.labels), now, now])
            allocationID = db.lastInsertedRowID
        }
        for choice in chosen {
            try db.execute("""
                INSERT INTO allocation_addresses (allocation_id, pool_block_id, family, address, address_key, requested)
                VALUES (?, ?, ?, ?, ?, ?)
                """, [allocationID, choice.block, choice.family.rawValue, choice.address.description, choice.address.bytes, choice.requested])
        }
        for nodeID in Set(nodeIDs) {
            try db.execute("INSERT INTO allocation_nodes (allocation_id, node_id) VALUES (?, ?)", [allocationID, nodeID])
        }
        let nowHeld = chosen.map(\.address)
        return AllocationChange(allocation: try get(db, name: name)!, created: existingID == nil,
                                assigned: nowHeld.filter { !allHeld.contains($0) }, released: allHeld.filter { !nowHeld.contains($0) })
    }

    /// Deletes the allocation and returns the addresses it released.
    @discardableResult
    public static func delete(_ db: Database, name: String, hints: LowestFreeHints? = nil) throws -> [IPAddress] {
        guard let allocation = try get(db, name: name) else { throw DomainError.notFound(kind: "allocation", name: name) }
        hints?.forget()  // its addresses become free, perhaps below a hint
        try db.execute("DELETE FROM allocations WHERE name = ?", [name])
        return allocation.addresses
    }

    // MARK: - Helpers

    private static func choosePool(_ db: Database, spec: AllocationSpec, currentPoolID: Int64?) throws -> PoolChoice {
        func load(_ row: Row) throws -> PoolChoice {
            let id: Int64 = try row.get("id")
            let allowFirstLast: Bool? = try row.get("allow_first_last_ips")
            return PoolChoice(id: id, name: try row.get("name"), disabled: try row.get("disabled"),
                              usable: Pools.usableBlocks(try Pools.blocks(db, poolID: id), allowFirstLastIPs: allowFirstLast))
        }
        if let name = spec.pool {
            guard let row = try db.firstRow("SELECT id, name, disabled, allow_first_last_ips FROM pools WHERE name = ?", [name]) else {
                throw DomainError.invalid([InvalidField("pool", "pool \"\(name)\" does not exist")])
            }
            return try load(row)
        }
        let pools = try db.rows("SELECT id, name, disabled, allow_first_last_ips, service_selector FROM pools ORDER BY name")
        var matches: [(row: Row, specificity: Int)] = []
        for row in pools {
            let selector = try row.labels("service_selector")
            if Labels.matches(selector, spec.labels) { matches.append((row, selector.count)) }
        }
        // The most specific selector wins; a pool with an empty selector is the fallback.
        let best = matches.map(\.specificity).max()
        let candidates = matches.filter { $0.specificity == best }
        if let currentPoolID, let current = candidates.first(where: { (try? $0.row.get("id", as: Int64.self)) == currentPoolID }) {
            return try load(current.row)  // stay where we are while it still matches
        }
        guard candidates.count == 1, let only = candidates.first else {
            if candidates.isEmpty {
                throw DomainError.unprocessable(pools.isEmpty
                    ? "no pool exists yet: create one, or name it in \"pool\""
                    : "no pool's service_selector matches labels \(JSONColumn.encode(spec.labels)); name a pool in \"pool\" or add labels")
            }
            let names = try candidates.map { "\"\(try $0.row.get("name", as: String.self))\"" }.joined(separator: ", ")
            throw DomainError.unprocessable("labels \(JSONColumn.encode(spec.labels)) match several pools equally (\(names)); name one in \"pool\"")
        }
        return try load(only.row)
    }

    private static func inferFamilies(spec: AllocationSpec, pool: PoolChoice) -> [IPFamily] {
        let requested = IPFamily.allCases.filter { family in spec.addresses.contains { $0.family == family } }
        if !requested.isEmpty { return requested }
        if pool.usable.contains(where: { $0.range.family == .ipv4 }) { return [.ipv4] }
        if pool.usable.contains(where: { $0.range.family == .ipv6 }) { return [.ipv6] }
        return []
    }

    /// The lowest free address of `family` in `blocks`. A block whose taken addresses are dense
    /// from its start (the common case: lowest-free allocation without releases) is answered from
    /// two aggregates over the address index; only a block with holes is scanned.
    private static func lowestFree(_ db: Database, family: IPFamily, in blocks: [UsableBlock<Int64>], except: Int64?, hints: LowestFreeHints?) throws -> (block: Int64, address: IPAddress)? {
        func address(_ key: [UInt8]) -> IPAddress { IPAddress(family: family, bits: key.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }) }
        for block in blocks where block.range.family == family {
            if except == nil, let hint = hints?.get(block: block.id), hint >= block.range.lower.bits, hint <= block.range.upper.bits {
                // Everything below the hint is taken: walk the index from there to the first gap.
                var expected = hint
                var full = false
                search: while true {
                    let rows = try db.cachedStatement("""
                        SELECT DISTINCT address_key FROM allocation_addresses
                        WHERE family = ? AND address_key BETWEEN ? AND ? ORDER BY address_key LIMIT 64
                        """).rows([family.rawValue, IPAddress(family: family, bits: expected).bytes, block.range.upper.bytes])
                    for row in rows {
                        guard address(try row.get(0)).bits == expected else { break search }
                        if expected == block.range.upper.bits { full = true; break search }
                        expected += 1
                    }
                    if rows.count < 64 { break }
                }
                if full { continue }
                hints?.set(block: block.id, expected)
                return (block.id, IPAddress(family: family, bits: expected))
            }
            let arguments: [any DatabaseValueConvertible] = [family.rawValue, block.range.lower.bytes, block.range.upper.bytes, except]
            let stats = try db.cachedStatement("""
                SELECT count(DISTINCT address_key), max(address_key) FROM allocation_addresses
                WHERE family = ? AND address_key BETWEEN ? AND ? AND allocation_id IS NOT ?
                """).firstRow(arguments)
            let count: Int = try stats?.get(0) ?? 0
            guard count > 0, let maxKey: [UInt8] = try stats?.get(1) else { return (block.id, block.range.lower) }
            let highest = address(maxKey)
            if UInt128(count) == highest.bits - block.range.lower.bits + 1 {
                // Dense from the start: the next address, or the next block.
                if highest < block.range.upper, let next = highest.next {
                    if except == nil { hints?.set(block: block.id, next.bits) }
                    return (block.id, next)
                }
                continue
            }
            var taken: [IPAddress] = []
            try db.cachedStatement("""
                SELECT DISTINCT address_key FROM allocation_addresses
                WHERE family = ? AND address_key BETWEEN ? AND ? AND allocation_id IS NOT ? ORDER BY address_key
                """).forEachRow(arguments) { row throws(DatabaseError) in taken.append(address(try row.get(0))) }
            if let pick = Allocator.lowestFree(family: family, in: [block], taken: { _ in taken }) {
                if except == nil { hints?.set(block: block.id, pick.address.bits) }
                return pick
            }
        }
        return nil
    }

    /// The allocation that holds `address` in a way that forbids sharing it with `sharingKey`.
    private static func conflictingHolder(_ db: Database, address: IPAddress, sharingKey: String?, except: Int64?) throws -> String? {
        for row in try db.rows("""
            SELECT a.name, a.sharing_key FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
            WHERE x.address_key = ? AND a.id IS NOT ?
            """, [address.bytes, except]) {
            let key: String? = try row.get(1)
            if key == nil || sharingKey == nil || key != sharingKey { return try row.get(0) }
        }
        return nil
    }
}
