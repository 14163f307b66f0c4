import Foundation
import Testing
@testable import HeraldCore
import IP
@testable import Store

private func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }

/// `GET /v1/history?prefix=`: the events inside a prefix, found through `route_events_by_key`.
@Suite struct HistoryPrefixTests {
    let directory = ScratchDirectory()
    let store: Store

    init() throws { store = try Store(path: directory.file("herald.db")) }

    /// One history row per prefix, in order, as the committer writes them (key included).
    func record(_ prefixes: [IPPrefix], at: Int64, into store: Store? = nil) throws {
        let routes = prefixes.map { DesiredRoute(prefix: $0, paths: [], attributes: AnnounceAttributes(), sources: [RouteSource(kind: .static, name: "r")]) }
        try (store ?? self.store).write { db in
            for route in routes { try RouteHistory.append(db, RouteDiff(withdrawn: [route]), reason: "\(route.prefix)", requestID: nil, now: at) }
        }
    }

    /// A row as Herald wrote it before migration 0006: no key.
    func recordWithoutKey(_ prefix: String, at: Int64 = 1, into store: Store? = nil) throws {
        try (store ?? self.store).write { db in
            try db.execute("""
                INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (?, 'withdraw', ?, ?, 'static', 'r', ?)
                """, [at, prefix, prefix.contains(":") ? "ipv6" : "ipv4", prefix])
        }
    }

    func listed(_ within: IPPrefix, since: Int64? = nil, until: Int64? = nil, order: EventOrder = .asc, limit: Int = 100,
                from store: Store? = nil) throws -> [String] {
        try (store ?? self.store).read { db in
            try RouteHistory.list(db, within: within, since: since, until: until, order: order, limit: limit)
        }.map(\.prefix.description)
    }

    static let stored = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "10.1.2.4/32", "10.1.2.0/24", "11.0.0.0/8", "10.255.255.255/32",
                         "::/0", "a00::/8", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::5/128", "2001:db9::/32", "2001:db8:ffff::/48"].map(prefix)

    /// Every stored prefix, other prefixes and hosts, and the whole of each family: the index
    /// finds what `IPPrefix.contains` says, in id order. (a00::/8 shares 10.0.0.0/8's first
    /// bytes: the family tag keeps them apart.)
    @Test func findsWhatIsInsideIPv4AndIPv6PrefixesAndHosts() throws {
        try record(Self.stored, at: 1)
        let queries = Self.stored + ["10.1.2.5/32", "192.0.2.0/24", "10.1.2.2/31", "10.0.0.0/7", "2001:db8:1::6/128", "2001:db8::/31", "a00::/7"].map(prefix)
        for query in queries {
            #expect(try listed(query) == Self.stored.filter { query.contains($0) }.map(\.description), "inside \(query)")
        }
        #expect(try listed(prefix("192.0.2.0/24")).isEmpty)
        #expect(try listed(IPPrefix(host: try IPAddress(parsing: "10.1.2.3"))) == ["10.1.2.3/32"])
    }

    /// Pages of every row, of one host and of a range, oldest and newest first, through the
    /// cursor and across the inner 256-row reads, alone and with a time window.
    @Test(arguments: [EventOrder.asc, .desc])
    func pagesFollowTheCursorAndTheTimeWindow(order: EventOrder) throws {
        for at in 0..<300 {
            try record([prefix("10.1.2.3/32"), prefix("10.1.\(at % 7).0/24"), prefix("2001:db8::\(at)/128")], at: Int64(at))
        }
        let all = try store.read { db in try RouteHistory.list(db, limit: 1000) }
        #expect(all.count == 900)
        for query in [nil, "10.1.2.3/32", "10.1.0.0/16", "2001:db8::/120", "10.1.2.0/24"].map({ $0.map(prefix) }) {
            for (since, until) in [(nil, nil), (Int64(50), nil), (nil, Int64(120)), (Int64(40), Int64(260))] as [(Int64?, Int64?)] {
                let matching = all.filter { query?.contains($0.prefix) ?? true && $0.at >= (since ?? .min) && $0.at <= (until ?? .max) }.map(\.id)
                var paged: [Int64] = []
                while true {
                    let page = try store.read { db in
                        try RouteHistory.list(db, within: query, since: since, until: until, order: order, after: paged.last, limit: 70)
                    }
                    paged += page.map(\.id)
                    if page.count < 70 { break }
                }
                #expect(paged == (order == .asc ? matching : matching.reversed()), "\(query?.description ?? "all") since \(since ?? -1) until \(until ?? -1)")
            }
        }
    }

    /// Rows written before migration 0006 have no key: they are found by their text meanwhile,
    /// and by the index once `fillPrefixKeys` (a few rows per commit) has keyed every one.
    @Test func rowsFromBeforeTheMigrationAreFoundBeforeAndAfterTheyAreKeyed() async throws {
        for text in ["10.1.2.3/32", "10.9.0.0/16", "2001:db8:1::5/128", "10.1.0.0/16", "2001:db8::/32", "10.1.2.3/32", "192.0.2.7/32"] {
            try recordWithoutKey(text)
        }
        try record([prefix("10.1.2.3/32"), prefix("2001:db8:1::/48")], at: 2)
        let expected: [String: [String]] = [
            "10.1.2.3/32": ["10.1.2.3/32", "10.1.2.3/32", "10.1.2.3/32"],
            "10.1.0.0/16": ["10.1.2.3/32", "10.1.0.0/16", "10.1.2.3/32", "10.1.2.3/32"],
            "2001:db8::/32": ["2001:db8:1::5/128", "2001:db8::/32", "2001:db8:1::/48"],
            "10.0.0.0/8": ["10.1.2.3/32", "10.9.0.0/16", "10.1.0.0/16", "10.1.2.3/32", "10.1.2.3/32"],
        ]
        for (query, found) in expected {
            #expect(try listed(prefix(query)) == found, "before keying: \(query)")
            #expect(try listed(prefix(query), order: .desc) == found.reversed(), "before keying, newest first: \(query)")
        }

        let committer = try Committer(store: store)
        #expect(try await RouteHistory.fillPrefixKeys(committer, batch: 3) == 7)
        let keys = try store.read { db in
            try db.rows("SELECT prefix, prefix_key FROM route_events ORDER BY id").map { (try $0.get(0, as: String.self), try $0.get(1, as: [UInt8]?.self)) }
        }
        for (text, key) in keys { #expect(key == RouteHistory.PrefixKey.of(prefix(text)), "\(text)") }
        for (query, found) in expected { #expect(try listed(prefix(query)) == found, "after keying: \(query)") }
        #expect(try await RouteHistory.fillPrefixKeys(committer, batch: 3) == 0, "nothing left")

        // A row whose text is no prefix keeps no key, and filling still ends.
        try recordWithoutKey("not a prefix")
        #expect(try await RouteHistory.fillPrefixKeys(committer, batch: 3) == 1)
        #expect(try store.read { db in try db.firstRow("SELECT count(*) FROM route_events WHERE prefix_key IS NULL")?.get(0, as: Int.self) } == 1)
        committer.finish()
    }

    /// The reason for the key: a prefix query reads the rows inside the prefix, not the table.
    /// A row outside it whose text cannot even be parsed is never read (scanning the table, as
    /// before, failed on it), and the plan searches the key index; nothing scans the table.
    @Test func aPrefixQueryReadsOnlyTheRowsInsideThePrefix() throws {
        try record((0..<1000).map { IPPrefix(host: .v4(IPv4Address(10 << 24 | UInt32($0) << 8))) }, at: 1)
        try record([prefix("10.1.2.3/32"), prefix("10.1.2.0/24")], at: 2)
        try store.write { db in
            try db.execute("""
                INSERT INTO route_events (at, action, prefix, family, source, source_name, reason, prefix_key) VALUES (3, 'withdraw', 'not a prefix', 'ipv4', 'static', 'r', 'x', ?)
                """, [DatabaseValue.blob(RouteHistory.PrefixKey.of(prefix("10.9.9.9/32")))])
        }
        try record([prefix("10.1.2.3/32")], at: 4)
        #expect(try listed(prefix("10.1.2.3/32")) == ["10.1.2.3/32", "10.1.2.3/32"])
        #expect(try listed(prefix("10.1.2.0/24")) == ["10.1.2.0/32", "10.1.2.3/32", "10.1.2.0/24", "10.1.2.3/32"])

        #expect(try listed(prefix("10.1.2.0/24"), order: .desc) == ["10.1.2.3/32", "10.1.2.0/24", "10.1.2.3/32", "10.1.2.0/32"])

        // Newest first the same: the host's (prefix_key, id) index walked backwards from the
        // cursor, with no sort (a range sorts its ids either way).
        for order in [EventOrder.asc, .desc] {
            let after = order == .asc ? ">" : "<"
            for within in [prefix("10.1.2.3/32"), prefix("10.1.0.0/16"), prefix("2001:db8::/32")] {
                let plan = try queryPlan(within: within, order: order)
                #expect(plan.contains { $0.contains("INDEX route_events_by_key (prefix_key=? AND id\(after)?)") }, "\(within) \(order): \(plan)")
                #expect(plan.contains { $0.contains("INDEX route_events_by_key (prefix_key\(within.isHost ? "=? AND id\(after)?" : ">? AND prefix_key<?"))") },
                        "\(within) \(order): \(plan)")
                #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(within) \(order): \(plan)")
                if within.isHost { #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(within) \(order): \(plan)") }
            }
            // Without a prefix: the table in rowid order from the cursor.
            let plan = try queryPlan(within: nil, order: order)
            #expect(plan == ["SEARCH route_events USING INTEGER PRIMARY KEY (rowid\(after)?)"], "\(order): \(plan)")
        }
    }

    /// SQLite's plan for a page of `list`, one line per step.
    func queryPlan(within: IPPrefix?, order: EventOrder) throws -> [String] {
        let (sql, keys) = RouteHistory.pageQuery(within: within, order: order)
        return try store.read { db in
            try db.rows("EXPLAIN QUERY PLAN " + sql, [DatabaseValue.integer(order == .asc ? 0 : .max), .null, .null, .integer(256)] + keys)
                .map { try $0.get(3, as: String.self) }
        }
    }

    /// Cluster mode runs the same statements through dqlite and Herald's wire client: numbered
    /// parameters, INDEXED BY, the page's UNION ALL and the keying's UPDATE … FROM.
    @Test func queriesAndKeyingWorkOnDqlite() async throws {
        do { try ClusterNode.loadLibrary() } catch {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" { throw error }
            print("skipping the history test on dqlite: \(error.message)")
            return
        }
        let free = try TestListener(address: "127.0.0.1")
        let listen = "127.0.0.1:\(free.port)"
        free.close()
        let cluster = try Store(cluster: ClusterOptions(directory: directory.file("node1"), listen: listen))
        defer { cluster.close() }
        for text in ["10.1.2.3/32", "2001:db8:1::5/128", "10.9.0.0/16"] { try recordWithoutKey(text, into: cluster) }
        try record([prefix("10.1.2.3/32"), prefix("2001:db8::/32")], at: 2, into: cluster)
        let expected = ["10.1.2.3/32": ["10.1.2.3/32", "10.1.2.3/32"], "10.0.0.0/8": ["10.1.2.3/32", "10.9.0.0/16", "10.1.2.3/32"],
                        "2001:db8::/32": ["2001:db8:1::5/128", "2001:db8::/32"]]
        for (query, found) in expected { #expect(try listed(prefix(query), from: cluster) == found, "before keying: \(query)") }
        let committer = try Committer(store: cluster, replica: listen)
        #expect(try await RouteHistory.fillPrefixKeys(committer, batch: 2) == 3)
        #expect(try cluster.read { db in try db.firstRow("SELECT count(*) FROM route_events WHERE prefix_key IS NULL")?.get(0, as: Int.self) } == 0)
        for (query, found) in expected { #expect(try listed(prefix(query), from: cluster) == found, "after keying: \(query)") }
        committer.finish()
    }

    /// The key range of P holds the key of Q exactly when P contains Q (memcmp order, as SQLite
    /// compares BLOBs), for prefixes drawn near each other so that both answers come up often.
    @Test func theKeyRangeOfAPrefixHoldsExactlyThePrefixesInsideIt() {
        var random = SeededGenerator(seed: 16)
        var inside = 0
        for round in 0..<20_000 {
            let family: IPFamily = round.isMultiple(of: 2) ? .ipv4 : .ipv6
            let width = family.bitWidth
            let bits = UInt128(random.next()) << 64 | UInt128(random.next())
            let address = IPAddress(family: family, bits: family == .ipv4 ? bits & 0xffff_ffff : bits)
            let outer = IPPrefix(truncating: address, length: Int.random(in: 0...width, using: &random))
            // A few to many low bits flipped: sometimes inside `outer`, sometimes not.
            let flip = UInt128(random.next()) >> Int.random(in: (128 - width / 2)..<128, using: &random)
            let nearby = IPAddress(family: family, bits: address.bits ^ flip)
            let other = IPPrefix(truncating: nearby, length: Int.random(in: 0...width, using: &random))
            let range = RouteHistory.PrefixKey.range(inside: outer)
            let key = RouteHistory.PrefixKey.of(other)
            let inRange = !key.lexicographicallyPrecedes(range.low) && !range.high.lexicographicallyPrecedes(key)
            #expect(inRange == outer.contains(other), "\(other) inside \(outer)")
            if inRange { inside += 1 }
        }
        #expect(inside > 2_000 && inside < 18_000, "both answers come up: \(inside) of 20000 inside")
    }
}
