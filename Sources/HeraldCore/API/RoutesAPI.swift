public import HTTPServer
internal import IP
internal import Store

/// `/v1/routes`: what Herald originates (`GET /v1/routes`, paged, and `GET /v1/routes:export`,
/// NDJSON: see `OriginatedRoutes`; derived, with each route's sources)
/// and the static routes it originates besides allocations (pod CIDRs and the like), one by one,
/// listed (`GET /v1/routes:static`) or up to a million in one `POST /v1/routes:batch`.
public struct RoutesAPI: Sendable {
    let services: APIServices
    let originated: OriginatedRoutes

    public init(services: APIServices) {
        self.services = services
        originated = OriginatedRoutes(committer: services.committer)
    }

    /// Request body limits above the server default, for the HTTP server's configuration: a
    /// million routes of about 100 bytes each.
    public static let bodyLimits: [String: Int] = ["/v1/routes:batch": 256 * 1024 * 1024]

    public func register(on router: Router) {
        router.get("/v1/routes", query: PageQuery.parameters.union(OriginatedRoutes.Filter.parameters)) { request, _ in
            try await originated.page(request)
        }
        router.get("/v1/routes:export", query: OriginatedRoutes.Filter.parameters) { request, _ in try originated.export(request) }
        router.post("/v1/routes:batch") { request, context in try await putBatch(request, context) }
        router.get("/v1/routes:static", query: PageQuery.parameters) { request, _ in try staticRoutes(request) }
        router.get("/v1/routes/{name}") { _, context in try .json(try staticRoute(named: try context.name())) }
        router.post("/v1/routes/{name}") { request, context in try await put(try context.name(), request, context, createOnly: true) }
        router.put("/v1/routes/{name}") { request, context in try await put(try context.name(), request, context, createOnly: false) }
        router.delete("/v1/routes/{name}") { _, context in try await delete(try context.name(), context) }
    }

    // MARK: - Bodies

    struct PathBody: Encodable {
        let nextHop: String
        let node: String?
    }

    struct SourceBody: Encodable {
        let kind: String
        let name: String
    }

    struct StaticRouteBody: Encodable {
        let name: String
        let prefix: String
        let nextHops: [String]
        let announce: AnnounceAttributes
        let labels: [String: String]
        let createdAt: String
        let updatedAt: String

        init(_ r: StaticRoute) {
            name = r.name
            prefix = r.prefix.description
            nextHops = r.nextHops.map(\.description)
            announce = r.announce
            labels = r.labels
            createdAt = APITime.format(r.createdAt)
            updatedAt = APITime.format(r.updatedAt)
        }
    }

    struct StaticRouteList: Encodable {
        let routes: [StaticRouteBody]
        let nextCursor: String?
    }

    struct StaticRouteInput: Decodable {
        let prefix: String
        let nextHops: [String]?
        let announce: AnnounceAttributes?
        let labels: [String: String]?
    }

    struct StaticRouteBatchBody: Encodable {
        let routes: Int
        let created: Int
        let updated: Int
        let unchanged: Int
    }

    // MARK: - Handlers

    func staticRoute(named name: String) throws -> StaticRouteBody {
        guard let route = try services.read({ db in try StaticRoutes.get(db, name: name) }) else { throw APIServices.notFound("route", name) }
        return StaticRouteBody(route)
    }

    /// `GET /v1/routes:static`: the static routes themselves (not what they derive), a page at a
    /// time by name, for `herald export` and `herald apply --prune`.
    func staticRoutes(_ request: HTTPRequest) throws -> HTTPResponse {
        let page = try PageQuery(request)
        let (routes, nextKey) = page.take(try services.read { db in try StaticRoutes.page(db, after: page.after, limit: page.limit + 1) }, key: \.name)
        return try page.response(StaticRouteList(routes: routes.map(StaticRouteBody.init), nextCursor: nextKey.map(PageQuery.encode)),
                                 nextKey: nextKey, request: request)
    }

    func put(_ name: String, _ request: HTTPRequest, _ context: RequestContext, createOnly: Bool) async throws -> HTTPResponse {
        let input = try request.decode(StaticRouteInput.self)
        var validator = Validator()
        let prefix = validator.check("prefix") { () throws(IPParseError) -> IPPrefix in try IPPrefix(parsing: input.prefix) }
        let hops = APIParse.nextHops(input.nextHops ?? ["self"], field: "next_hops", into: &validator)
        try APIErrors.translating { try validator.finish() }
        guard let prefix, let hops else { throw ValidationError(field: "prefix", "is required") }
        let spec = StaticRouteSpec(prefix: prefix, nextHops: hops, announce: input.announce ?? AnnounceAttributes(), labels: input.labels ?? [:])
        let result = try await services.commit(context) { change in
            if createOnly, try StaticRoutes.get(change.db, name: name) != nil { throw DomainError.conflict("route \"\(name)\" already exists") }
            let result = try StaticRoutes.put(change.db, name: name, spec: spec, now: change.now)
            try change.rederive(Set([result.route.prefix] + (result.previous.map { [$0.prefix] } ?? [])),
                                reason: "static route \(name) \(result.created ? "created" : "changed")")
            return result
        }
        return try .json(StaticRouteBody(result.route), status: result.created ? .created : .ok)
    }

    /// `POST /v1/routes:batch`: up to a million static routes created or replaced in one
    /// transaction — all of them or, with any invalid item, none.
    func putBatch(_ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let batch = try StaticRouteBatch.read(request)
        let count = batch.items.count
        let outcome = try await services.commit(context) { change in
            let outcome = try StaticRoutes.putBatch(change.db, batch.items, now: change.now, namesFollowPrefixes: batch.namesFollowPrefixes,
                                                    prefixTexts: batch.prefixTexts)
            // The routes written are in hand: they are derived from the items, not read back.
            let written = outcome.written.count == batch.items.count ? batch.items : outcome.written.map { batch.items[$0] }
            let routes = try DesiredRoutes.deriveStaticBatch(change.db, routes: written, vacated: outcome.vacated, down: change.down)
            try change.derive(GivenRoutes(routes: routes), reason: "static routes batch: \(outcome.created) created, \(outcome.updated) changed")
            return outcome
        }
        return try .json(StaticRouteBatchBody(routes: count, created: outcome.created, updated: outcome.updated, unchanged: outcome.unchanged))
    }

    func delete(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        try await services.commit(context) { change in
            let route = try StaticRoutes.delete(change.db, name: name)
            try change.rederive([route.prefix], reason: "static route \(name) deleted")
        }
        return .noContent
    }
}
