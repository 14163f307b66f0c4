public import HTTPServer
internal import IP
internal import Store

/// `/v1/allocations`: LoadBalancer addresses handed out from pools, with the traffic policy
/// that picks their next hops. A change re-derives only the addresses it held or now holds.
public struct AllocationsAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        // Each `label` narrows the list further (all must match).
        router.get("/v1/allocations", query: PageQuery.parameters.union(["pool", "node", "label", "address"]), repeatable: ["label"]) { request, _ in
            try list(request)
        }
        router.get("/v1/allocations/{name}") { _, context in try .json(try allocation(named: try context.name())) }
        router.put("/v1/allocations/{name}") { request, context in try await put(try context.name(), request, context) }
        router.delete("/v1/allocations/{name}") { _, context in try await delete(try context.name(), context) }
    }

    // MARK: - Bodies

    struct AllocationList: Encodable {
        let allocations: [AllocationBody]
        let nextCursor: String?
    }

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
        /// Why an address of this allocation reaches no router (PUT answers only; absent when
        /// every address is announced to some peer).
        var warnings: [String]?

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

    // MARK: - Handlers

    func allocation(named name: String) throws -> AllocationBody {
        guard let allocation = try services.read({ db in try Allocations.get(db, name: name) }) else { throw APIServices.notFound("allocation", name) }
        return AllocationBody(allocation)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let labels = try request.query.values("label").map { text -> (key: String, value: String) in
            // Split at the first "=" scalar: a Character split misses an "=" that a following
            // combining scalar joins into one grapheme ("=\u{1F3FB}").
            let scalars = text.unicodeScalars
            guard let equals = scalars.firstIndex(of: "="), equals != scalars.startIndex else {
                throw ValidationError(field: "label", "expected key=value", status: .badRequest)
            }
            return (String(scalars[..<equals]), String(scalars[scalars.index(after: equals)...]))
        }
        let address = try APIParse.query(request, "address") { text in try IPAddress(parsing: text) }
        let page = try PageQuery(request)
        let filter = Allocations.Filter(pool: request.query["pool"], node: request.query["node"], labels: labels, address: address)
        let found = try services.read { db in try Allocations.page(db, after: page.after, limit: page.limit + 1, filter: filter) }
        let (allocations, nextKey) = page.take(found, key: \.name)
        return try page.response(AllocationList(allocations: allocations.map(AllocationBody.init), nextCursor: nextKey.map(PageQuery.encode)),
                                 nextKey: nextKey, request: request)
    }

    func put(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
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
        let change = try await services.commit(context) { change in
            let result = try Allocations.put(change.db, name: name, spec: spec, now: change.now, hints: change.hints)
            // Its addresses (next hops may have moved), and those it let go.
            try change.rederive(Set((result.allocation.addresses + result.released).map { IPPrefix(host: $0) }),
                                reason: result.created ? "allocation \(name) created" : "allocation \(name) changed")
            return result
        }
        var body = AllocationBody(change.allocation)
        let warnings = try reach(change.allocation)
        if !warnings.isEmpty { body.warnings = warnings }
        return try .json(body, status: change.created ? .created : .ok)
    }

    /// Why an address of `allocation` reaches no router, in words (issue #17: an IPv6 address was
    /// handed out that no peer could receive, and nothing said so): not announced at all (no node
    /// serving it has an address of its family, or they are down), or announced but carried by no
    /// enabled peer of its family.
    func reach(_ allocation: Allocation) throws -> [String] {
        let table = services.committer.routeTable.table
        let pool = try services.read { db in try Pools.get(db, name: allocation.pool) }
        let peers = try services.read { db in try Peers.list(db) }.filter(\.config.enabled)
        var warnings: [String] = []
        for address in allocation.addresses {
            let prefix = pool?.spec.announce.announcedPrefix(of: address) ?? IPPrefix(host: address)
            let family = address.family == .ipv4 ? "IPv4" : "IPv6"
            if table[prefix] == nil {
                warnings.append("\(address) is not announced: no node serving it has an \(family) address, or every one of them is down")
            } else if !peers.contains(where: { $0.config.families.contains(address.family == .ipv4 ? .ipv4Unicast : .ipv6Unicast) }) {
                warnings.append("\(address) is announced to no router: no enabled peer carries \(address.family == .ipv4 ? "ipv4-unicast" : "ipv6-unicast")")
            }
        }
        return warnings
    }

    func delete(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        try await services.commit(context) { change in
            let released = try Allocations.delete(change.db, name: name, hints: change.hints)
            try change.rederive(Set(released.map { IPPrefix(host: $0) }), reason: "allocation \(name) deleted")
        }
        return .noContent
    }
}
