public import HTTPServer
internal import IP
public import Store

/// `/v1/peers`: BGP neighbours. The password is write-only: reads say `password_set`.
public struct PeersAPI: Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    public func register(on router: Router) {
        router.get("/v1/peers") { _, _ in try .json(PeerList(peers: try read { db in try Peers.list(db).map(PeerBody.init) })) }
        router.post("/v1/peers") { request, context in try create(request, context) }
        router.get("/v1/peers/{name}") { _, context in try .json(try peer(named: try context.name())) }
        router.patch("/v1/peers/{name}") { request, context in try update(try context.name(), request, context) }
        router.delete("/v1/peers/{name}") { _, context in try delete(try context.name(), context) }
        router.get("/v1/peers/{name}/events") { request, context in try events(try context.name(), request) }
    }

    func read<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try APIErrors.translating { try store.read(body) }
    }

    func write<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try APIErrors.translating { try store.write(body) }
    }

    // MARK: - Bodies

    struct PeerList: Encodable { let peers: [PeerBody] }

    struct PeerBody: Encodable {
        let name: String
        let address: String
        let port: Int
        let asn: UInt32
        let localAddress: String?
        let passwordSet: Bool
        let ebgpMultihop: Int?
        let ttlSecurity: Int?
        let holdTime: Int?
        let keepaliveTime: Int?
        let connectRetryTime: Int?
        let passive: Bool
        let families: [String]
        let addPathSend: Bool
        let gracefulRestart: Bool
        let maxPrefixes: Int?
        let labels: [String: String]
        let enabled: Bool
        let description: String
        let createdAt: String
        let updatedAt: String

        init(_ peer: Peer) {
            let c = peer.config
            name = peer.name
            address = c.address.description
            port = Int(c.port)
            asn = c.asn
            localAddress = c.localAddress?.description
            passwordSet = peer.passwordSet
            ebgpMultihop = c.ebgpMultihop
            ttlSecurity = c.ttlSecurity
            holdTime = c.holdTime
            keepaliveTime = c.keepaliveTime
            connectRetryTime = c.connectRetryTime
            passive = c.passive
            families = c.families.map(\.rawValue)
            addPathSend = c.addPathSend
            gracefulRestart = c.gracefulRestart
            maxPrefixes = c.maxPrefixes
            labels = c.labels
            enabled = c.enabled
            description = c.description
            createdAt = APITime.format(peer.createdAt)
            updatedAt = APITime.format(peer.updatedAt)
        }
    }

    /// Every field optional: POST needs name, address and asn; PATCH changes what is present.
    /// `password: ""` removes the password.
    struct PeerInput: Decodable {
        let name: String?
        let address: String?
        let port: Int?
        let asn: UInt32?
        let localAddress: String?
        let password: String?
        let ebgpMultihop: Int?
        let ttlSecurity: Int?
        let holdTime: Int?
        let keepaliveTime: Int?
        let connectRetryTime: Int?
        let passive: Bool?
        let families: [String]?
        let addPathSend: Bool?
        let gracefulRestart: Bool?
        let maxPrefixes: Int?
        let labels: [String: String]?
        let enabled: Bool?
        let description: String?

        /// Applies the present fields to `config`, recording unparsable ones.
        func apply(to config: inout PeerConfig, into validator: inout Validator) {
            if let text = address, let value = APIParse.address(text, field: "address", into: &validator) { config.address = value }
            if let port {
                if let value = UInt16(exactly: port), value > 0 { config.port = value } else { validator.add("port", "must be 1–65535") }
            }
            if let asn { config.asn = asn }
            if let text = localAddress {
                config.localAddress = text.isEmpty ? nil : APIParse.address(text, field: "local_address", into: &validator)
            }
            if let password { config.password = password.isEmpty ? nil : password }
            if let ebgpMultihop { config.ebgpMultihop = ebgpMultihop == 0 ? nil : ebgpMultihop }
            if let ttlSecurity { config.ttlSecurity = ttlSecurity == 0 ? nil : ttlSecurity }
            if let holdTime { config.holdTime = holdTime }
            if let keepaliveTime { config.keepaliveTime = keepaliveTime }
            if let connectRetryTime { config.connectRetryTime = connectRetryTime }
            if let passive { config.passive = passive }
            if let families {
                var parsed: [PeerFamily] = []
                for (index, text) in families.enumerated() {
                    if let family = PeerFamily(rawValue: text) { parsed.append(family) } else {
                        validator.add("families[\(index)]", "expected ipv4-unicast or ipv6-unicast")
                    }
                }
                if parsed.count == families.count { config.families = parsed }
            }
            if let addPathSend { config.addPathSend = addPathSend }
            if let gracefulRestart { config.gracefulRestart = gracefulRestart }
            if let maxPrefixes { config.maxPrefixes = maxPrefixes == 0 ? nil : maxPrefixes }
            if let labels { config.labels = labels }
            if let enabled { config.enabled = enabled }
            if let description { config.description = description }
        }
    }

    // MARK: - Handlers

    func peer(named name: String) throws -> PeerBody {
        guard let peer = try read({ db in try Peers.get(db, name: name) }) else { throw ResourceAPI.notFound("peer", name) }
        return PeerBody(peer)
    }

    func create(_ request: HTTPRequest, _ context: RequestContext) throws -> HTTPResponse {
        let input = try request.decode(PeerInput.self)
        var validator = Validator()
        if input.name == nil { validator.add("name", "is required") }
        if input.address == nil { validator.add("address", "is required") }
        if input.asn == nil { validator.add("asn", "is required") }
        var config = PeerConfig(address: .v4(.any), asn: 0)
        input.apply(to: &config, into: &validator)
        if !validator.errors.isEmpty {
            // Also report what is wrong with the fields that did parse (skipping the missing ones).
            let reported = Set(validator.errors.map(\.field))
            var more = Validator()
            config.validate(into: &more)
            let extra = more.errors.filter { !reported.contains($0.field) && !(reported.contains("address") && $0.field == "address") && !(reported.contains("asn") && $0.field == "asn") }
            throw APIErrors.http(DomainError.invalid(Self.unique(validator.errors + extra)))
        }
        let name = input.name ?? ""
        let peer = try write { db in
            let peer = try Peers.create(db, name: name, config: config, now: Clock.nowMilliseconds())
            try PeerEvents.append(db, peer: name, kind: .config, reason: "peer created", now: Clock.nowMilliseconds())
            return peer
        }
        return try .json(PeerBody(peer), status: .created)
    }

    func update(_ name: String, _ request: HTTPRequest, _ context: RequestContext) throws -> HTTPResponse {
        let input = try request.decode(PeerInput.self)
        if let bodyName = input.name, bodyName != name {
            throw ValidationError(field: "name", "a peer cannot be renamed; delete it and create \"\(bodyName)\"")
        }
        let update = try write { db in
            let update = try Peers.update(db, name: name, now: Clock.nowMilliseconds()) { config in
                // Report unparsable fields and invalid values together, in one response.
                var validator = Validator()
                input.apply(to: &config, into: &validator)
                if !validator.errors.isEmpty {
                    config.validate(into: &validator)
                    throw DomainError.invalid(Self.unique(validator.errors))
                }
            }
            let reason = update.resetFields.isEmpty ? "peer changed" : "peer changed (\(update.resetFields.joined(separator: ", "))): session reset"
            try PeerEvents.append(db, peer: name, kind: .config, reason: reason, now: Clock.nowMilliseconds())
            return update
        }
        return try .json(PeerBody(update.after))
    }

    func delete(_ name: String, _ context: RequestContext) throws -> HTTPResponse {
        try write { db in
            _ = try Peers.delete(db, name: name)
            try PeerEvents.append(db, peer: name, kind: .config, reason: "peer deleted", now: Clock.nowMilliseconds())
        }
        return .noContent
    }

    /// One error per field and message, in first-seen order.
    static func unique(_ errors: [InvalidField]) -> [InvalidField] {
        var seen: Set<InvalidField> = []
        return errors.filter { seen.insert($0).inserted }
    }

    struct NotificationBody: Encodable {
        let code: Int
        let subcode: Int
        let text: String?
        let direction: String
    }

    struct PeerEventBody: Encodable {
        let id: Int64
        let at: String
        let kind: String
        let fromState: String?
        let toState: String?
        let reason: String
        let notification: NotificationBody?
    }

    struct PeerEventPage: Encodable {
        let events: [PeerEventBody]
        let nextCursor: String?
    }

    func events(_ name: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let cursor = try APIParse.cursor(request)
        let limit = try APIParse.limit(request)
        let events = try read { db in
            guard try Peers.get(db, name: name) != nil else { throw DomainError.notFound(kind: "peer", name: name) }
            return try PeerEvents.list(db, peer: name, after: cursor, limit: limit)
        }
        let bodies = events.map { event in
            PeerEventBody(id: event.id, at: APITime.format(event.at), kind: event.kind.rawValue, fromState: event.fromState,
                          toState: event.toState, reason: event.reason,
                          notification: event.notification.map {
                              NotificationBody(code: Int($0.code), subcode: Int($0.subcode), text: $0.text, direction: $0.direction.rawValue)
                          })
        }
        return try .json(PeerEventPage(events: bodies, nextCursor: APIParse.nextCursor(ids: events.map(\.id), limit: limit)))
    }
}
