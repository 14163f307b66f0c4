public import IP
public import IPAM
public import Store

/// What a client asks a pool to be.
public struct PoolSpec: Sendable, Equatable {
    public var blocks: [PoolBlock]
    public var serviceSelector: [String: String]
    public var nodeSelector: [String: String]
    public var allowFirstLastIPs: Bool?
    public var disabled: Bool
    public var announce: AnnounceAttributes
    public var description: String
    public var labels: [String: String]
    /// When every node that would serve an allocation is down (health checks), announce it on all
    /// of them anyway rather than withdraw it.
    public var failOpen: Bool

    public init(blocks: [PoolBlock], serviceSelector: [String: String] = [:], nodeSelector: [String: String] = [:],
                allowFirstLastIPs: Bool? = nil, disabled: Bool = false, announce: AnnounceAttributes = .init(),
                description: String = "", labels: [String: String] = [:], failOpen: Bool = false) {
        self.failOpen = failOpen
        self.blocks = blocks
        self.serviceSelector = serviceSelector
        self.nodeSelector = nodeSelector
        self.allowFirstLastIPs = allowFirstLastIPs
        self.disabled = disabled
        self.announce = announce
        self.description = description
        self.labels = labels
    }
}

/// A stored pool with its usage.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var spec: PoolSpec
    public var usage: [IPFamily: PoolUsage]
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// How much of a pool's family is handed out. `size` saturates at UInt128.max.
public struct PoolUsage: Sendable, Equatable {
    public var size: UInt128
    public var allocated: Int
    public var free: UInt128 { size > UInt128(allocated) ? size - UInt128(allocated) : 0 }
}

/// A stored block with its database id, for the allocator.
struct StoredBlock {
    let id: Int64
    let block: PoolBlock
}

/// Pools in the database.
public enum Pools {
    public static func get(_ db: Database, name: String) throws -> Pool? {
        guard let row = try db.firstRow("""
            SELECT id, name, description, service_selector, node_selector, allow_first_last_ips, disabled, announce, labels,
                   fail_open, created_at, updated_at FROM pools WHERE name = ?
            """, [name]) else { return nil }
        return try pool(db, row)
    }

    public static func list(_ db: Database) throws -> [Pool] {
        try db.rows("""
            SELECT id, name, description, service_selector, node_selector, allow_first_last_ips, disabled, announce, labels,
                   fail_open, created_at, updated_at FROM pools ORDER BY name
            """).map { try pool(db, $0) }
    }

    /// Up to `limit` pools after the name `after`, in name order.
    public static func page(_ db: Database, after: String?, limit: Int) throws -> [Pool] {
        try db.rows("""
            SELECT id, name, description, service_selector, node_selector, allow_first_last_ips, disabled, announce, labels,
                   fail_open, created_at, updated_at FROM pools WHERE name > ? ORDER BY name LIMIT ?
            """, [after ?? "", limit]).map { try pool(db, $0) }
    }

    static func id(_ db: Database, name: String) throws -> Int64? {
        try db.firstRow("SELECT id FROM pools WHERE name = ?", [name])?.get(0)
    }

    static func blocks(_ db: Database, poolID: Int64) throws -> [StoredBlock] {
        try db.rows("SELECT id, block FROM pool_blocks WHERE pool_id = ? ORDER BY family, first_key", [poolID]).map { row in
            StoredBlock(id: try row.get(0), block: try PoolBlock(parsing: row.get(1, as: String.self)))
        }
    }

    /// The blocks' usable ranges (network/broadcast rule applied), in allocation order.
    static func usableBlocks(_ blocks: [StoredBlock], allowFirstLastIPs: Bool?) -> [UsableBlock<Int64>] {
        blocks.compactMap { stored in
            stored.block.usableRange(allowFirstLast: allowFirstLastIPs).map { UsableBlock(id: stored.id, range: $0) }
        }
    }

    private static func pool(_ db: Database, _ row: Row) throws -> Pool {
        let id: Int64 = try row.get("id")
        let stored = try blocks(db, poolID: id)
        let allowFirstLast: Bool? = try row.get("allow_first_last_ips")
        let spec = PoolSpec(
            blocks: stored.map(\.block),
            serviceSelector: try row.labels("service_selector"),
            nodeSelector: try row.labels("node_selector"),
            allowFirstLastIPs: allowFirstLast,
            disabled: try row.get("disabled"),
            announce: try JSONColumn.decode(AnnounceAttributes.self, from: row.get("announce"), column: "announce"),
            description: try row.get("description"),
            labels: try row.labels("labels"),
            failOpen: try row.get("fail_open"))
        var usage: [IPFamily: PoolUsage] = [:]
        let usable = usableBlocks(stored, allowFirstLastIPs: allowFirstLast)
        for family in IPFamily.allCases where spec.blocks.contains(where: { $0.family == family }) {
            let allocated = try db.firstRow("""
                SELECT count(DISTINCT x.address_key) FROM allocation_addresses x JOIN pool_blocks b ON b.id = x.pool_block_id
                WHERE b.pool_id = ? AND x.family = ?
                """, [id, family.rawValue])!.get(0, as: Int.self)
            usage[family] = PoolUsage(size: Allocator.size(of: usable.filter { $0.range.family == family }), allocated: allocated)
        }
        return Pool(name: try row.get("name"), spec: spec, usage: usage, createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"))
    }

    /// Creates or replaces a pool. Refuses blocks that overlap another pool (naming it) and the
    /// removal of blocks that still hold allocations (naming them).
    @discardableResult
    public static func put(_ db: Database, name: String, spec: PoolSpec, now: Int64, hints: LowestFreeHints? = nil) throws -> (pool: Pool, created: Bool, changed: Bool) {
        hints?.forget()  // blocks may change under the allocator's hints
        var validator = Validator()
        if let problem = ObjectName.validate(name) { validator.add("name", problem) }
        do { try spec.blocks.validateDisjoint() } catch { validator.add("blocks", error.description) }
        for (index, block) in spec.blocks.enumerated() where block.usableRange(allowFirstLast: spec.allowFirstLastIPs) == nil {
            validator.add("blocks[\(index)]", "\(block) leaves no usable address once network and broadcast are kept back; set allow_first_last_ips")
        }
        for (index, block) in spec.blocks.enumerated() {
            if let reserved = block.reservedOverlap { validator.add("blocks[\(index)]", "\(block) overlaps \(reserved.prefix), \(reserved.why)") }
        }
        Labels.validate(spec.serviceSelector, field: "service_selector", into: &validator)
        Labels.validate(spec.nodeSelector, field: "node_selector", into: &validator)
        Labels.validate(spec.labels, field: "labels", into: &validator)
        spec.announce.validate(field: "announce", into: &validator)
        spec.announce.validateAggregation(blocks: spec.blocks, field: "announce", into: &validator)
        validator.checkDescription(spec.description)
        try validator.finish()

        // The same pool again (a re-applied configuration, a sync loop): nothing to write, and
        // `updated_at` keeps saying when it last changed.
        if let current = try get(db, name: name), current.spec == spec { return (current, false, false) }

        // Another pool's block overlapping one of ours: name both.
        let existing = try id(db, name: name)
        for block in spec.blocks {
            if let clash = try db.firstRow("""
                SELECT p.name, b.block FROM pool_blocks b JOIN pools p ON p.id = b.pool_id
                WHERE b.family = ? AND b.first_key <= ? AND ? <= b.last_key AND p.id IS NOT ?
                LIMIT 1
                """, [block.family.rawValue, block.range.upper.bytes, block.range.lower.bytes, existing]) {
                throw DomainError.conflict("block \(block) overlaps block \(try clash.get(1, as: String.self)) of pool \"\(try clash.get(0, as: String.self))\"")
            }
        }

        let poolID: Int64
        if let existing {
            try db.execute("""
                UPDATE pools SET description = ?, service_selector = ?, node_selector = ?, allow_first_last_ips = ?, disabled = ?,
                       announce = ?, labels = ?, fail_open = ?, updated_at = ? WHERE id = ?
                """, [spec.description, JSONColumn.encode(spec.serviceSelector), JSONColumn.encode(spec.nodeSelector),
                      spec.allowFirstLastIPs, spec.disabled, JSONColumn.encode(spec.announce), JSONColumn.encode(spec.labels),
                      spec.failOpen, now, existing])
            poolID = existing
            try replaceBlocks(db, poolID: poolID, poolName: name, spec: spec)
        } else {
            try db.execute("""
                INSERT INTO pools (name, description, service_selector, node_selector, allow_first_last_ips, disabled, announce, labels,
                                   fail_open, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [name, spec.description, JSONColumn.encode(spec.serviceSelector), JSONColumn.encode(spec.nodeSelector),
                      spec.allowFirstLastIPs, spec.disabled, JSONColumn.encode(spec.announce), JSONColumn.encode(spec.labels),
                      spec.failOpen, now, now])
            poolID = db.lastInsertedRowID
            for block in spec.blocks { try insert(db, block, poolID: poolID) }
        }
        return (try get(db, name: name)!, existing == nil, true)
    }

    private static func insert(_ db: Database, _ block: PoolBlock, poolID: Int64) throws {
        try db.execute("""
            INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [poolID, block.family.rawValue, block.description, block.range.lower.description, block.range.upper.description,
                  block.range.lower.bytes, block.range.upper.bytes])
    }

    /// Keeps blocks that stay, grows blocks in place when a new block contains an old one (so a
    /// /25 holding allocations can become a /24), adds new ones, and removes dropped ones unless
    /// they hold allocations; an allocation outside the pool's new usable ranges is refused too.
    private static func replaceBlocks(_ db: Database, poolID: Int64, poolName: String, spec: PoolSpec) throws {
        let current = try blocks(db, poolID: poolID)
        let kept = Set(current.map(\.block))
        var added = spec.blocks.filter { !kept.contains($0) }
        let wanted = Set(spec.blocks)
        for stored in current where !wanted.contains(stored.block) {
            if let index = added.firstIndex(where: { $0.range.contains(stored.block.range) }) {
                let grown = added.remove(at: index)
                try db.execute("""
                    UPDATE pool_blocks SET block = ?, first = ?, last = ?, first_key = ?, last_key = ? WHERE id = ?
                    """, [grown.description, grown.range.lower.description, grown.range.upper.description,
                          grown.range.lower.bytes, grown.range.upper.bytes, stored.id])
                continue
            }
            let holders = try db.rows("""
                SELECT DISTINCT a.name FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
                WHERE x.pool_block_id = ? ORDER BY a.name LIMIT 20
                """, [stored.id]).map { try $0.get(0, as: String.self) }
            guard holders.isEmpty else {
                throw DomainError.conflict("block \(stored.block) of pool \"\(poolName)\" still holds addresses of allocation\(holders.count == 1 ? "" : "s") \(holders.map { "\"\($0)\"" }.joined(separator: ", ")); delete or move them first")
            }
            try db.execute("DELETE FROM pool_blocks WHERE id = ?", [stored.id])
        }
        for block in added { try insert(db, block, poolID: poolID) }
        // Changing allow_first_last_ips may exclude an address already handed out.
        let usable = usableBlocks(try blocks(db, poolID: poolID), allowFirstLastIPs: spec.allowFirstLastIPs)
        for row in try db.rows("""
            SELECT a.name, x.address FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
            JOIN pool_blocks b ON b.id = x.pool_block_id WHERE b.pool_id = ?
            """, [poolID]) {
            let address = try IPAddress(parsing: row.get(1, as: String.self))
            if Allocator.block(containing: address, in: usable) == nil {
                throw DomainError.conflict("allocation \"\(try row.get(0, as: String.self))\" holds \(address), which the new settings of pool \"\(poolName)\" would no longer hand out")
            }
        }
    }

    /// Deletes a pool; refused while allocations use it (they are named).
    public static func delete(_ db: Database, name: String, hints: LowestFreeHints? = nil) throws {
        hints?.forget()
        guard let poolID = try id(db, name: name) else { throw DomainError.notFound(kind: "pool", name: name) }
        let users = try db.rows("SELECT name FROM allocations WHERE pool_id = ? ORDER BY name LIMIT 20", [poolID]).map { try $0.get(0, as: String.self) }
        guard users.isEmpty else {
            throw DomainError.conflict("pool \"\(name)\" still has allocation\(users.count == 1 ? "" : "s") \(users.map { "\"\($0)\"" }.joined(separator: ", ")); delete them first")
        }
        try db.execute("DELETE FROM pools WHERE id = ?", [poolID])
    }
}
