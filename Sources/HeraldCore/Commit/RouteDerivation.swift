internal import IP
internal import Store

/// How a change finds the routes it moved. One small type per way; each compares what it derives
/// with the table the change started from (`TableView`) and returns the difference.
protocol RouteDerivation {
    func derive(_ db: Database, table: TableView, down: Set<String>) throws -> DerivedRoutes
}

/// What a derivation found: the diff (for history, events and the speaker) and the new route of
/// every prefix it looked at (nil: no longer announced), to lay over the table after COMMIT.
struct DerivedRoutes {
    var diff = RouteDiff()
    var changes: [IPPrefix: DesiredRoute?] = [:]
    /// For a bulk change, `changes` is built on another thread while the history rows are
    /// written; `resolve()` takes it over.
    var changesAside: Aside<[IPPrefix: DesiredRoute?]>?

    mutating func resolve() {
        if let aside = changesAside {
            changes = aside.result()
            changesAside = nil
        }
    }
}

/// From this many changed prefixes on, the dictionaries of a change are built on another thread
/// while the committer writes to SQLite (a bulk load of static routes).
let asideThreshold = 50_000

/// Only these prefixes can have changed (an allocation's addresses and those it released; a
/// static route's old and new prefix): re-derive just them, at a cost that does not grow with
/// the table.
struct AffectedPrefixes: RouteDerivation {
    let prefixes: Set<IPPrefix>

    func derive(_ db: Database, table: TableView, down: Set<String>) throws -> DerivedRoutes {
        // An allocation's address may be announced as its pool's aggregate: that route changes too.
        let prefixes = try DesiredRoutes.withAggregates(db, prefixes)
        let fresh = try DesiredRoutes.derive(db, only: prefixes, down: down)
        var before: [IPPrefix: DesiredRoute] = [:]
        var derived = DerivedRoutes()
        derived.changes.reserveCapacity(prefixes.count)
        for prefix in prefixes {
            if let old = table[prefix] { before[prefix] = old }
            derived.changes[prefix] = .some(fresh[prefix])
        }
        derived.diff = RouteDiff.between(before, fresh)
        return derived
    }
}

/// Anything may have changed (a node, a pool, a node's health): re-derive the whole table.
struct WholeTable: RouteDerivation {
    func derive(_ db: Database, table: TableView, down: Set<String>) throws -> DerivedRoutes {
        let before = table.materialize()
        let after = try DesiredRoutes.derive(db, down: down)
        var derived = DerivedRoutes()
        derived.diff = RouteDiff.between(before, after)
        for route in derived.diff.announced + derived.diff.updated { derived.changes[route.prefix] = .some(route) }
        for route in derived.diff.withdrawn { derived.changes[route.prefix] = .some(nil) }
        // Unchanged prefixes may still carry new sources (a second allocation sharing an
        // address): keep the table's copy exact.
        for (prefix, route) in after where derived.changes[prefix] == nil && before[prefix]?.sources != route.sources {
            derived.changes[prefix] = .some(route)
        }
        return derived
    }
}

/// The change knows its routes without reading them back (a bulk load of static routes,
/// `DesiredRoutes.deriveStaticBatch`): each prefix once, the route after the change or nil.
/// Sorted input keeps the diff's sort linear.
struct GivenRoutes: RouteDerivation {
    let routes: [(prefix: IPPrefix, route: DesiredRoute?)]

    func derive(_ db: Database, table: TableView, down: Set<String>) throws -> DerivedRoutes {
        var derived = DerivedRoutes()
        let fresh = routes
        if fresh.count >= asideThreshold {
            // A bulk load: the dictionary of a million changes is built on the other core while
            // this one writes the history rows.
            derived.changesAside = Aside {
                var built: [IPPrefix: DesiredRoute?] = [:]
                built.reserveCapacity(fresh.count)
                for (prefix, route) in fresh { built[prefix] = .some(route) }
                return built
            }
        } else {
            derived.changes.reserveCapacity(fresh.count)
            for (prefix, route) in fresh { derived.changes[prefix] = .some(route) }
        }
        var diff = RouteDiff()
        if table.isEmpty {
            // Into an empty table (the first bulk load) everything given is announced, in the
            // order given: no lookups.
            diff.announced.reserveCapacity(fresh.count)
            for (_, route) in fresh { if let route { diff.announced.append(route) } }
        } else {
            for (prefix, route) in fresh {
                switch (table[prefix], route) {
                case (nil, let route?): diff.announced.append(route)
                case (let old?, let route?):
                    if old.paths != route.paths || old.attributes != route.attributes { diff.updated.append(route) }
                case (let old?, nil): diff.withdrawn.append(old)
                case (nil, nil): break
                }
            }
        }
        diff.announced.sort { $0.prefix < $1.prefix }
        diff.updated.sort { $0.prefix < $1.prefix }
        diff.withdrawn.sort { $0.prefix < $1.prefix }
        derived.diff = diff
        return derived
    }
}
