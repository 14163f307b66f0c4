import Testing
@testable import Store

/// The first schema must refuse invalid states by itself, whatever the application code does.
@Suite struct SchemaConstraintTests {
    let directory = TemporaryDirectory()
    let store: Store

    init() throws {
        store = try Store(path: directory.file("herald.db"))
        try store.write { db in
            try db.execute("INSERT INTO pools (id, name, created_at, updated_at) VALUES (1, 'lb', 0, 0), (2, 'other', 0, 0)")
            // 192.0.2.0/28 in pool lb; 198.51.100.0/28 in pool other.
            try db.execute("""
                INSERT INTO pool_blocks (id, pool_id, family, block, first, last, first_key, last_key) VALUES
                (10, 1, 'ipv4', '192.0.2.0/28', '192.0.2.0', '192.0.2.15', X'C0000200', X'C000020F'),
                (20, 2, 'ipv4', '198.51.100.0/28', '198.51.100.0', '198.51.100.15', X'C6336400', X'C633640F')
                """)
            try db.execute("INSERT INTO nodes (id, name, created_at, updated_at) VALUES (1, 'n1', 0, 0)")
        }
    }

    /// Runs `sql` in its own transaction and returns the constraint that stopped it.
    func refusal(_ sql: String) throws -> DatabaseError? {
        do {
            try store.write { db in try db.executeScript(sql) }
            return nil
        } catch let error as DatabaseError {
            return error
        }
    }

    func accepted(_ sql: String) throws {
        try store.write { db in try db.executeScript(sql) }
    }

    func allocate(_ id: Int, name: String, pool: Int = 1, sharingKey: String? = nil, block: Int = 10, key: String) -> String {
        let sharing = sharingKey.map { "'\($0)'" } ?? "NULL"
        return """
            INSERT INTO allocations (id, name, pool_id, family, sharing_key, created_at, updated_at)
              VALUES (\(id), '\(name)', \(pool), 'ipv4', \(sharing), 0, 0);
            INSERT INTO allocation_addresses (allocation_id, pool_block_id, family, address, address_key)
              VALUES (\(id), \(block), 'ipv4', 'x', X'\(key)');
            """
    }

    @Test(arguments: [
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (2, 65000, '192.0.2.1', '0.0.0.0', 179, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 23456, '192.0.2.1', '0.0.0.0', 179, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 0, '192.0.2.1', '0.0.0.0', 179, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 4294967296, '192.0.2.1', '0.0.0.0', 179, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 65000, '0.0.0.0', '0.0.0.0', 179, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, hold_time, updated_at) VALUES (1, 65000, '192.0.2.1', '0.0.0.0', 179, 2, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, graceful_restart_time, updated_at) VALUES (1, 65000, '192.0.2.1', '0.0.0.0', 179, 4096, 0)",
        "INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, '65000', '192.0.2.1', '0.0.0.0', 70000, 0)",
    ])
    func speakerRejects(_ sql: String) throws {
        #expect(try refusal(sql)?.isConstraintViolation == true)
    }

    @Test func speakerHasOneRow() throws {
        try accepted("INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 4200000000, '192.0.2.1', '0.0.0.0', 179, 0)")
        #expect(try refusal("INSERT INTO speaker (id, asn, router_id, listen_address, listen_port, updated_at) VALUES (1, 65000, '192.0.2.2', '0.0.0.0', 179, 0)")?.constraint == .unique)
    }

    static let peerColumns = "INSERT INTO peers (name, address, asn, created_at, updated_at"

    @Test(arguments: [
        "\(peerColumns)) VALUES ('Router', '192.0.2.1', 65001, 0, 0)",  // upper case name
        "\(peerColumns)) VALUES ('-r', '192.0.2.1', 65001, 0, 0)",  // must start alphanumeric
        "\(peerColumns)) VALUES ('a b', '192.0.2.1', 65001, 0, 0)",
        "\(peerColumns)) VALUES ('\(String(repeating: "a", count: 64))', '192.0.2.1', 65001, 0, 0)",
        "\(peerColumns)) VALUES ('r', '192.0.2.1', 23456, 0, 0)",
        "\(peerColumns), hold_time) VALUES ('r', '192.0.2.1', 65001, 0, 0, 1)",
        "\(peerColumns), port) VALUES ('r', '192.0.2.1', 65001, 0, 0, 0)",
        "\(peerColumns), ebgp_multihop, ttl_security) VALUES ('r', '192.0.2.1', 65001, 0, 0, 2, 1)",
        "\(peerColumns), ttl_security) VALUES ('r', '192.0.2.1', 65001, 0, 0, 255)",
        "\(peerColumns), families) VALUES ('r', '192.0.2.1', 65001, 0, 0, '[]')",
        "\(peerColumns), families) VALUES ('r', '192.0.2.1', 65001, 0, 0, 'ipv4')",
        "\(peerColumns), labels) VALUES ('r', '192.0.2.1', 65001, 0, 0, '[1]')",
        "\(peerColumns), password) VALUES ('r', '192.0.2.1', 65001, 0, 0, '')",
        "\(peerColumns), password) VALUES ('r', '192.0.2.1', 65001, 0, 0, '\(String(repeating: "k", count: 81))')",
        "\(peerColumns), passive) VALUES ('r', '192.0.2.1', 65001, 0, 0, 2)",
    ])
    func peerRejects(_ sql: String) throws {
        #expect(try refusal(sql)?.isConstraintViolation == true)
    }

    @Test func peerAddressIsUnique() throws {
        try accepted("\(Self.peerColumns)) VALUES ('r1', '192.0.2.1', 65001, 0, 0)")
        #expect(try refusal("\(Self.peerColumns)) VALUES ('r2', '192.0.2.1', 65002, 0, 0)")?.constraint == .unique)
        #expect(try refusal("\(Self.peerColumns)) VALUES ('r1', '192.0.2.2', 65002, 0, 0)")?.constraint == .unique)
        try accepted("\(Self.peerColumns), families, password, ebgp_multihop) VALUES ('r2.lab_x-1', '2001:db8::1', 4200000000, 0, 0, '[\"ipv4-unicast\",\"ipv6-unicast\"]', 's3cret', 2)")
    }

    @Test func poolBlocksNeverOverlap() throws {
        let overlapping = "INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (2, 'ipv4', 'x', 'x', 'x', X'C000020F', X'C0000210')"
        #expect(try refusal(overlapping)?.message == "pool block overlaps an existing block")
        let inside = "INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (1, 'ipv4', 'x', 'x', 'x', X'C0000204', X'C0000204')"
        #expect(try refusal(inside)?.constraint == .trigger)
        let adjacent = "INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (2, 'ipv4', 'x', 'x', 'x', X'C0000210', X'C000021F')"
        try accepted(adjacent)
        #expect(try refusal("UPDATE pool_blocks SET last_key = X'C0000210' WHERE id = 10")?.constraint == .trigger)
        let reversed = "INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (2, 'ipv4', 'x', 'x', 'x', X'0A000002', X'0A000001')"
        #expect(try refusal(reversed)?.constraint == .check)
        let wrongWidth = "INSERT INTO pool_blocks (pool_id, family, block, first, last, first_key, last_key) VALUES (2, 'ipv6', 'x', 'x', 'x', X'0A000001', X'0A000002')"
        #expect(try refusal(wrongWidth)?.constraint == .check)
    }

    @Test func anAddressIsAllocatedOnceUnlessShared() throws {
        try accepted(allocate(1, name: "default.web", key: "C0000205"))
        // Same address, no sharing key: refused.
        #expect(try refusal(allocate(2, name: "default.api", key: "C0000205"))?.message == "address is already allocated")
        // Shared with a key, while the holder has none: refused.
        #expect(try refusal(allocate(2, name: "default.api", sharingKey: "k", key: "C0000205"))?.constraint == .trigger)
        // Two allocations with the same key may share; a different key may not.
        try accepted(allocate(3, name: "a.tcp", sharingKey: "k", key: "C0000206"))
        try accepted(allocate(4, name: "a.udp", sharingKey: "k", key: "C0000206"))
        #expect(try refusal(allocate(5, name: "b.tcp", sharingKey: "other", key: "C0000206"))?.constraint == .trigger)
        // Changing a sharing key away from the group is refused too.
        #expect(try refusal("UPDATE allocations SET sharing_key = 'z' WHERE id = 4")?.constraint == .trigger)
        #expect(try refusal("UPDATE allocations SET sharing_key = NULL WHERE id = 4")?.constraint == .trigger)
    }

    @Test func anAddressLiesInsideItsPoolBlock() throws {
        #expect(try refusal(allocate(1, name: "outside", key: "C0000210"))?.message == "address is outside its pool block")
        // A block of another pool than the allocation's.
        #expect(try refusal(allocate(1, name: "wrong.pool", block: 20, key: "C6336401"))?.constraint == .trigger)
    }

    @Test func blocksAndPoolsInUseCannotGoAway() throws {
        try accepted(allocate(1, name: "default.web", key: "C0000205"))
        #expect(try refusal("DELETE FROM pool_blocks WHERE id = 10")?.constraint == .foreignKey)
        #expect(try refusal("DELETE FROM pools WHERE id = 1")?.constraint == .foreignKey)
        #expect(try refusal("UPDATE pool_blocks SET last_key = X'C0000204' WHERE id = 10")?.message == "pool block still holds allocated addresses")
        try accepted("UPDATE pool_blocks SET last_key = X'C0000208' WHERE id = 10")  // shrinking around it is fine
        try accepted("DELETE FROM allocations WHERE id = 1")
        try accepted("DELETE FROM pools WHERE id = 1")
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM pool_blocks")!.get(0, as: Int.self) } == 1, "blocks went with their pool")
    }

    @Test func nodesInUseCannotBeDeleted() throws {
        try accepted(allocate(1, name: "default.web", key: "C0000205"))
        try accepted("INSERT INTO allocation_nodes VALUES (1, 1)")
        try accepted("INSERT INTO node_addresses VALUES (1, 'ipv4', '100.64.0.2')")
        #expect(try refusal("DELETE FROM nodes WHERE id = 1")?.constraint == .foreignKey)
        #expect(try refusal("INSERT INTO nodes (name, created_at, updated_at) VALUES ('n2', 0, 0); INSERT INTO node_addresses VALUES (2, 'ipv4', '100.64.0.2')")?.constraint == .unique)
        try accepted("DELETE FROM allocations WHERE id = 1; DELETE FROM nodes WHERE id = 1")
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM node_addresses")!.get(0, as: Int.self) } == 0)
    }

    @Test(arguments: [
        "INSERT INTO allocations (name, pool_id, family, created_at, updated_at) VALUES ('x', 1, 'ipv5', 0, 0)",
        "INSERT INTO allocations (name, pool_id, family, traffic_policy, created_at, updated_at) VALUES ('x', 1, 'ipv4', 'nearest', 0, 0)",
        "INSERT INTO allocations (name, pool_id, family, created_at, updated_at) VALUES ('x', 99, 'ipv4', 0, 0)",
        "INSERT INTO routes (name, family, prefix, next_hops, created_at, updated_at) VALUES ('r', 'ipv4', '10.0.0.0/24', '[]', 0, 0)",
        "INSERT INTO routes (name, family, prefix, created_at, updated_at) VALUES ('r', 'ipv4', '10.0.0.0/24', 0, 0); INSERT INTO routes (name, family, prefix, created_at, updated_at) VALUES ('s', 'ipv4', '10.0.0.0/24', 0, 0)",
        "INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (0, 'flap', '10.0.0.1/32', 'ipv4', 'static', 'r', 'x')",
        "INSERT INTO route_events (at, action, prefix, family, source, source_name, paths, reason) VALUES (0, 'announce', '10.0.0.1/32', 'ipv4', 'static', 'r', '{}', 'x')",
        "INSERT INTO peer_events (at, peer, kind, reason, notification_code) VALUES (0, 'r', 'down', 'x', 6)",
        "INSERT INTO peer_events (at, peer, kind, reason) VALUES (0, 'r', 'exploded', 'x')",
    ])
    func otherTablesReject(_ sql: String) throws {
        #expect(try refusal(sql)?.isConstraintViolation == true)
    }

    @Test func historyAcceptsValidEvents() throws {
        try accepted("""
            INSERT INTO route_events (at, action, prefix, family, source, source_name, paths, reason, request_id)
              VALUES (1, 'announce', '192.0.2.5/32', 'ipv4', 'allocation', 'default.web', '[{"next_hop":"100.64.0.2"}]', 'allocation created', 'req-1');
            INSERT INTO peer_events (at, peer, kind, from_state, to_state, reason, notification_code, notification_subcode, notification_text, notification_direction)
              VALUES (2, 'r1', 'down', 'established', 'idle', 'peer sent NOTIFICATION 6/2 (Administrative Shutdown)', 6, 2, 'maintenance', 'received');
            """)
    }
}
