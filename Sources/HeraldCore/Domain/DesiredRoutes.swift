public import IP
public import Store
internal import Synchronization

/// Where a path sends traffic.
public enum NextHop: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The local address of each BGP session ("next-hop-self"): used when no node is registered.
    case session
    /// A node's (or a literal) address: a third-party next hop (RFC 4271 §5.1.3).
    case address(IPAddress)

    public var description: String {
        switch self {
        case .session: "self"
        case .address(let address): address.description
        }
    }
}

/// One path of a route: a next hop, and the node it belongs to when it is one.
public struct RoutePath: Hashable, Sendable, Comparable {
    public let nextHop: NextHop
    public let node: String?

    public init(nextHop: NextHop, node: String? = nil) {
        self.nextHop = nextHop
        self.node = node
    }

    public static func < (lhs: RoutePath, rhs: RoutePath) -> Bool {
        (lhs.nextHop, lhs.node ?? "") < (rhs.nextHop, rhs.node ?? "")
    }
}

/// What put a route there.
public struct RouteSource: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Kind: String, Sendable, Comparable {
        case allocation
        case `static`

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let kind: Kind
    public let name: String

    public static func < (lhs: RouteSource, rhs: RouteSource) -> Bool { (lhs.kind, lhs.name) < (rhs.kind, rhs.name) }

    public var description: String { "\(kind.rawValue) \(name)" }
}

/// A route Herald should originate: derived from the database, never stored.
///
/// Compact, because the reconciler keeps one per announced prefix (a million static routes is
/// a normal bulk load): the paths and attributes, which most routes share, live once in a
/// `RouteShape`, and the usual single source is held inline rather than in an array.
public struct DesiredRoute: Hashable, Sendable {
    public let prefix: IPPrefix
    let body: Body

    public init(prefix: IPPrefix, paths: [RoutePath], attributes: AnnounceAttributes, sources: [RouteSource]) {
        self.prefix = prefix
        body = Body(shape: RouteShape.shared(paths: paths, attributes: attributes), sources: SourceList(sources))
    }

    init(prefix: IPPrefix, body: Body) {
        self.prefix = prefix
        self.body = body
    }

    /// Sorted, without duplicates; never empty (a route with no path is not announced).
    public var paths: [RoutePath] { body.shape.paths }
    public var attributes: AnnounceAttributes { body.shape.attributes }
    /// Sorted; more than one when allocations share an address.
    public var sources: [RouteSource] { body.sources.all }
    /// The first of `sources`, without building the array.
    public var firstSource: RouteSource? { body.sources.first }

    /// What the reconciler's table keeps per prefix (the prefix is the key).
    struct Body: Hashable, Sendable {
        let shape: RouteShape
        let sources: SourceList
    }
}

/// Paths and attributes shared by many routes: one object however many prefixes use it.
final class RouteShape: Hashable, Sendable {
    let paths: [RoutePath]
    let attributes: AnnounceAttributes

    private init(paths: [RoutePath], attributes: AnnounceAttributes) {
        self.paths = paths
        self.attributes = attributes
    }

    static func == (lhs: RouteShape, rhs: RouteShape) -> Bool {
        lhs === rhs || (lhs.paths == rhs.paths && lhs.attributes == rhs.attributes)
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(paths)
        hasher.combine(attributes)
    }

    private struct Key: Hashable {
        let paths: [RoutePath]
        let attributes: AnnounceAttributes
    }

    /// Recently made shapes, so equal routes share one. Bounded: past it new shapes are simply
    /// not shared (correct, only larger).
    private static let recent = Mutex<[Key: RouteShape]>([:])
    private static let recentLimit = 4_096

    static func shared(paths: [RoutePath], attributes: AnnounceAttributes) -> RouteShape {
        let key = Key(paths: paths, attributes: attributes)
        return recent.withLock { recent in
            if let known = recent[key] { return known }
            let shape = RouteShape(paths: paths, attributes: attributes)
            if recent.count < recentLimit { recent[key] = shape }
            return shape
        }
    }
}

/// A route's sources: nearly always one, held without an array.
enum SourceList: Hashable, Sendable {
    case one(RouteSource)
    case many([RouteSource])

    init(_ sources: [RouteSource]) {
        self = sources.count == 1 ? .one(sources[0]) : .many(sources)
    }

    var all: [RouteSource] {
        switch self {
        case .one(let source): [source]
        case .many(let sources): sources
        }
    }

    var first: RouteSource? {
        switch self {
        case .one(let source): source
        case .many(let sources): sources.first
        }
    }
}

/// The one function that turns database state into the routes to announce. Everything that
/// changes routes (allocations, nodes, pools, static routes) goes through it, so that after any
/// sequence of API calls and restarts the speaker converges to the same table.
///
/// Rules: an allocation's address is announced as a host prefix (/32 or /128). Its next hops are
/// the listed nodes (`local`) or the nodes matching its pool's node selector (`cluster`), using
/// each node's address of the route's family. When no node is registered at all, the next hop is
/// the session's own address. When nodes exist but none qualifies, the address is not announced:
/// announcing it would send traffic nowhere. A static route's next hops are "self", node names
/// (resolved per family) or literal addresses. Routes for the same prefix merge their paths.
///
/// Health: nodes in `down` whose health check failed (runtime state, not in the database) are
/// left out of every route; a route left with no node is withdrawn, unless its pool says
/// `fail_open`, which keeps it on all its nodes (a load balancer with no healthy backend sends to
/// all of them rather than to none). A node without a health check is never down.
public enum DesiredRoutes {
    public static func derive(_ db: Database, down: Set<String> = []) throws -> [IPPrefix: DesiredRoute] {
        try derive(db, only: nil, down: down)
    }

    /// The same rules for just `prefixes` (nil: every route): what a change to one allocation or
    /// static route needs, at a cost that does not grow with the size of the table. A prefix
    /// absent from the result is not announced.
    public static func derive(_ db: Database, only prefixes: Set<IPPrefix>?, down: Set<String> = []) throws -> [IPPrefix: DesiredRoute] {
        let nodes = try Nodes.list(db)
        func serves(_ node: Node) -> Bool { node.healthCheck == nil || !down.contains(node.name) }
        // Built as final values: the common case (one source, one path) costs one dictionary
        // insert, which matters when a bulk load derives a million static routes.
        var routes: [IPPrefix: DesiredRoute] = [:]
        routes.reserveCapacity(prefixes?.count ?? 0)
        func add(_ prefix: IPPrefix, _ paths: [RoutePath], _ attributes: AnnounceAttributes, _ source: RouteSource) {
            guard !paths.isEmpty else { return }
            if let existing = routes[prefix] {
                // Routes for the same prefix merge their paths; the first one's attributes stay.
                routes[prefix] = DesiredRoute(prefix: prefix, paths: Set(existing.paths + paths).sorted(), attributes: existing.attributes,
                                              sources: Set(existing.sources + [source]).sorted())
            } else {
                routes[prefix] = DesiredRoute(prefix: prefix, paths: paths.count > 1 ? Set(paths).sorted() : paths,
                                              attributes: attributes, sources: [source])
            }
        }

        var poolSettings: [String: (nodeSelector: [String: String], announce: AnnounceAttributes, failOpen: Bool)] = [:]
        for row in try db.rows("SELECT name, node_selector, announce, fail_open FROM pools") {
            poolSettings[try row.get(0)] = (try row.labels("node_selector"),
                                            try JSONColumn.decode(AnnounceAttributes.self, from: row.get(2), column: "announce"),
                                            try row.get(3))
        }

        // Past a few thousand prefixes (a bulk load), one scan of the tables is cheaper than one
        // lookup per prefix; the result is filtered to `prefixes` at the end either way.
        let scan = prefixes.map { $0.count > 2_000 } ?? true
        let allocations: [Allocation]
        if let prefixes, !scan {
            var names: Set<String> = []
            for prefix in prefixes {
                // A host prefix is its address; a shorter one may be an aggregate of every
                // allocation inside it (keys of one family have one length).
                let rows = prefix.isHost
                    ? try db.rows("""
                        SELECT a.name FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id WHERE x.address_key = ?
                        """, [prefix.network.bytes])
                    : try db.rows("""
                        SELECT a.name FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
                        WHERE x.address_key BETWEEN ? AND ? AND length(x.address_key) = ?
                        """, [prefix.first.bytes, prefix.last.bytes, prefix.first.bytes.count])
                for row in rows { names.insert(try row.get(0)) }
            }
            allocations = try names.sorted().compactMap { try Allocations.get(db, name: $0) }
        } else {
            allocations = try Allocations.list(db)
        }
        for allocation in allocations {
            guard let pool = poolSettings[allocation.pool] else { continue }
            let candidates: [Node] = switch allocation.trafficPolicy {
            case .local: nodes.filter { allocation.nodes.contains($0.name) }
            case .cluster: nodes.filter { Labels.matches(pool.nodeSelector, $0.labels) }
            }
            for address in allocation.addresses {
                // Per family: a node may have only the other family's address.
                let able = candidates.filter { $0.address(of: address.family) != nil }
                let healthy = able.filter(serves)
                let serving = healthy.isEmpty && pool.failOpen ? able : healthy
                let paths: [RoutePath] = nodes.isEmpty
                    ? [RoutePath(nextHop: .session)]
                    : serving.compactMap { node in node.address(of: address.family).map { RoutePath(nextHop: .address($0), node: node.name) } }
                // With aggregation the allocations under one covering prefix share its route:
                // their paths merge (with Local policy, every node of any of them).
                add(pool.announce.announcedPrefix(of: address), paths, pool.announce, RouteSource(kind: .allocation, name: allocation.name))
            }
        }

        let staticRoutes = try scan ? StaticRoutes.list(db) : (prefixes ?? []).compactMap { try StaticRoutes.get(db, prefix: $0) }
        for route in staticRoutes {
            add(route.prefix, staticPaths(route.nextHops, family: route.prefix.family, nodes: nodes, serves: serves),
                route.announce, RouteSource(kind: .static, name: route.name))
        }

        // A scan, or an allocation's other address, may have added prefixes that were not asked for.
        if let prefixes, routes.keys.contains(where: { !prefixes.contains($0) }) { routes = routes.filter { prefixes.contains($0.key) } }
        return routes
    }

    /// `prefixes` and, for each host prefix, the covering prefixes the pools aggregate to (a
    /// pool that does not hold the address yields an aggregate with no route, which changes
    /// nothing): what a change to an allocation's addresses may change.
    static func withAggregates(_ db: Database, _ prefixes: Set<IPPrefix>) throws -> Set<IPPrefix> {
        var lengths: [IPFamily: Set<Int>] = [:]
        for row in try db.rows("SELECT announce FROM pools WHERE announce LIKE '%aggregation_length%'") {
            let announce = try JSONColumn.decode(AnnounceAttributes.self, from: row.get(0), column: "announce")
            if let length = announce.aggregationLength { lengths[.ipv4, default: []].insert(length) }
            if let length = announce.aggregationLengthV6 { lengths[.ipv6, default: []].insert(length) }
        }
        guard !lengths.isEmpty else { return prefixes }
        var all = prefixes
        for prefix in prefixes where prefix.isHost {
            for length in lengths[prefix.family] ?? [] { all.insert(IPPrefix(truncating: prefix.network, length: length)) }
        }
        return all
    }

    /// The paths of a static route's next hops: "self", literal addresses, and the address of the
    /// prefix's family of each named node that exists and serves (unsorted, as listed).
    static func staticPaths(_ hops: [StaticNextHop], family: IPFamily, nodes: [Node], serves: (Node) -> Bool) -> [RoutePath] {
        var paths: [RoutePath] = []
        for hop in hops {
            switch hop {
            case .session: paths.append(RoutePath(nextHop: .session))
            case .address(let address): paths.append(RoutePath(nextHop: .address(address)))
            case .node(let name):
                if let node = nodes.first(where: { $0.name == name }), serves(node), let address = node.address(of: family) {
                    paths.append(RoutePath(nextHop: .address(address), node: name))
                }
            }
        }
        return paths
    }

    /// The routes after a static route batch, from the routes in hand rather than read back: for
    /// each written route its prefix's route (nil: not announced, no path), and nil for each
    /// vacated prefix no route took. The same rules as `derive`, which it defers to for every
    /// prefix an allocation shares (their paths merge), so a restart derives the same table.
    /// Call it after the batch's rows are written, in the same transaction.
    public static func deriveStaticBatch(_ db: Database, routes: [(name: String, spec: StaticRouteSpec)], vacated: [IPPrefix],
                                         down: Set<String> = []) throws -> [(prefix: IPPrefix, route: DesiredRoute?)] {
        let nodes = try Nodes.list(db)
        func serves(_ node: Node) -> Bool { node.healthCheck == nil || !down.contains(node.name) }
        // Host prefixes of allocations: these merge with a static route of the same prefix.
        var allocated = Set<IPPrefix>()
        // (Or the aggregates their pools announce them as.)
        var announces: [Int64: AnnounceAttributes] = [:]
        for row in try db.rows("SELECT a.id, p.announce FROM allocations a JOIN pools p ON p.id = a.pool_id WHERE p.announce LIKE '%aggregation_length%'") {
            announces[try row.get(0)] = try JSONColumn.decode(AnnounceAttributes.self, from: row.get(1), column: "announce")
        }
        for row in try db.rows("SELECT allocation_id, address FROM allocation_addresses") {
            guard let address = IPAddress(try row.get(1, as: String.self)) else { continue }
            allocated.insert(announces[try row.get(0)]?.announcedPrefix(of: address) ?? IPPrefix(host: address))
        }
        var shared = Set<IPPrefix>()
        var result: [(prefix: IPPrefix, route: DesiredRoute?)] = []
        result.reserveCapacity(routes.count + vacated.count)
        // A batch repeats the same next hops: resolve them again only when they differ from the
        // previous route's (the same array is then shared by every route, not copied).
        var lastHops: [StaticNextHop]?
        var lastFamily: IPFamily?
        var lastPaths: [RoutePath] = []
        for (name, spec) in routes {
            if !allocated.isEmpty && allocated.contains(spec.prefix) {
                shared.insert(spec.prefix)
                continue
            }
            if lastHops != spec.nextHops || lastFamily != spec.prefix.family {
                let paths = staticPaths(spec.nextHops, family: spec.prefix.family, nodes: nodes, serves: serves)
                lastPaths = paths.count > 1 ? Set(paths).sorted() : paths
                lastHops = spec.nextHops
                lastFamily = spec.prefix.family
            }
            result.append((spec.prefix, lastPaths.isEmpty ? nil : DesiredRoute(prefix: spec.prefix, paths: lastPaths, attributes: spec.announce,
                                                                               sources: [RouteSource(kind: .static, name: name)])))
        }
        if !vacated.isEmpty {
            let owned = try db.cachedStatement("SELECT 1 FROM routes WHERE prefix = ?")
            for prefix in vacated {
                if allocated.contains(prefix) {
                    shared.insert(prefix)
                } else if try owned.firstRow([prefix.description]) == nil {
                    // (A prefix that another route of the batch took is in `routes` already.)
                    result.append((prefix, nil))
                }
            }
        }
        if !shared.isEmpty {
            let merged = try derive(db, only: shared, down: down)
            for prefix in shared.sorted() { result.append((prefix, merged[prefix])) }
        }
        return result
    }
}
