public import HTTPServer
internal import IP
internal import Store

/// `/v1/nodes`: the machines routes point at (next hops), with labels and an optional health
/// check. A node change re-derives every route; the health checks follow the committed nodes.
public struct NodesAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/nodes", query: PageQuery.parameters) { request, _ in
            let page = try PageQuery(request)
            let (nodes, nextKey) = page.take(try services.read { db in try Nodes.page(db, after: page.after, limit: page.limit + 1) }, key: \.name)
            let bodies = nodes.map { NodeBody($0, health: services.health?.status(of: $0.name)) }
            return try page.response(NodeList(nodes: bodies, nextCursor: nextKey.map(PageQuery.encode)), nextKey: nextKey, request: request)
        }
        router.get("/v1/nodes/{name}") { _, context in try .json(try node(named: try context.name())) }
        router.put("/v1/nodes/{name}") { request, context in try await put(try context.name(), request, context) }
        router.delete("/v1/nodes/{name}") { _, context in try await delete(try context.name(), context) }
    }

    // MARK: - Bodies

    struct NodeList: Encodable {
        let nodes: [NodeBody]
        let nextCursor: String?
    }

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

    // MARK: - Handlers

    func node(named name: String) throws -> NodeBody {
        guard let node = try services.read({ db in try Nodes.get(db, name: name) }) else { throw APIServices.notFound("node", name) }
        return NodeBody(node, health: services.health?.status(of: name))
    }

    func put(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input = try request.decode(NodeInput.self)
        var validator = Validator()
        let addresses = input.addresses.enumerated().compactMap { APIParse.address($0.element, field: "addresses[\($0.offset)]", into: &validator) }
        let check = input.healthCheck?.check(into: &validator)
        try APIErrors.translating { try validator.finish() }
        let spec = NodeSpec(addresses: addresses, labels: input.labels ?? [:], healthCheck: check)
        // With health checks running, answer once they follow the change (the body shows them).
        let checksFollowed = services.health.map { _ in Reply<Void>() }
        let result = try await services.commit(context) { change in
            let result = try Nodes.put(change.db, name: name, spec: spec, now: change.now)
            // A node PUT as it already is writes nothing: no routes to derive again.
            guard result.changed else {
                checksFollowed?.fulfil(())
                return result
            }
            try change.nodesChanged(reply: checksFollowed)
            try change.rederiveAll(reason: "node \(name) \(result.created ? "created" : "changed")")
            return result
        }
        await checksFollowed?.value
        return try .json(NodeBody(result.node, health: services.health?.status(of: name)), status: result.created ? .created : .ok)
    }

    func delete(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        let checksFollowed = services.health.map { _ in Reply<Void>() }
        try await services.commit(context) { change in
            try Nodes.delete(change.db, name: name)
            try change.nodesChanged(reply: checksFollowed)
            try change.rederiveAll(reason: "node \(name) deleted")
        }
        await checksFollowed?.value
        return .noContent
    }
}
