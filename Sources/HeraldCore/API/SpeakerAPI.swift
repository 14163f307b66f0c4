public import HTTPServer
internal import BGPSpeaker
internal import IP
internal import Store

/// `GET|PUT /v1/speaker`: who Herald is in BGP (ASN, router ID), where it listens, and the
/// defaults its sessions start from. A change is committed, then applied by the running speaker
/// in commit order: a new ASN or router ID resets every session, and the response lists them.
public struct SpeakerAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/speaker") { _, _ in try await .json(try body()) }
        router.put("/v1/speaker") { request, context in try await put(request, context) }
    }

    struct GracefulRestartBody: Codable {
        let enabled: Bool?
        let restartTime: Int?
    }

    struct SpeakerBody: Encodable {
        let asn: UInt32
        let routerId: String
        let listenAddress: String
        let listenPort: Int
        let holdTime: Int
        let keepaliveTime: Int
        let connectRetryTime: Int
        let gracefulRestart: GracefulRestartBody
        /// Live: the bound listeners, and why binding failed, if it did.
        let listening: [String]?
        let listenError: String?
        /// PUT only: sessions reset by this change, and what else it did.
        let sessionsReset: [String]?
        let notes: [String]?
    }

    struct SpeakerInput: Decodable {
        let asn: Int64?
        let routerId: String?
        let listenAddress: String?
        let listenPort: Int?
        let holdTime: Int?
        let keepaliveTime: Int?
        let connectRetryTime: Int?
        let gracefulRestart: GracefulRestartBody?
    }

    func stored() throws -> SpeakerSettings {
        let settings = try services.read { db in try SpeakerSettings.load(db) }
        guard let settings else { throw HTTPError(.notFound, detail: "the speaker has not been configured yet (start herald serve once)") }
        return settings
    }

    func body(_ settings: SpeakerSettings? = nil, sessionsReset: [String]? = nil, notes: [String]? = nil) async throws -> SpeakerBody {
        let s = try settings ?? stored()
        let live = await services.bridge?.speaker.snapshot()
        // A replica started with --bgp-listen listens there, whatever is stored.
        let listen = services.committer.localListen ?? s.listen
        return SpeakerBody(
            asn: s.asn, routerId: (services.committer.localRouterID ?? s.routerID).description, listenAddress: listen.address.description, listenPort: Int(listen.port),
            holdTime: s.holdTime, keepaliveTime: s.keepaliveTime, connectRetryTime: s.connectRetryTime,
            gracefulRestart: GracefulRestartBody(enabled: s.gracefulRestartEnabled, restartTime: s.gracefulRestartTime),
            listening: live?.listening, listenError: live?.listenError, sessionsReset: sessionsReset, notes: notes)
    }

    /// Validates `input` over `current`: fields left out keep their value.
    static func apply(_ input: SpeakerInput, to current: SpeakerSettings) throws -> SpeakerSettings {
        var s = current
        var validator = Validator()
        if let asn = input.asn {
            if BGPLimits.isValidASN(asn) { s.asn = UInt32(asn) } else { validator.add("asn", BGPLimits.asnRule) }
        }
        if let text = input.routerId {
            // RFC 6286: a non-zero 32-bit identifier, written as an IPv4 address.
            if let id = IPv4Address(text), id != .any { s.routerID = id } else { validator.add("router_id", "must be a non-zero IPv4 address, e.g. 192.0.2.1") }
        }
        if let text = input.listenAddress {
            if let address = IPAddress(text) {
                s.listen = IPEndpoint(address: address, port: s.listen.port)
            } else {
                validator.add("listen_address", "must be an IPv4 or IPv6 address (0.0.0.0 or :: for all)")
            }
        }
        if let port = input.listenPort {
            // 0 would bind a port the kernel picks, which no peer can know to connect to.
            if (1...65535).contains(port) { s.listen = IPEndpoint(address: s.listen.address, port: UInt16(port)) } else {
                validator.add("listen_port", "must be 1–65535 (179 is BGP's port)")
            }
        }
        if let hold = input.holdTime {
            if BGPLimits.isValidHoldTime(hold) { s.holdTime = hold } else { validator.add("hold_time", BGPLimits.holdTimeRule) }
        }
        if let keepalive = input.keepaliveTime { s.keepaliveTime = keepalive }
        if let retry = input.connectRetryTime {
            if BGPLimits.connectRetryTimes.contains(retry) { s.connectRetryTime = retry } else { validator.add("connect_retry_time", BGPLimits.connectRetryRule) }
        }
        if let gr = input.gracefulRestart {
            if let enabled = gr.enabled { s.gracefulRestartEnabled = enabled }
            if let time = gr.restartTime {
                // RFC 4724 §3: the restart time field is 12 bits.
                if (0...4095).contains(time) { s.gracefulRestartTime = time } else { validator.add("graceful_restart.restart_time", "must be 0–4095 seconds") }
            }
        }
        if let problem = BGPLimits.keepaliveProblem(s.keepaliveTime, holdTime: s.holdTime) { validator.add("keepalive_time", problem) }
        try validator.finish()
        return s
    }

    func put(_ request: HTTPRequest, _ context: RequestContext) async throws -> HTTPResponse {
        let input = try request.decode(SpeakerInput.self)
        let applied = services.bridge.map { _ in Reply<SettingsChange>() }
        let (before, after) = try await services.commit(context) { change -> (SpeakerSettings, SpeakerSettings) in
            guard let current = try SpeakerSettings.load(change.db) else { throw DomainError.notFound(kind: "speaker", name: "speaker") }
            if change.localRouterID != nil, input.routerId != nil {
                // Each replica announces with its own identity; one stored for all would make the
                // three speakers one BGP identifier (RFC 6286 §2.1 wants them unique).
                throw DomainError.invalid([InvalidField("router_id", "in cluster mode each replica has its own router ID: restart it with --router-id")])
            }
            if change.localListen != nil, input.listenAddress != nil || input.listenPort != nil {
                // The replica's own --bgp-listen is laid over the stored one: a stored change
                // would not change where this replica listens.
                throw DomainError.invalid([InvalidField(input.listenAddress != nil ? "listen_address" : "listen_port",
                                                        "this replica was started with --bgp-listen, which decides where it listens: restart it with another")])
            }
            let new = try Self.apply(input, to: current)
            if new != current {
                try new.save(change.db, now: change.now)
                _ = change.apply(settings: SpeakerMapping.settings(new, restarting: false, routerID: change.localRouterID,
                                                                   listen: change.localListen), reply: applied)
            }
            return (current, new)
        }
        var notes: [String] = []
        if before.asn != after.asn { notes.append("asn \(before.asn) → \(after.asn): every session was reset") }
        if before.routerID != after.routerID { notes.append("router_id \(before.routerID) → \(after.routerID): every session was reset") }
        if before.listen != after.listen { notes.append("BGP listener \(before.listen) → \(after.listen)") }
        if before.holdTime != after.holdTime || before.connectRetryTime != after.connectRetryTime || before.keepaliveTime != after.keepaliveTime
            || before.gracefulRestartEnabled != after.gracefulRestartEnabled || before.gracefulRestartTime != after.gracefulRestartTime {
            notes.append("timers and graceful restart apply to sessions established from now on")
        }
        // Unchanged settings are not handed to the speaker: nothing to wait for.
        let reset = before != after ? await applied?.value.sessionsReset : nil
        return try .json(try await body(after, sessionsReset: reset ?? [], notes: notes))
    }
}
