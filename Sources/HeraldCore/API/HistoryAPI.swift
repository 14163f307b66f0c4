public import HTTPServer
internal import IP
internal import Store

/// `GET /v1/history`: every announce, update and withdraw, why and when, filtered by prefix,
/// time window and peer, paged by id, oldest or newest first.
public struct HistoryAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/history", query: ["prefix", "since", "until", "peer", "order", "cursor", "limit"]) { request, _ in try history(request) }
    }

    struct EventBody: Encodable {
        let id: Int64
        let at: String
        let action: String
        let prefix: String
        let source: RoutesAPI.SourceBody
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
        let order = try APIParse.order(request)
        let cursor = try APIParse.cursor(request)
        let limit = try APIParse.limit(request)
        let peerName = request.query["peer"]
        let events = try services.read { db -> [RouteEvent] in
            var peer: PeerConfig?
            if let peerName {
                guard let found = try Peers.get(db, name: peerName) else { throw ValidationError(field: "peer", "peer \"\(peerName)\" does not exist", status: .badRequest) }
                peer = found.config
            }
            return try RouteHistory.list(db, within: within, since: since, until: until, for: peer, order: order, after: cursor, limit: limit)
        }
        let bodies = events.map { event in
            EventBody(id: event.id, at: APITime.format(event.at), action: event.action.rawValue, prefix: event.prefix.description,
                      source: RoutesAPI.SourceBody(kind: event.source.kind.rawValue, name: event.source.name),
                      paths: RouteHistory.storedPaths(event).map { HistoryPath(nextHop: $0.nextHop, node: $0.node) },
                      reason: event.reason, requestId: event.requestID)
        }
        return try .json(HistoryPage(events: bodies, nextCursor: APIParse.nextCursor(ids: events.map(\.id), limit: limit)))
    }
}
