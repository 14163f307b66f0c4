public import HTTPServer
internal import IP
internal import Dispatch
internal import IPAM
internal import JSON
internal import Store
internal import Synchronization

/// The management API for nodes, pools, allocations, static routes, originated routes and
/// history. Every mutation goes through the `Reconciler`, so it commits with its history rows
/// before the response, and the route change reaches the speaker in commit order.
public struct ResourceAPI: Sendable {
    public let reconciler: Reconciler
    /// Runs the nodes' health checks; told after every node change. Nil: no checks run.
    public let health: NodeHealthMonitor?
    var store: Store { reconciler.store }

    public init(reconciler: Reconciler, health: NodeHealthMonitor? = nil) {
        self.reconciler = reconciler
        self.health = health
    }

    /// Most routes in one `POST /v1/routes:batch`.
    public static let maxBatchRoutes = 1_000_000
    /// Request body limits above the server default, for the HTTP server's configuration: a
    /// million routes of about 100 bytes each.
    public static let bodyLimits: [String: Int] = ["/v1/routes:batch": 256 * 1024 * 1024]

    public func register(on router: Router) {
        router.get("/v1/nodes") { _, _ in
            try .json(NodeList(nodes: try read { db in try Nodes.list(db) }.map { NodeBody($0, health: health?.status(of: $0.name)) }))
        }
        router.get("/v1/nodes/{name}") { _, context in try .json(try node(named: try context.name())) }
        router.put("/v1/nodes/{name}") { request, context in try await putNode(try context.name(), request, context) }
        router.delete("/v1/nodes/{name}") { _, context in try await deleteNode(try context.name(), context) }

        router.get("/v1/pools") { _, _ in try .json(PoolList(pools: try read { db in try Pools.list(db).map(PoolBody.init) })) }
        router.post("/v1/pools") { request, context in try await putPool(nil, request, context, createOnly: true) }
        router.get("/v1/pools/{name}") { _, context in try .json(try pool(named: try context.name())) }
        router.put("/v1/pools/{name}") { request, context in try await putPool(try context.name(), request, context, createOnly: false) }
        router.delete("/v1/pools/{name}") { _, context in try await deletePool(try context.name(), context) }

        router.get("/v1/allocations") { request, _ in try listAllocations(request) }
        router.get("/v1/allocations/{name}") { _, context in try .json(try allocation(named: try context.name())) }
        router.put("/v1/allocations/{name}") { request, context in try await putAllocation(try context.name(), request, context) }
        router.delete("/v1/allocations/{name}") { _, context in try await deleteAllocation(try context.name(), context) }

        router.get("/v1/routes") { _, _ in try .json(originatedRoutes()) }
        router.post("/v1/routes:batch") { request, context in try await putStaticRouteBatch(request, context) }
        router.get("/v1/routes/{name}") { _, context in try .json(try staticRoute(named: try context.name())) }
        router.post("/v1/routes/{name}") { request, context in try await putStaticRoute(try context.name(), request, context, createOnly: true) }
        router.put("/v1/routes/{name}") { request, context in try await putStaticRoute(try context.name(), request, context, createOnly: false) }
        router.delete("/v1/routes/{name}") { _, context in try await deleteStaticRoute(try context.name(), context) }

        router.get("/v1/history") { request, _ in try history(request) }
    }

    // MARK: - Plumbing

    func read<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try APIErrors.translating { try store.read(body) }
    }

    func mutate<T: Sendable>(_ context: RequestContext, reason: @escaping @Sendable (T) -> String,
                             affecting affected: (@Sendable (T) -> Set<IPPrefix>)? = nil,
                             _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await reconciler.mutate(requestID: context.requestID, reason: reason, affecting: affected, body).result
        } catch {
            throw APIErrors.http(error)
        }
    }

    /// `mutate` for a change that gives its routes itself (see `Reconciler.mutate(deriving:)`).
    func mutate<T: Sendable>(_ context: RequestContext, reason: @escaping @Sendable (T) -> String,
                             deriving derive: @escaping @Sendable (T, Database, Set<String>) throws -> [(prefix: IPPrefix, route: DesiredRoute?)],
                             _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await reconciler.mutate(requestID: context.requestID, reason: reason, deriving: derive, body).result
        } catch {
            throw APIErrors.http(error)
        }
    }

    static func notFound(_ kind: String, _ name: String) -> HTTPError {
        HTTPError(.notFound, detail: "\(kind) \"\(name)\" does not exist")
    }

    // MARK: - Nodes

    struct NodeList: Encodable { let nodes: [NodeBody] }

    struct HealthCheckBody: Codable {
        let kind: String
        let port: Int
        let path: String?
        let address: String?
        let interval: Int?
        let timeout: Int?
        let rise: Int?
        let fall: Int?

        init(_ c: HealthCheck) {
            kind = c.kind.rawValue
            port = c.port
            path = c.kind == .http ? c.requestPath : nil
            address = c.address?.description
            interval = c.interval
            timeout = c.timeout
            rise = c.rise
            fall = c.fall
        }

        /// The check this input asks for, with defaults filled in; errors under `health_check.*`.
        func check(into validator: inout Validator) -> HealthCheck? {
            guard let kind = HealthCheck.Kind(rawValue: kind) else {
                validator.add("health_check.kind", "expected tcp or http")
                return nil
            }
            let parsed = address.flatMap { APIParse.address($0, field: "health_check.address", into: &validator) }
            if address != nil && parsed == nil { return nil }
            return HealthCheck(kind: kind, port: port, path: path, address: parsed, interval: interval ?? HealthCheck.defaultInterval,
                               timeout: timeout ?? HealthCheck.defaultTimeout, rise: rise ?? HealthCheck.defaultRise, fall: fall ?? HealthCheck.defaultFall)
        }
    }

    struct HealthResultBody: Encodable {
        let ok: Bool
        let detail: String
        let at: String
        let durationMs: Double
    }

    struct HealthBody: Encodable {
        let state: String
        let target: String
        let lastResult: HealthResultBody?
        let lastChange: String?
        let transitions: Int
        let consecutiveSuccesses: Int
        let consecutiveFailures: Int
        let checks: Int
        let failedChecks: Int

        init(_ s: NodeHealthStatus) {
            state = s.health.state.rawValue
            target = s.target
            lastResult = s.health.lastResult.map {
                HealthResultBody(ok: $0.ok, detail: $0.detail, at: APITime.format($0.at), durationMs: ($0.milliseconds * 1000).rounded() / 1000)
            }
            lastChange = s.health.lastChange.map(APITime.format)
            transitions = s.health.transitions
            consecutiveSuccesses = s.health.successes
            consecutiveFailures = s.health.failures
            checks = s.health.checks
            failedChecks = s.health.failedChecks
        }
    }

    struct NodeBody: Encodable {
        let name: String
        let addresses: [String]
        let labels: [String: String]
        let healthCheck: HealthCheckBody?
        /// Present when the node has a health check and Herald runs checks.
        let health: HealthBody?
        let createdAt: String
        let updatedAt: String

        init(_ node: Node, health status: NodeHealthStatus?) {
            name = node.name
            addresses = node.addresses.map(\.description)
            labels = node.labels
            healthCheck = node.healthCheck.map(HealthCheckBody.init)
            health = node.healthCheck == nil ? nil : status.map(HealthBody.init)
            createdAt = APITime.format(node.createdAt)
            updatedAt = APITime.format(node.updatedAt)
        }
    }

    struct NodeInput: Decodable {
        let addresses: [String]
        let labels: [String: String]?
        let healthCheck: HealthCheckBody?
    }

    func node(named name: String) throws -> NodeBody {
        guard let node = try read({ db in try Nodes.get(db, name: name) }) else { throw Self.notFound("node", name) }
        return NodeBody(node, health: health?.status(of: name))
    }

    func putNode(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input = try request.decode(NodeInput.self)
        var validator = Validator()
        let addresses = input.addresses.enumerated().compactMap { APIParse.address($0.element, field: "addresses[\($0.offset)]", into: &validator) }
        let check = input.healthCheck?.check(into: &validator)
        try APIErrors.translating { try validator.finish() }
        let spec = NodeSpec(addresses: addresses, labels: input.labels ?? [:], healthCheck: check)
        let result = try await mutate(context, reason: { (r: (node: Node, created: Bool)) in "node \(name) \(r.created ? "created" : "changed")" }) { db in
            try Nodes.put(db, name: name, spec: spec, now: Clock.nowMilliseconds())
        }
        await reloadHealth()
        return try .json(NodeBody(result.node, health: health?.status(of: name)), status: result.created ? .created : .ok)
    }

    func deleteNode(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        try await mutate(context, reason: { (_: Void) in "node \(name) deleted" }) { db in try Nodes.delete(db, name: name) }
        await reloadHealth()
        return .noContent
    }

    /// The change is committed; the checks follow it. A failure here (the loop stopping at
    /// shutdown) does not undo the change.
    private func reloadHealth() async {
        try? await health?.reload()
    }

    // MARK: - Pools

    struct PoolList: Encodable { let pools: [PoolBody] }

    struct AnnounceBody: Codable {
        var communities: [String]?
        var largeCommunities: [String]?
        var localPref: UInt32?
        var med: UInt32?
        var asPathPrepend: Int?
        var peerSelector: [String: String]?
        var aggregationLength: Int?

        init(_ a: AnnounceAttributes) {
            communities = a.communities
            largeCommunities = a.largeCommunities
            localPref = a.localPref
            med = a.med
            asPathPrepend = a.asPathPrepend
            peerSelector = a.peerSelector
            aggregationLength = a.aggregationLength
        }

        var attributes: AnnounceAttributes {
            AnnounceAttributes(communities: communities, largeCommunities: largeCommunities, localPref: localPref, med: med,
                               asPathPrepend: asPathPrepend, peerSelector: peerSelector, aggregationLength: aggregationLength)
        }
    }

    struct UsageBody: Encodable {
        let size: Double
        let allocated: Int
        let free: Double

        init(_ usage: PoolUsage) {
            size = Double(usage.size)
            allocated = usage.allocated
            free = Double(usage.free)
        }
    }

    struct PoolBody: Encodable {
        let name: String
        let blocks: [String]
        let serviceSelector: [String: String]
        let nodeSelector: [String: String]
        let allowFirstLastIps: Bool?
        let disabled: Bool
        let announce: AnnounceBody
        let description: String
        let labels: [String: String]
        let failOpen: Bool
        let usage: [String: UsageBody]
        let size: Double
        let allocated: Int
        let free: Double
        let createdAt: String
        let updatedAt: String

        init(_ pool: Pool) {
            name = pool.name
            blocks = pool.spec.blocks.map(\.description)
            serviceSelector = pool.spec.serviceSelector
            nodeSelector = pool.spec.nodeSelector
            allowFirstLastIps = pool.spec.allowFirstLastIPs
            disabled = pool.spec.disabled
            announce = AnnounceBody(pool.spec.announce)
            description = pool.spec.description
            labels = pool.spec.labels
            failOpen = pool.spec.failOpen
            usage = Dictionary(uniqueKeysWithValues: pool.usage.map { ($0.key.rawValue, UsageBody($0.value)) })
            size = pool.usage.values.reduce(0) { $0 + Double($1.size) }
            allocated = pool.usage.values.reduce(0) { $0 + $1.allocated }
            free = pool.usage.values.reduce(0) { $0 + Double($1.free) }
            createdAt = APITime.format(pool.createdAt)
            updatedAt = APITime.format(pool.updatedAt)
        }
    }

    struct PoolInput: Decodable {
        let name: String?
        let blocks: [String]
        let serviceSelector: [String: String]?
        let nodeSelector: [String: String]?
        let allowFirstLastIps: Bool?
        let disabled: Bool?
        let announce: AnnounceBody?
        let description: String?
        let labels: [String: String]?
        let failOpen: Bool?
    }

    func pool(named name: String) throws -> PoolBody {
        guard let pool = try read({ db in try Pools.get(db, name: name) }) else { throw Self.notFound("pool", name) }
        return PoolBody(pool)
    }

    func putPool(_ pathName: String?, _ request: HTTPRequest, _ context: RequestContext, createOnly: Bool) async throws -> HTTPResponse {
        let input = try request.decode(PoolInput.self)
        var validator = Validator()
        guard let name = pathName ?? input.name else { throw ValidationError(field: "name", "a pool needs a name") }
        if let bodyName = input.name, bodyName != name { validator.add("name", "\"\(bodyName)\" differs from the name in the path \"\(name)\"") }
        let blocks = input.blocks.enumerated().compactMap { entry in
            validator.check("blocks[\(entry.offset)]") { () throws(IPParseError) -> PoolBlock in try PoolBlock(parsing: entry.element) }
        }
        try APIErrors.translating { try validator.finish() }
        let spec = PoolSpec(blocks: blocks, serviceSelector: input.serviceSelector ?? [:], nodeSelector: input.nodeSelector ?? [:],
                            allowFirstLastIPs: input.allowFirstLastIps, disabled: input.disabled ?? false,
                            announce: input.announce?.attributes ?? AnnounceAttributes(), description: input.description ?? "",
                            labels: input.labels ?? [:], failOpen: input.failOpen ?? false)
        let result = try await mutate(context, reason: { (r: (pool: Pool, created: Bool)) in "pool \(name) \(r.created ? "created" : "changed")" }) { db in
            if createOnly, try Pools.get(db, name: name) != nil { throw DomainError.conflict("pool \"\(name)\" already exists") }
            return try Pools.put(db, name: name, spec: spec, now: Clock.nowMilliseconds())
        }
        return try .json(PoolBody(result.pool), status: result.created ? .created : .ok)
    }

    func deletePool(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        try await mutate(context, reason: { (_: Void) in "pool \(name) deleted" }) { db in try Pools.delete(db, name: name) }
        return .noContent
    }

    // MARK: - Allocations

    struct AllocationList: Encodable { let allocations: [AllocationBody] }

    struct AllocationBody: Encodable {
        let name: String
        let pool: String
        let family: String
        let addresses: [String]
        let sharingKey: String?
        let trafficPolicy: String
        let nodes: [String]
        let labels: [String: String]
        let createdAt: String
        let updatedAt: String

        init(_ a: Allocation) {
            name = a.name
            pool = a.pool
            family = a.family.rawValue
            addresses = a.addresses.map(\.description)
            sharingKey = a.sharingKey
            trafficPolicy = a.trafficPolicy.rawValue
            nodes = a.nodes
            labels = a.labels
            createdAt = APITime.format(a.createdAt)
            updatedAt = APITime.format(a.updatedAt)
        }
    }

    struct AllocationInput: Decodable {
        let pool: String?
        let labels: [String: String]?
        let address: String?
        let addresses: [String]?
        let family: String?
        let sharingKey: String?
        let trafficPolicy: String?
        let nodes: [String]?
    }

    func allocation(named name: String) throws -> AllocationBody {
        guard let allocation = try read({ db in try Allocations.get(db, name: name) }) else { throw Self.notFound("allocation", name) }
        return AllocationBody(allocation)
    }

    func listAllocations(_ request: HTTPRequest) throws -> HTTPResponse {
        let label = try APIParse.query(request, "label") { text -> (key: String, value: String) in
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError(field: "label", "expected key=value", status: .badRequest) }
            return (String(parts[0]), String(parts[1]))
        }
        let address = try APIParse.query(request, "address") { text in try IPAddress(parsing: text) }
        let pool = request.query["pool"]
        let list = try read { db in try Allocations.list(db, pool: pool, label: label, address: address).map(AllocationBody.init) }
        return try .json(AllocationList(allocations: list))
    }

    func putAllocation(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input = try request.decode(AllocationInput.self)
        var validator = Validator()
        if input.address != nil && input.addresses != nil { validator.add("address", "give address or addresses, not both") }
        let texts = input.addresses ?? input.address.map { [$0] } ?? []
        let field = input.addresses != nil ? "addresses" : "address"
        let addresses = texts.enumerated().compactMap { entry in
            APIParse.address(entry.element, field: input.addresses != nil ? "\(field)[\(entry.offset)]" : field, into: &validator)
        }
        var family: AllocationFamily?
        if let text = input.family {
            family = AllocationFamily(rawValue: text)
            if family == nil { validator.add("family", "expected ipv4, ipv6 or dual") }
        }
        var policy = TrafficPolicy.cluster
        if let text = input.trafficPolicy {
            if let value = TrafficPolicy(rawValue: text) { policy = value } else { validator.add("traffic_policy", "expected cluster or local") }
        }
        try APIErrors.translating { try validator.finish() }
        let spec = AllocationSpec(pool: input.pool, labels: input.labels ?? [:], addresses: addresses, family: family,
                                  sharingKey: input.sharingKey, trafficPolicy: policy, nodes: input.nodes ?? [])
        let change = try await mutate(context, reason: { (c: AllocationChange) in
            c.created ? "allocation \(name) created" : "allocation \(name) changed"
        }, affecting: { (c: AllocationChange) in
            // Its addresses (next hops may have moved), and those it let go.
            Set((c.allocation.addresses + c.released).map { IPPrefix(host: $0) })
        }) { db in
            try Allocations.put(db, name: name, spec: spec, now: Clock.nowMilliseconds())
        }
        return try .json(AllocationBody(change.allocation), status: change.created ? .created : .ok)
    }

    func deleteAllocation(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        _ = try await mutate(context, reason: { (_: [IPAddress]) in "allocation \(name) deleted" },
                             affecting: { (released: [IPAddress]) in Set(released.map { IPPrefix(host: $0) }) }) { db in
            try Allocations.delete(db, name: name)
        }
        return .noContent
    }

    // MARK: - Routes

    struct PathBody: Encodable {
        let nextHop: String
        let node: String?
    }

    struct SourceBody: Encodable {
        let kind: String
        let name: String
    }

    struct OriginatedRouteBody: Encodable {
        let prefix: String
        let paths: [PathBody]
        let announce: AnnounceBody
        let sources: [SourceBody]
    }

    struct OriginatedRouteList: Encodable { let routes: [OriginatedRouteBody] }

    func originatedRoutes() throws -> OriginatedRouteList {
        OriginatedRouteList(routes: reconciler.desiredRoutes.values.sorted { $0.prefix < $1.prefix }.map { route in
            OriginatedRouteBody(prefix: route.prefix.description,
                                paths: route.paths.map { PathBody(nextHop: $0.nextHop.description, node: $0.node) },
                                announce: AnnounceBody(route.attributes),
                                sources: route.sources.map { SourceBody(kind: $0.kind.rawValue, name: $0.name) })
        })
    }

    struct StaticRouteBody: Encodable {
        let name: String
        let prefix: String
        let nextHops: [String]
        let announce: AnnounceBody
        let labels: [String: String]
        let createdAt: String
        let updatedAt: String

        init(_ r: StaticRoute) {
            name = r.name
            prefix = r.prefix.description
            nextHops = r.nextHops.map(\.description)
            announce = AnnounceBody(r.announce)
            labels = r.labels
            createdAt = APITime.format(r.createdAt)
            updatedAt = APITime.format(r.updatedAt)
        }
    }

    struct StaticRouteInput: Decodable {
        let prefix: String
        let nextHops: [String]?
        let announce: AnnounceBody?
        let labels: [String: String]?
    }

    func staticRoute(named name: String) throws -> StaticRouteBody {
        guard let route = try read({ db in try StaticRoutes.get(db, name: name) }) else { throw Self.notFound("route", name) }
        return StaticRouteBody(route)
    }

    func putStaticRoute(_ name: String, _ request: HTTPRequest, _ context: RequestContext, createOnly: Bool) async throws -> HTTPResponse {
        let input = try request.decode(StaticRouteInput.self)
        var validator = Validator()
        let prefix = validator.check("prefix") { () throws(IPParseError) -> IPPrefix in try IPPrefix(parsing: input.prefix) }
        let hops = APIParse.nextHops(input.nextHops ?? ["self"], field: "next_hops", into: &validator)
        try APIErrors.translating { try validator.finish() }
        guard let prefix, let hops else { throw ValidationError(field: "prefix", "is required") }
        let spec = StaticRouteSpec(prefix: prefix, nextHops: hops, announce: input.announce?.attributes ?? AnnounceAttributes(), labels: input.labels ?? [:])
        let result = try await mutate(context, reason: { (r: (route: StaticRoute, created: Bool, previous: StaticRoute?)) in
            "static route \(name) \(r.created ? "created" : "changed")"
        }, affecting: { (r: (route: StaticRoute, created: Bool, previous: StaticRoute?)) in
            Set([r.route.prefix] + (r.previous.map { [$0.prefix] } ?? []))
        }) { db in
            if createOnly, try StaticRoutes.get(db, name: name) != nil { throw DomainError.conflict("route \"\(name)\" already exists") }
            return try StaticRoutes.put(db, name: name, spec: spec, now: Clock.nowMilliseconds())
        }
        return try .json(StaticRouteBody(result.route), status: result.created ? .created : .ok)
    }

    /// One item of `POST /v1/routes:batch`, read by hand from the body's bytes (a million per
    /// request): the members of `StaticRouteInput` plus `name`, with the strict decoder's rules.
    struct StaticRouteBatchItem {
        var name: String?
        var prefix: String
        var nextHops: [String]?
        var announce: AnnounceBody?
        var labels: [String: String]?

        init(scanning scanner: inout JSONItemScanner) throws {
            var name: String?, prefix: String?, nextHops: [String]?, announce: AnnounceBody?, labels: [String: String]?
            try scanner.members { member, value in
                switch member {
                case "prefix": prefix = try value.string(member)
                case "name": name = try value.string(member, nullable: true)
                case "next_hops": nextHops = try value.stringArray(member)
                case "announce": announce = try value.decode(AnnounceBody.self, member)
                case "labels": labels = try value.decode([String: String].self, member)
                default: throw value.unknownField(member)
                }
            }
            guard let prefix else { throw scanner.missingField("prefix") }
            self.name = name
            self.prefix = prefix
            self.nextHops = nextHops
            self.announce = announce
            self.labels = labels
        }
    }

    struct StaticRouteBatchBody: Encodable {
        let routes: Int
        let created: Int
        let updated: Int
        let unchanged: Int
    }

    /// Turns scanned batch items into routes to write, collecting every problem (at most 100).
    /// One per part of the body when a large body is read on several cores.
    struct BatchCollector: Sendable {
        var items: [(name: String, spec: StaticRouteSpec)] = []
        /// Each item's prefix written out canonically.
        var prefixTexts: [String] = []
        var validator = Validator()
        /// Batches repeat the same next-hop lists: parse (and store) each once.
        var hopLists: [[String]: [StaticNextHop]] = [:]
        /// Whether every item is named after its prefix (no "name" given): then names cannot
        /// repeat unless prefixes do.
        var namesFollowPrefixes = true
        /// An item without next hops shares this one "self" list.
        let selfHops: [StaticNextHop] = [.session]

        init(room: Int) {
            items.reserveCapacity(room)
            prefixTexts.reserveCapacity(room)
        }

        mutating func add(_ index: Int, _ scanner: inout JSONItemScanner) throws {
            let item = try StaticRouteBatchItem(scanning: &scanner)
            guard validator.errors.count < 100 else { return }
            let prefix: IPPrefix, prefixText: String
            if let canonical = StaticRoutes.canonicalIPv4Prefix(item.prefix) {
                // The text is the prefix's canonical form: kept, not written out again.
                (prefix, prefixText) = (canonical, item.prefix)
            } else {
                do {
                    prefix = try IPPrefix(parsing: item.prefix)
                } catch {
                    validator.add("[\(index)].prefix", "\(error)")
                    return
                }
                prefixText = prefix.description
            }
            let hops: [StaticNextHop]
            if let texts = item.nextHops {
                if let known = hopLists[texts] {
                    hops = known
                } else {
                    guard let parsed = APIParse.nextHops(texts, field: "[\(index)].next_hops", into: &validator) else { return }
                    if hopLists.count < 1024 { hopLists[texts] = parsed }
                    hops = parsed
                }
            } else {
                hops = selfHops
            }
            if item.name != nil { namesFollowPrefixes = false }
            prefixTexts.append(prefixText)
            items.append((item.name ?? StaticRoutes.defaultName(prefixText: prefixText),
                          StaticRouteSpec(prefix: prefix, nextHops: hops, announce: item.announce?.attributes ?? AnnounceAttributes(),
                                          labels: item.labels ?? [:])))
        }

        /// Appends a later part's items and problems (up to 100 problems in all).
        mutating func append(_ later: BatchCollector) {
            items += later.items
            prefixTexts += later.prefixTexts
            for error in later.validator.errors where validator.errors.count < 100 { validator.add(error.field, error.message) }
            namesFollowPrefixes = namesFollowPrefixes && later.namesFollowPrefixes
        }
    }

    /// `POST /v1/routes:batch`: up to a million static routes (a JSON array or NDJSON) created or
    /// replaced in one transaction — all of them or, with any invalid item, none.
    func putStaticRouteBatch(_ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        // Room for as many items as the body can hold (at least 20 bytes each): a million-item
        // array is not copied through twenty doublings. Untouched capacity costs no memory.
        let room = min(Self.maxBatchRoutes, request.body.count / 20 + 1)
        var collected: BatchCollector
        if let parts = try request.bulkParts(2, maxItems: Self.maxBatchRoutes) {
            // A large NDJSON body is read on both cores, half each; the halves are then joined
            // in order, so items, errors and their names are those of one scan.
            let scans = Mutex<[Int: Result<BatchCollector, any Error>]>([:])
            DispatchQueue.concurrentPerform(iterations: parts.count) { k in
                // The first half gets room for all: the others are appended to it.
                var collector = BatchCollector(room: k == 0 ? room : room / parts.count + 1)
                let scan = Result { () throws -> BatchCollector in
                    try request.scanEach(maxItems: Self.maxBatchRoutes, part: parts[k]) { index, scanner in try collector.add(index, &scanner) }
                    return collector
                }
                scans.withLock { $0[k] = scan }
            }
            let results = scans.withLock { $0 }
            // The first failure in body order is the one a single scan would have met.
            collected = try results[0]!.get()
            for k in parts.indices.dropFirst() { collected.append(try results[k]!.get()) }
        } else {
            var collector = BatchCollector(room: room)
            try request.scanEach(maxItems: Self.maxBatchRoutes) { index, scanner in try collector.add(index, &scanner) }
            collected = collector
        }
        var items = collected.items, prefixTexts = collected.prefixTexts
        let validator = collected.validator, namesFollowPrefixes = collected.namesFollowPrefixes
        collected = BatchCollector(room: 0)
        try APIErrors.translating { try validator.finish() }
        guard !items.isEmpty else { throw ValidationError(field: "$", "give at least one route") }
        let batch = items, defaultNames = namesFollowPrefixes, texts = prefixTexts
        items = []
        prefixTexts = []
        // The routes written are in hand: they are derived from the items, not read back.
        let outcome = try await mutate(context, reason: { (o: StaticRoutes.BatchOutcome) in
            "static routes batch: \(o.created) created, \(o.updated) changed"
        }, deriving: { (o: StaticRoutes.BatchOutcome, db: Database, down: Set<String>) in
            let written = o.written.count == batch.count ? batch : o.written.map { batch[$0] }
            return try DesiredRoutes.deriveStaticBatch(db, routes: written, vacated: o.vacated, down: down)
        }) { db in
            try StaticRoutes.putBatch(db, batch, now: Clock.nowMilliseconds(), namesFollowPrefixes: defaultNames, prefixTexts: texts)
        }
        return try .json(StaticRouteBatchBody(routes: batch.count, created: outcome.created, updated: outcome.updated, unchanged: outcome.unchanged))
    }

    func deleteStaticRoute(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        _ = try await mutate(context, reason: { (_: StaticRoute) in "static route \(name) deleted" },
                             affecting: { (route: StaticRoute) in [route.prefix] }) { db in
            try StaticRoutes.delete(db, name: name)
        }
        return .noContent
    }

    // MARK: - History

    struct EventBody: Encodable {
        let id: Int64
        let at: String
        let action: String
        let prefix: String
        let source: SourceBody
        let paths: [HistoryPath]
        let reason: String
        let requestId: String?
    }

    struct HistoryPath: Codable {
        let nextHop: String
        let node: String?
    }

    struct HistoryPage: Encodable {
        let events: [EventBody]
        let nextCursor: String?
    }

    func history(_ request: HTTPRequest) throws -> HTTPResponse {
        let within = try APIParse.query(request, "prefix") { text -> IPPrefix in
            if let prefix = IPPrefix(text) { return prefix }
            if let address = IPAddress(text) { return IPPrefix(host: address) }
            throw ValidationError(field: "prefix", "\"\(text)\" is not a prefix or an address", status: .badRequest)
        }
        let since = try APIParse.query(request, "since") { try APITime.parse($0, field: "since") }
        let until = try APIParse.query(request, "until") { try APITime.parse($0, field: "until") }
        let cursor = try APIParse.cursor(request)
        let limit = try APIParse.limit(request)
        let peerName = request.query["peer"]
        let events = try read { db -> [RouteEvent] in
            var peer: PeerConfig?
            if let peerName {
                guard let found = try Peers.get(db, name: peerName) else { throw ValidationError(field: "peer", "peer \"\(peerName)\" does not exist", status: .badRequest) }
                peer = found.config
            }
            return try RouteHistory.list(db, within: within, since: since, until: until, for: peer, after: cursor, limit: limit)
        }
        let bodies = events.map { event in
            EventBody(id: event.id, at: APITime.format(event.at), action: event.action.rawValue, prefix: event.prefix.description,
                      source: SourceBody(kind: event.source.kind.rawValue, name: event.source.name),
                      paths: RouteHistory.storedPaths(event).map { HistoryPath(nextHop: $0.nextHop, node: $0.node) },
                      reason: event.reason, requestId: event.requestID)
        }
        return try .json(HistoryPage(events: bodies, nextCursor: APIParse.nextCursor(ids: events.map(\.id), limit: limit)))
    }
}
