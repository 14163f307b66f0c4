public import HTTPServer
internal import BGPSpeaker
internal import IP
internal import Store

/// `/v1/peers`: BGP neighbours. The password is write-only: reads say `password_set`. Every
/// change goes through the committer, which runs it against the speaker's configuration rules
/// before COMMIT (a change the speaker cannot apply gets a 4xx and nothing is stored) and hands
/// it to the speaker in commit order; the response waits until the speaker applied it.
public struct PeersAPI: Sendable {
    let services: APIServices
    let ribPages = RIBPages()

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/peers", query: PageQuery.parameters) { request, _ in
            let page = try PageQuery(request)
            let (peers, nextKey) = page.take(try services.read { db in try Peers.page(db, after: page.after, limit: page.limit + 1) }, key: \.name)
            let live = await liveState()
            return try page.response(PeerList(peers: peers.map { PeerBody($0, live: live[$0.name]) }, nextCursor: nextKey.map(PageQuery.encode)),
                                     nextKey: nextKey, request: request)
        }
        router.post("/v1/peers") { request, context in try await create(request, context) }
        router.get("/v1/peers/{name}") { _, context in try await .json(try peer(named: try context.name())) }
        router.patch("/v1/peers/{name}") { request, context in try await update(try context.name(), request, context) }
        router.delete("/v1/peers/{name}") { _, context in try await delete(try context.name(), context) }
        router.get("/v1/peers/{name}/events", query: ["order", "cursor", "limit"]) { request, context in try events(try context.name(), request) }
        router.get("/v1/peers/{name}/routes/advertised", query: RIBPages.parameters) { request, context in
            try await routes(try context.name(), received: false, request)
        }
        router.get("/v1/peers/{name}/routes/received", query: RIBPages.parameters) { request, context in
            try await routes(try context.name(), received: true, request)
        }
        router.post("/v1/peers/{name}/reset") { request, context in try await reset(try context.name(), request, context) }
    }

    func liveState() async -> [String: PeerSnapshot] {
        guard let bridge = services.bridge else { return [:] }
        let snapshot = await bridge.speaker.snapshot()
        return Dictionary(snapshot.peers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func runningSpeaker() throws -> Speaker {
        guard let bridge = services.bridge else { throw HTTPError(.serviceUnavailable, detail: "the BGP speaker is not running") }
        return bridge.speaker
    }

    // MARK: - Configuration

    func peer(named name: String) async throws -> PeerBody {
        guard let peer = try services.read({ db in try Peers.get(db, name: name) }) else { throw APIServices.notFound("peer", name) }
        return PeerBody(peer, live: await services.bridge?.speaker.peer(named: name))
    }

    func create(_ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
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
            throw APIErrors.http(DomainError.invalid(Validator.unique(validator.errors + extra)))
        }
        let name = input.name ?? "", settings = config
        let applied = services.bridge.map { _ in Reply<Void>() }
        let peer = try await services.commit(context) { change in
            let peer = try Peers.create(change.db, name: name, config: settings, now: change.now)
            _ = try change.apply(.add(SpeakerMapping.peerSettings(name: name, peer.config)), reply: applied)
            try PeerEvents.append(change.db, peer: name, kind: .config, reason: "peer created", now: change.now)
            return peer
        }
        await applied?.value
        return try .json(PeerBody(peer, live: await services.bridge?.speaker.peer(named: name)), status: .created)
    }

    func update(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input = try request.decode(PeerInput.self)
        if let bodyName = input.name, bodyName != name {
            throw ValidationError(field: "name", "a peer cannot be renamed; delete it and create \"\(bodyName)\"")
        }
        let applied = services.bridge.map { _ in Reply<Void>() }
        let peer = try await services.commit(context) { change in
            let after = try Peers.update(change.db, name: name, now: change.now) { config in
                // Report unparsable fields and invalid values together, in one response.
                var validator = Validator()
                input.apply(to: &config, into: &validator)
                if !validator.errors.isEmpty {
                    config.validate(into: &validator)
                    throw DomainError.invalid(Validator.unique(validator.errors))
                }
            }
            // What happens to the session is decided where the speaker decides it.
            let effect = try change.apply(.update(SpeakerMapping.peerSettings(name: name, after.config)), reply: applied)
            try PeerEvents.append(change.db, peer: name, kind: .config, reason: Self.reason(effect), now: change.now)
            return after
        }
        await applied?.value
        return try .json(PeerBody(peer, live: await services.bridge?.speaker.peer(named: name)))
    }

    /// The history's words for what a configuration change did to the session.
    static func reason(_ effect: SpeakerConfiguration.PeerEffect) -> String {
        switch effect {
        case .reset(let fields): "peer changed (\(fields.joined(separator: ", "))): session reset"
        case .disabled: "peer changed: disabled, session shut down"
        case .enabled: "peer changed: enabled, session starting"
        case .inPlace, .added, .removed: "peer changed"
        }
    }

    func delete(_ name: String, _ context: RequestContext) async throws -> HTTPResponse {
        let applied = services.bridge.map { _ in Reply<Void>() }
        try await services.commit(context) { change in
            try Peers.delete(change.db, name: name)
            _ = try change.apply(.remove(name: name), reply: applied)
            try PeerEvents.append(change.db, peer: name, kind: .config, reason: "peer deleted", now: change.now)
        }
        await applied?.value
        return .noContent
    }

    // MARK: - Routes, resets and session history

    func routes(_ name: String, received: Bool, _ request: HTTPRequest) async throws -> HTTPResponse {
        let speaker = try runningSpeaker()
        guard try services.read({ db in try Peers.get(db, name: name) }) != nil else { throw APIServices.notFound("peer", name) }
        let view = received ? try await speaker.receivedView(peer: name) : try await speaker.advertisedView(peer: name)
        return try await ribPages.page(of: view, received: received, request)
    }

    func reset(_ name: String, _ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input: ResetInput = request.body.isEmpty ? ResetInput(soft: nil, direction: nil, message: nil) : try request.decode(ResetInput.self)
        // Checked even for a hard reset: a mistyped field is an error, not silently ignored.
        let direction: Speaker.SoftResetDirection
        switch input.direction ?? "both" {
        case "in": direction = .inbound
        case "out": direction = .outbound
        case "both": direction = .both
        default: throw ValidationError(field: "direction", "expected in, out or both")
        }
        let speaker = try runningSpeaker()
        guard try services.read({ db in try Peers.get(db, name: name) }) != nil else { throw APIServices.notFound("peer", name) }
        if input.soft == true {
            try await speaker.softReset(peer: name, direction)
            return try .json(ResetBody(peer: name, reset: "soft"))
        }
        try await speaker.hardReset(peer: name, message: input.message)
        try await services.commit(context) { change in
            try PeerEvents.append(change.db, peer: name, kind: .config, reason: "hard reset by operator", now: change.now)
        }
        return try .json(ResetBody(peer: name, reset: "hard"))
    }

    func events(_ name: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let order = try APIParse.order(request)
        let cursor = try APIParse.cursor(request)
        let limit = try APIParse.limit(request)
        let events = try services.read { db in
            guard try Peers.get(db, name: name) != nil else { throw DomainError.notFound(kind: "peer", name: name) }
            return try PeerEvents.list(db, peer: name, order: order, after: cursor, limit: limit)
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
