import Foundation
public import HTTPServer
internal import IP
public import Store
internal import JSON

/// What the API handlers share: the committer, through which every change goes, the store for
/// reads, and the running parts they show live state of (nil when not running, as in tests of
/// the API alone).
public struct APIServices: Sendable {
    public let committer: Committer
    /// The running BGP speaker.
    public let bridge: SpeakerBridge?
    /// The nodes' health checks, where they run (in cluster mode: on the leader only).
    public let healthChecks: HealthChecks
    /// Cluster mode: this replica's view of the cluster.
    public let cluster: ClusterSupervisor?

    public init(committer: Committer, bridge: SpeakerBridge? = nil, health: NodeHealthMonitor? = nil,
                healthChecks: HealthChecks? = nil, cluster: ClusterSupervisor? = nil) {
        self.committer = committer
        self.bridge = bridge
        self.healthChecks = healthChecks ?? HealthChecks(health)
        self.cluster = cluster
    }

    /// The health monitor running now, if any.
    var health: NodeHealthMonitor? { healthChecks.current }

    public var store: Store { committer.store }

    /// Reads in one consistent snapshot; database failures become the API's errors.
    func read<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try APIErrors.translating { try store.read(body) }
    }

    /// Commits a change (see `Committer.commit`); a refusal becomes the API's 4xx, a database
    /// that cannot take writes a 503.
    func commit<T: Sendable>(_ context: RequestContext, _ body: @escaping @Sendable (CommitContext) throws -> T) async throws -> T {
        do {
            return try await committer.commit(requestID: context.requestID, body)
        } catch {
            throw APIErrors.http(error)
        }
    }

    /// Every API route on one router.
    public func register(on router: Router, startedAt: Int64, metrics: Metrics? = nil) {
        StatusAPI(store: store, startedAt: startedAt, cluster: cluster, localRouterID: committer.localRouterID).register(on: router)
        NodesAPI(services: self).register(on: router)
        PoolsAPI(services: self).register(on: router)
        AllocationsAPI(services: self).register(on: router)
        RoutesAPI(services: self).register(on: router)
        HistoryAPI(services: self).register(on: router)
        PeersAPI(services: self).register(on: router)
        SpeakerAPI(services: self).register(on: router)
        if let events = committer.events { EventsAPI(publisher: events).register(on: router) }
        MetricsAPI(metrics: metrics ?? Metrics(), services: self).register(on: router)
        ClusterAPI(services: self).register(on: router)
        BackupAPI(services: self).register(on: router)
        StatusPage().register(on: router)
    }

    static func notFound(_ kind: String, _ name: String) -> HTTPError {
        HTTPError(.notFound, detail: "\(kind) \"\(name)\" does not exist")
    }
}

/// Turns domain and database failures into the HTTP errors the API promises: every 4xx names
/// the field or the object involved; a database that cannot take writes is a 503 with a reason.
enum APIErrors {
    static func http(_ error: any Error) -> any Error {
        switch error {
        case let error as DomainError:
            switch error {
            case .invalid(let fields):
                return ValidationError(fields.map { FieldError(field: $0.field, message: $0.message) })
            case .notFound:
                return HTTPError(.notFound, detail: error.description)
            case .conflict, .exhausted:
                return HTTPError(.conflict, detail: error.description)
            case .unprocessable:
                return HTTPError(.unprocessableContent, detail: error.description)
            }
        case let error as DatabaseError where error.isClusterUnavailability:
            return HTTPError(.serviceUnavailable, title: "Cluster unavailable", detail: error.message)
        case let error as DatabaseError where error.code.meansUnavailableForWrites:
            return HTTPError(.serviceUnavailable, title: "Database unavailable",
                             detail: "the change was not saved: the database cannot take writes (\(error.code.name)); reads still work")
        case let error as DatabaseError where error.isConstraintViolation:
            return HTTPError(.conflict, detail: "the database refused the change: \(error.message)")
        default:
            return error
        }
    }

    /// Runs `body`, translating what it throws.
    static func translating<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw http(error) }
    }
}

/// Timestamps in API bodies: RFC 3339 UTC with milliseconds (`JSONTime`).
enum APITime {
    static func format(_ milliseconds: Int64) -> String { JSONTime.format(milliseconds: milliseconds) }

    static func parse(_ text: String, field: String) throws -> Int64 {
        guard let milliseconds = JSONTime.parse(text) else {
            throw ValidationError(field: field, "\"\(text)\" is not an RFC 3339 time such as 2026-11-26T22:00:00Z", status: .badRequest)
        }
        return milliseconds
    }
}

/// Parsing helpers that report the JSON field they read.
enum APIParse {
    static func address(_ text: String, field: String, into validator: inout Validator) -> IPAddress? {
        validator.check(field) { () throws(IPParseError) -> IPAddress in try IPAddress(parsing: text) }
    }

    /// A neighbour's address; one written with a port or an interface zone is refused with where
    /// those go, rather than with the IPv6 parser's complaint about the colon or the `%`.
    static func peerAddress(_ text: String, field: String, into validator: inout Validator) -> IPAddress? {
        if let endpoint = try? IPEndpoint(parsing: text) {
            validator.add(field, "\"\(text)\" includes a port: give the address (\(endpoint.address)) here and the port in `port`")
            return nil
        }
        if text.contains("%") {
            validator.add(field, "\"\(text)\" names an interface, which Herald cannot use for peers yet: use the neighbour's global or unique-local address")
            return nil
        }
        return address(text, field: field, into: &validator)
    }

    /// A static route's next hops ("self", node names, addresses), each error under
    /// `field[n]`; nil when any of them is invalid.
    static func nextHops(_ texts: [String], field: String, into validator: inout Validator) -> [StaticNextHop]? {
        let hops = texts.enumerated().compactMap { entry in
            validator.check("\(field)[\(entry.offset)]") { () throws(InvalidField) -> StaticNextHop in try StaticNextHop(parsing: entry.element) }
        }
        return hops.count == texts.count ? hops : nil
    }

    static func query<T>(_ request: HTTPRequest, _ name: String, _ parse: (String) throws -> T) throws -> T? {
        guard let text = request.query[name] else { return nil }
        do { return try parse(text) } catch let error as ValidationError { throw error } catch {
            throw ValidationError(field: name, "\(error)", status: .badRequest)
        }
    }

    /// The `cursor` query parameter: an event id from a previous page's `next_cursor`; nil for
    /// the first page.
    static func cursor(_ request: HTTPRequest) throws -> Int64? {
        try query(request, "cursor") { text -> Int64 in
            guard let value = Int64(text), value >= 0 else { throw ValidationError(field: "cursor", "is not a cursor from next_cursor", status: .badRequest) }
            return value
        }
    }

    /// The `order` query parameter of a history list: `asc` (the default) or `desc`.
    static func order(_ request: HTTPRequest) throws -> EventOrder {
        try query(request, "order") { text -> EventOrder in
            guard let order = EventOrder(rawValue: text) else { throw ValidationError(field: "order", "must be asc or desc", status: .badRequest) }
            return order
        } ?? .asc
    }

    /// `next_cursor` for a page: the last id when the page is full, nil on the last page.
    static func nextCursor(ids: [Int64], limit: Int) -> String? {
        ids.count == limit ? ids.last.map { String($0) } : nil
    }

    static func limit(_ request: HTTPRequest, default value: Int = 100, max: Int = 1000) throws -> Int {
        try query(request, "limit") { text in
            guard let number = Int(text), (1...max).contains(number) else {
                throw ValidationError(field: "limit", "must be 1–\(max)", status: .badRequest)
            }
            return number
        } ?? value
    }
}

extension RequestContext {
    func name() throws -> String { try parameter("name") }
}
