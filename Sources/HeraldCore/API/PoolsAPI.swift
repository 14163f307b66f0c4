public import HTTPServer
internal import IP
internal import IPAM
internal import JSON
internal import Store

/// `/v1/pools`: address pools (blocks, selectors, the attributes their routes carry). A pool
/// change re-derives every route.
public struct PoolsAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/pools", query: PageQuery.parameters) { request, _ in
            let page = try PageQuery(request)
            let (pools, nextKey) = page.take(try services.read { db in try Pools.page(db, after: page.after, limit: page.limit + 1) }, key: \.name)
            return try page.response(PoolList(pools: pools.map(PoolBody.init), nextCursor: nextKey.map(PageQuery.encode)), nextKey: nextKey, request: request)
        }
        router.post("/v1/pools") { request, context in try await put(nil, request, context, createOnly: true) }
        router.get("/v1/pools/{name}") { _, context in try .json(try pool(named: try context.name())) }
        router.put("/v1/pools/{name}") { request, context in try await put(try context.name(), request, context, createOnly: false) }
        router.delete("/v1/pools/{name}") { _, context in try await delete(try context.name(), context) }
    }

    // MARK: - Bodies

    struct PoolList: Encodable {
        let pools: [PoolBody]
        let nextCursor: String?
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
        let announce: AnnounceAttributes
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
            announce = pool.spec.announce
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
        /// null (or left out) is the default: see `PoolSpec.allowFirstLastIPs`.
        let allowFirstLastIps: JSONNullable<Bool>?
        let disabled: Bool?
        let announce: AnnounceAttributes?
        let description: String?
        let labels: [String: String]?
        let failOpen: Bool?
    }

    // MARK: - Handlers

    func pool(named name: String) throws -> PoolBody {
        guard let pool = try services.read({ db in try Pools.get(db, name: name) }) else { throw APIServices.notFound("pool", name) }
        return PoolBody(pool)
    }

    func put(_ pathName: String?, _ request: HTTPRequest, _ context: RequestContext, createOnly: Bool) async throws -> HTTPResponse {
        let input = try request.decode(PoolInput.self)
        var validator = Validator()
        guard let name = pathName ?? input.name else { throw ValidationError(field: "name", "a pool needs a name") }
        if let bodyName = input.name, bodyName != name { validator.add("name", "\"\(bodyName)\" differs from the name in the path \"\(name)\"") }
        let blocks = input.blocks.enumerated().compactMap { entry in
            validator.check("blocks[\(entry.offset)]") { () throws(IPParseError) -> PoolBlock in try PoolBlock(parsing: entry.element) }
        }
        try APIErrors.translating { try validator.finish() }
        let spec = PoolSpec(blocks: blocks, serviceSelector: input.serviceSelector ?? [:], nodeSelector: input.nodeSelector ?? [:],
                            allowFirstLastIPs: input.allowFirstLastIps?.wrapped, disabled: input.disabled ?? false,
                            announce: input.announce ?? AnnounceAttributes(), description: input.description ?? "",
                            labels: input.labels ?? [:], failOpen: input.failOpen ?? false)
        let result = try await services.commit(context) { change in
            if createOnly, try Pools.get(change.db, name: name) != nil { throw DomainError.conflict("pool \"\(name)\" already exists") }
            let result = try Pools.put(change.db, name: name, spec: spec, now: change.now, hints: change.hints)
            // A pool PUT as it already is writes nothing: no routes to derive again.
            guard result.changed else { return result }
            try change.rederiveAll(reason: "pool \(name) \(result.created ? "created" : "changed")")
            return result
        }
        return try .json(PoolBody(result.pool), status: result.created ? .created : .ok)
    }

    func delete(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        try await services.commit(context) { change in
            try Pools.delete(change.db, name: name, hints: change.hints)
            try change.rederiveAll(reason: "pool \(name) deleted")
        }
        return .noContent
    }
}
