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

    /// Creates a static route or replaces the one of that name (`created_at` stays).
    static let upsertSQL = """
        INSERT INTO routes (name, family, prefix, next_hops, announce, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """ + " " + upsertConflictSQL

    static let upsertConflictSQL = """
        ON CONFLICT (name) DO UPDATE SET family = excluded.family, prefix = excluded.prefix, next_hops = excluded.next_hops,
            announce = excluded.announce, labels = excluded.labels, updated_at = excluded.updated_at
        """

    public static func get(_ db: Database, name: String) throws -> StaticRoute? {
        try db.firstRow(selectSQL + " WHERE name = ?", [name]).map(route)
    }

    /// The static route for exactly `prefix`, if any.
    public static func get(_ db: Database, prefix: IPPrefix) throws -> StaticRoute? {
        try db.firstRow(selectSQL + " WHERE prefix = ?", [prefix.description]).map(route)
    }

    public static func list(_ db: Database) throws -> [StaticRoute] {
        var decoder = RowDecoder()
        var routes: [StaticRoute] = []
        for row in try db.rows(selectSQL + " ORDER BY name") { routes.append(try decoder.route(row)) }
        return routes
    }

    /// Up to `limit` static routes after the name `after`, in name order (`GET /v1/routes:static`).
    public static func page(_ db: Database, after: String?, limit: Int) throws -> [StaticRoute] {
        var decoder = RowDecoder()
        var routes: [StaticRoute] = []
        for row in try db.rows(selectSQL + " WHERE name > ? ORDER BY name LIMIT ?", [after ?? "", limit]) { routes.append(try decoder.route(row)) }
        return routes
    }

    private static func route(_ row: Row) throws -> StaticRoute {
        var decoder = RowDecoder()
        return try decoder.route(row)
    }

    /// Turns rows into routes, decoding each distinct JSON text once.
    struct RowDecoder {
        /// Parsed next hops by their JSON text (decoded and parsed once per distinct text).
        var parsedHops: [String: [StaticNextHop]] = [:]
        var announce = JSONColumnCache<AnnounceAttributes>()
        var labels = JSONColumnCache<[String: String]>()

        mutating func route(_ row: Row) throws -> StaticRoute {
            let hopsText: String = try row.get(2)
            let nextHops: [StaticNextHop]
            if let known = parsedHops[hopsText] {
                nextHops = known
            } else {
                nextHops = try JSONColumn.decode([String].self, from: hopsText, column: "next_hops").map { text in
                    do { return try StaticNextHop(parsing: text) } catch { throw DatabaseError.typeMismatch("next hop \(text) is invalid") }
                }
                if parsedHops.count < 4096 { parsedHops[hopsText] = nextHops }
            }
            return StaticRoute(name: try row.get(0), prefix: try IPPrefix(parsing: row.get(1, as: String.self)), nextHops: nextHops,
                               announce: try announce.decode(row.get(3), column: "announce"),
                               labels: try labels.decode(row.get(4), column: "labels"),
                               createdAt: try row.get(5), updatedAt: try row.get(6))
        }
    }

    static func validate(_ db: Database, name: String, spec: StaticRouteSpec, field: String = "", into validator: inout Validator) throws {
        try validate(name: name, spec: spec, field: field, nodeExists: { try Nodes.id(db, name: $0) != nil }, into: &validator)
    }

    static func validate(name: String, spec: StaticRouteSpec, field: String, nodeExists: (String) throws -> Bool,
                         into validator: inout Validator) throws {
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
                if try !nodeExists(node) { validator.add(field + "next_hops[\(index)]", "node \"\(node)\" does not exist") }
            }
        }
        spec.announce.validate(field: field + "announce", into: &validator)
        spec.announce.validateNoAggregation(field: field + "announce", into: &validator)
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
        try db.execute(upsertSQL, [name, spec.prefix.family.rawValue, spec.prefix.description, JSONColumn.encode(spec.nextHops.map(\.description)),
                  JSONColumn.encode(spec.announce), JSONColumn.encode(spec.labels), now, now])
        return (try get(db, name: name)!, previous == nil, previous)
    }

    /// The name a batch item gets when it gives none: the prefix with `/` written `_` and `:`
    /// written `-` (`10.0.0.1/32` → `10.0.0.1_32`, `2001:db8::1/128` → `2001-db8--1_128`; a
    /// leading `::` gets its implied `0`). Distinct prefixes give distinct names.
    public static func defaultName(for prefix: IPPrefix) -> String {
        defaultName(prefixText: prefix.description)
    }

    /// `defaultName(for:)` from the prefix's canonical text, byte by byte (a bulk load names a
    /// million routes this way).
    static func defaultName(prefixText text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 1)
        if text.utf8.first == UInt8(ascii: ":") { bytes.append(UInt8(ascii: "0")) }
        for byte in text.utf8 {
            bytes.append(byte == UInt8(ascii: "/") ? UInt8(ascii: "_") : byte == UInt8(ascii: ":") ? UInt8(ascii: "-") : byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An IPv4 prefix in exactly its canonical form ("10.0.0.0/24": decimal octets and length
    /// without leading zeros, no host bits), read straight from the bytes; nil for anything else,
    /// which `IPPrefix(parsing:)` then parses or explains. A million-route batch is mostly these,
    /// and its text can be kept as the prefix's `description`.
    static func canonicalIPv4Prefix(_ text: String) -> IPPrefix? {
        var value: UInt32 = 0, part: UInt32 = 0, digits = 0, dots = 0
        var length: Int?
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits == 1 && part == 0 { return nil }  // leading zero
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || part > 255 { return nil }
            case UInt8(ascii: ".") where length == nil && dots < 3 && digits > 0:
                value = value << 8 | part
                (part, digits, dots) = (0, 0, dots + 1)
            case UInt8(ascii: "/") where length == nil && dots == 3 && digits > 0:
                value = value << 8 | part
                (part, digits, length) = (0, 0, 0)
            default:
                return nil
            }
        }
        guard length != nil, digits > 0, part <= 32 else { return nil }
        let bits = Int(part)
        // Host bits set: the full parser says which prefix was meant.
        if bits < 32 && value & (UInt32.max >> bits) != 0 { return nil }
        return try? IPPrefix(network: .v4(IPv4Address(value)), length: bits)
    }

    /// What the table holds under a batch item's name.
    private enum Stored: UInt8 { case absent, same, other }

    /// What a batch did.
    public struct BatchOutcome: Sendable, Equatable {
        public var created = 0
        public var updated = 0
        public var unchanged = 0
        /// The items written (created or changed), by their index in the batch, in batch order.
        public var written: [Int] = []
        /// Prefixes that changed routes left (a route of the batch moved to another prefix).
        public var vacated: [IPPrefix] = []
    }

    /// Creates or replaces many static routes at once, all or nothing: any invalid item fails the
    /// batch with every problem named by item index (`[41].prefix`, at most 100 of them).
    /// Re-sending an identical route changes nothing (not even its `updated_at`).
    /// `namesFollowPrefixes`: every item is named `defaultName(for:)` its prefix, so names are
    /// distinct exactly when prefixes are (one duplicate check instead of two).
    /// `prefixTexts`: the items' prefixes written out (`description`), when the caller has them.
    public static func putBatch(_ db: Database, _ items: [(name: String, spec: StaticRouteSpec)], now: Int64,
                                namesFollowPrefixes: Bool = false, prefixTexts: [String]? = nil) throws -> BatchOutcome {
        precondition(prefixTexts == nil || prefixTexts?.count == items.count, "one prefix text per item")
        var validator = Validator()
        let nodes = Set(try db.rows("SELECT name FROM nodes").map { try $0.get(0, as: String.self) })
        let noAnnounce = AnnounceAttributes()
        // A batch repeats the same next hops, attributes and labels: once one item's passed,
        // an item with the same (and a prefix of the same family) has only its name to check.
        // Items are read in place (`items[index]`), not copied out with their arrays.
        var checked: (hops: [StaticNextHop], family: IPFamily, announce: AnnounceAttributes, labels: [String: String])?
        for index in items.indices {
            if let known = checked, items[index].spec.nextHops == known.hops, items[index].spec.prefix.family == known.family,
               items[index].spec.announce == known.announce, items[index].spec.labels == known.labels,
               ObjectName.validate(items[index].name) == nil {
                continue
            }
            let item = items[index]
            // The field prefix (`[41].`) is only written out for an item with a problem.
            var problems = Validator()
            try validate(name: item.name, spec: item.spec, field: "", nodeExists: { nodes.contains($0) }, into: &problems)
            if !problems.errors.isEmpty {
                try validate(name: item.name, spec: item.spec, field: "[\(index)].", nodeExists: { nodes.contains($0) }, into: &validator)
            } else {
                checked = (item.spec.nextHops, item.spec.prefix.family, item.spec.announce, item.spec.labels)
            }
            if validator.errors.count >= 100 { break }
        }
        // Duplicates. Prefixes in strictly increasing order (a generated load) cannot repeat;
        // otherwise a set finds them, and the (rare) item a duplicate repeats is then looked up.
        var increasing = true
        for index in items.indices.dropFirst() where !(items[index - 1].spec.prefix < items[index].spec.prefix) {
            increasing = false
            break
        }
        if !increasing {
            var prefixes = Set<IPPrefix>(minimumCapacity: items.count)
            for (index, item) in items.enumerated() where validator.errors.count < 100 {
                if !prefixes.insert(item.spec.prefix).inserted, let first = items.firstIndex(where: { $0.spec.prefix == item.spec.prefix }) {
                    validator.add("[\(index)].prefix", "\(item.spec.prefix) is also item \(first)")
                    if namesFollowPrefixes { validator.add("[\(index)].name", "\"\(item.name)\" is also item \(first)") }
                }
            }
        }
        if !namesFollowPrefixes {
            var names = Set<String>(minimumCapacity: items.count)
            for (index, item) in items.enumerated() where validator.errors.count < 100 {
                if !names.insert(item.name).inserted, let first = items.firstIndex(where: { $0.name == item.name }) {
                    validator.add("[\(index)].name", "\"\(item.name)\" is also item \(first)")
                }
            }
        }
        try validator.finish()

        // A big batch writes far more pages than the default cache holds (routes, their history
        // rows and the indexes: ~350 MB for a million): a larger cache until the commit, capped
        // at 96 MiB — SQLite spills the rest into the WAL before COMMIT (uncommitted frames, so a
        // crash still loses nothing acknowledged). The cap took the peak of a million-route load
        // from ~950 to ~700 MiB at no measurable cost in time (scripts/bench/bird-load.sh, issue #19).
        if items.count >= 50_000 { try db.expectBulkWrite(bytes: min(items.count * 512, 96 << 20)) }
        var outcome = BatchOutcome()
        outcome.written.reserveCapacity(items.count)
        var hopsText = JSONColumnEncodeCache<[String]>()
        var announceText = JSONColumnEncodeCache<AnnounceAttributes>()
        var labelsText = JSONColumnEncodeCache<[String: String]>()
        // Batches repeat the same next-hop list: encode it again only when it differs from the
        // previous item's (comparing beats hashing a list per item).
        var lastHops: [StaticNextHop]?
        var lastHopsText = ""
        let noAnnounceText = JSONColumn.encode(noAnnounce), noLabelsText = JSONColumn.encode([String: String]())
        /// An item's three JSON columns as they would be stored.
        func texts(_ spec: StaticRouteSpec) -> (hops: String, announce: String, labels: String) {
            if lastHops != spec.nextHops {
                lastHopsText = hopsText.encode(spec.nextHops.map(\.description))
                lastHops = spec.nextHops
            }
            return (lastHopsText,
                    spec.announce == noAnnounce ? noAnnounceText : announceText.encode(spec.announce),
                    spec.labels.isEmpty ? noLabelsText : labelsText.encode(spec.labels))
        }
        // What the table holds under each item's name: nothing, the same route, or another one.
        var stored = [Stored](repeating: .absent, count: items.count)
        // Into an empty table (the first bulk load) nothing can exist: no lookups at all.
        let highestID = try db.firstRow("SELECT max(id) FROM routes")?.get(0, as: Int64?.self) ?? nil
        if let highestID {
            /// Compares the stored row of item `index` (name, prefix, next_hops, announce,
            /// labels) with the item, in place.
            func compare(_ index: Int, _ row: TextRow) {
                let prefixText = prefixTexts?[index] ?? items[index].spec.prefix.description
                let (hops, announce, labels) = texts(items[index].spec)
                if row.text(1, equals: prefixText), row.text(2, equals: hops), row.text(3, equals: announce), row.text(4, equals: labels) {
                    stored[index] = .same
                } else {
                    stored[index] = .other
                    if !row.text(1, equals: prefixText), let old = IPPrefix(row.string(1)) { outcome.vacated.append(old) }
                }
            }
            let columns = "SELECT name, prefix, next_hops, announce, labels FROM routes"
            if items.count >= Int(highestID) / 8 {
                // A batch about as large as the table (re-sending the table): one pass over the
                // table instead of a lookup per item. A re-send lists the routes in the order
                // they were created, so each row is first compared with the item after the last
                // one matched; only rows out of that order are looked up by name.
                var next = 0
                var byName: [String: Int32]?
                try db.cachedStatement(columns).forEachTextRow { row throws(DatabaseError) in
                    if next < items.count, row.text(0, equals: items[next].name) {
                        compare(next, row)
                        next += 1
                        return
                    }
                    if byName == nil {
                        var names = [String: Int32](minimumCapacity: items.count)
                        for index in items.indices { names[items[index].name] = Int32(index) }
                        byName = names
                    }
                    if let index = byName?[row.string(0)] {
                        compare(Int(index), row)
                        next = Int(index) + 1
                    }
                }
            } else {
                let existing = try db.cachedStatement(columns + " WHERE name = ?")
                for index in items.indices {
                    try existing.forEachTextRow([items[index].name]) { row throws(DatabaseError) in compare(index, row) }
                }
            }
        }
        // Written in multi-row statements; `waiting` are the items of the rows not yet written.
        var rows = BulkInsert(db, "INSERT INTO routes (name, family, prefix, next_hops, announce, labels, created_at, updated_at)", columns: 8,
                              tail: upsertConflictSQL)
        var waiting: [Int] = []
        waiting.reserveCapacity(rows.rowsPerStatement)
        func written(_ write: (inout BulkInsert) throws(DatabaseError) -> Void) throws {
            // (The failure is taken out of the catch before it is examined: a `catch where` on
            // this typed error crashes the Swift 6.3 compiler.)
            var failure: DatabaseError?
            do { try write(&rows) } catch { failure = error }
            if let failure {
                guard failure.constraint == .unique else { throw failure }
                // A prefix belongs to another static route (names are upserted, so it is not the
                // name): say which item and which route, rather than a bare constraint message.
                let owner = try db.cachedStatement("SELECT name FROM routes WHERE prefix = ? AND name <> ?")
                for index in waiting {
                    let prefixText = items[index].spec.prefix.description
                    if let name = try owner.firstRow([prefixText, items[index].name])?.get(0, as: String.self) {
                        throw DomainError.conflict("item \(index): prefix \(prefixText) is already the static route \"\(name)\"")
                    }
                }
                throw failure
            }
            if rows.pendingRows == 0 { waiting.removeAll(keepingCapacity: true) }
        }
        for index in items.indices {
            switch stored[index] {
            case .same:
                outcome.unchanged += 1
                continue
            case .other: outcome.updated += 1
            case .absent: outcome.created += 1
            }
            let item = items[index]
            let prefixText = prefixTexts?[index] ?? item.spec.prefix.description
            let (hops, announce, labels) = texts(item.spec)
            outcome.written.append(index)
            waiting.append(index)
            rows.append(.text(item.name))
            rows.append(.text(item.spec.prefix.family.rawValue))
            rows.append(.text(prefixText))
            rows.append(.text(hops))
            rows.append(.text(announce))
            rows.append(.text(labels))
            rows.append(.integer(now))
            rows.append(.integer(now))
            try written { rows throws(DatabaseError) in try rows.endRow() }
        }
        try written { rows throws(DatabaseError) in try rows.flush() }
        return outcome
    }

    /// Deletes a static route and returns it.
    @discardableResult
    public static func delete(_ db: Database, name: String) throws -> StaticRoute {
        guard let route = try get(db, name: name) else { throw DomainError.notFound(kind: "route", name: name) }
        try db.execute("DELETE FROM routes WHERE name = ?", [name])
        return route
    }
}
