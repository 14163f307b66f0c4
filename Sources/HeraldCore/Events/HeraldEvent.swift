internal import JSON

/// Every event `GET /v1/events` carries: the closed list of kinds, each with its payload.
/// openapi.yaml documents exactly these under `/v1/events` (`x-event-kinds`); a test compares
/// the two, payload fields included.
public enum HeraldEvent: Sendable {
    /// One per committed change that touched routes: why, for which request, when.
    case change(Change)
    /// One per prefix a change announced, updated or withdrew.
    case route(Route)
    /// Instead of `route` events, for a change of more than `Route.bulkThreshold` prefixes.
    case routes(BulkRoutes)
    /// A node's health check took it down or brought it back (after the route change it caused).
    case node(Node)
    /// A BGP session changed state.
    case peer(Peer)

    /// The `event:` field of the Server-Sent Event.
    public enum Kind: String, Sendable, CaseIterable {
        case change, route, routes, node, peer
        /// Sent by the stream itself, not published: the client's Last-Event-ID is no longer
        /// remembered and it should reload state.
        case resync
    }

    public var kind: Kind {
        switch self {
        case .change: .change
        case .route: .route
        case .routes: .routes
        case .node: .node
        case .peer: .peer
        }
    }

    /// The `data:` field: the payload as JSON (the API's encoder: snake_case, sorted keys).
    func json() throws -> String {
        let bytes: [UInt8] = switch self {
        case .change(let payload): try JSONCoding.encode(payload)
        case .route(let payload): try JSONCoding.encode(payload)
        case .routes(let payload): try JSONCoding.encode(payload)
        case .node(let payload): try JSONCoding.encode(payload)
        case .peer(let payload): try JSONCoding.encode(payload)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public struct Change: Encodable, Sendable {
        let reason: String
        let requestId: String?
        let at: Int64
    }

    public struct Route: Encodable, Sendable {
        /// Above this many prefixes one change publishes a `routes` summary instead of one
        /// `route` event per prefix: a million events would only push every subscriber past its
        /// buffer.
        static let bulkThreshold = 1_000

        let action: String
        let prefix: String
        let nextHops: [String]
        let reason: String
        let requestId: String?
        let at: Int64
    }

    public struct BulkRoutes: Encodable, Sendable {
        let announced: Int
        let updated: Int
        let withdrawn: Int
        let reason: String
        let requestId: String?
        let at: Int64
    }

    public struct Node: Encodable, Sendable {
        let node: String
        let from: String
        let to: String
        let reason: String
        let transitions: Int
        let at: Int64
    }

    public struct Peer: Encodable, Sendable {
        let peer: String
        let from: String
        let to: String
        let reason: String?
    }

    /// The events of one committed route change: `change`, then one `route` per prefix moved
    /// (or one `routes` summary for a bulk change).
    static func routeChange(_ diff: RouteDiff, reason: String, requestID: String?, at: Int64) -> [HeraldEvent] {
        var events: [HeraldEvent] = [.change(Change(reason: reason, requestId: requestID, at: at))]
        let moved = diff.announced.count + diff.updated.count + diff.withdrawn.count
        if moved > Route.bulkThreshold {
            events.append(.routes(BulkRoutes(announced: diff.announced.count, updated: diff.updated.count, withdrawn: diff.withdrawn.count,
                                             reason: reason, requestId: requestID, at: at)))
            return events
        }
        for (action, routes) in [("announce", diff.announced), ("update", diff.updated), ("withdraw", diff.withdrawn)] {
            for route in routes {
                events.append(.route(Route(action: action, prefix: route.prefix.description,
                                           nextHops: action == "withdraw" ? [] : route.paths.map(\.nextHop.description),
                                           reason: reason, requestId: requestID, at: at)))
            }
        }
        return events
    }
}
