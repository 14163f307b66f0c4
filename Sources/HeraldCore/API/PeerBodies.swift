internal import BGPSpeaker
internal import IP
internal import Store

/// The bodies of `/v1/peers`: what the API shows of a peer (configuration without the password,
/// live session state while the speaker runs) and what it accepts.
extension PeersAPI {
    struct PeerList: Encodable {
        let peers: [PeerBody]
        let nextCursor: String?
    }

    struct PeerBody: Encodable {
        let name: String
        let address: String
        let port: Int
        let asn: UInt32
        let localAddress: String?
        let otherFamilyNextHop: String?
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
        let bfd: BFDBody
        let createdAt: String
        let updatedAt: String
        // Live session state, when the speaker runs.
        let state: String?
        let establishedAt: String?
        let uptimeSeconds: Double?
        let lastError: LastErrorBody?
        let recentErrors: [RecentErrorBody]?
        let negotiated: NegotiatedBody?
        let counters: CountersBody?
        let hint: String?
        let backoff: BackoffBody?

        init(_ peer: Peer, live: PeerSnapshot? = nil) {
            let c = peer.config
            name = peer.name
            address = c.address.description
            port = Int(c.port)
            asn = c.asn
            localAddress = c.localAddress?.description
            otherFamilyNextHop = c.otherFamilyNextHop?.description
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
            bfd = BFDBody(c.bfd, live: live?.bfd)
            createdAt = APITime.format(peer.createdAt)
            updatedAt = APITime.format(peer.updatedAt)
            state = live?.state.rawValue
            establishedAt = live?.establishedAt.map(APITime.format)
            uptimeSeconds = live?.establishedAt.map { Double(Clock.nowMilliseconds() - $0) / 1000 }
            lastError = live?.lastError.map(LastErrorBody.init)
            recentErrors = live.map { $0.recentErrors.map(RecentErrorBody.init) }
            negotiated = live?.negotiated.map(NegotiatedBody.init)
            counters = live.map { CountersBody($0.counters) }
            hint = live?.hint
            backoff = live.flatMap { snapshot in
                snapshot.idleHoldSeconds.map {
                    BackoffBody(idleHoldSeconds: $0, nextAttemptAt: snapshot.nextAttemptAt.map(APITime.format),
                                consecutiveFailures: snapshot.consecutiveFailures)
                }
            }
        }
    }

    /// `bfd`: the settings, and the live session (`session`) while the speaker runs it.
    struct BFDBody: Encodable {
        let enabled: Bool
        let minTx: Int
        let minRx: Int
        let multiplier: Int
        let session: BFDSessionBody?

        init(_ c: PeerBFD, live: BFDSnapshot?) {
            enabled = c.enabled
            minTx = c.minTx
            minRx = c.minRx
            multiplier = c.multiplier
            session = live.map(BFDSessionBody.init)
        }
    }

    struct BFDSessionBody: Encodable {
        let state: String
        let remoteState: String
        let localDiscriminator: UInt32
        let remoteDiscriminator: UInt32?
        /// Negotiated interval between our packets, ms (before the 0–25 % jitter).
        let transmitInterval: Double
        /// Negotiated detection time, ms.
        let detectionTime: Double?
        let lastDiagnostic: String?
        let remoteDiagnostic: String?
        let upSince: String?
        let lastChange: String?
        let packetsIn: Int
        let packetsOut: Int
        let packetsDiscarded: Int
        let error: String?

        init(_ b: BFDSnapshot) {
            state = b.state
            remoteState = b.remoteState
            localDiscriminator = b.localDiscriminator
            remoteDiscriminator = b.remoteDiscriminator
            transmitInterval = b.transmitInterval
            detectionTime = b.detectionTime
            lastDiagnostic = b.lastDiagnostic
            remoteDiagnostic = b.remoteDiagnostic
            upSince = b.upSince.map(APITime.format)
            lastChange = b.lastChange.map(APITime.format)
            packetsIn = b.packetsIn
            packetsOut = b.packetsOut
            packetsDiscarded = b.packetsDiscarded
            error = b.error
        }
    }

    /// `bfd` in POST/PATCH: present fields change, absent ones stay.
    struct BFDInput: Decodable {
        let enabled: Bool?
        let minTx: Int?
        let minRx: Int?
        let multiplier: Int?
    }

    /// The idle hold wait before the next automatic attempt (RFC 4271 §8.1.1), while it runs.
    struct BackoffBody: Encodable {
        let idleHoldSeconds: Int
        let nextAttemptAt: String?
        let consecutiveFailures: Int
    }

    struct NotificationInfoBody: Encodable {
        let code: Int
        let subcode: Int
        let name: String
        let text: String?
        let direction: String
    }

    struct LastErrorBody: Encodable {
        let at: String
        let reason: String
        let notification: NotificationInfoBody?

        init(_ e: PeerError) {
            at = APITime.format(e.at)
            reason = e.reason
            notification = e.notification.map {
                NotificationInfoBody(code: Int($0.code), subcode: Int($0.subcode), name: $0.name, text: $0.text, direction: $0.direction.rawValue)
            }
        }
    }

    struct RecentErrorBody: Encodable {
        let at: String
        let firstAt: String
        let count: Int
        let reason: String
        let notification: NotificationInfoBody?

        init(_ e: RecentPeerError) {
            let last = LastErrorBody(e.error)
            at = last.at
            firstAt = APITime.format(e.firstAt)
            count = e.count
            reason = last.reason
            notification = last.notification
        }
    }

    struct NegotiatedBody: Encodable {
        let holdTime: Int
        let keepaliveTime: Int
        let peerRouterId: String
        let fourOctetAsn: Bool
        let capabilities: [String]
        let families: [String]
        let addPathSend: [String]
        let addPathReceive: [String]
        let localAddress: String?
        let learnedOtherFamilyNextHop: String?

        init(_ n: NegotiatedSession) {
            holdTime = Int(n.holdTime)
            keepaliveTime = Int(n.keepaliveTime)
            peerRouterId = n.peerRouterID.description
            fourOctetAsn = n.fourOctetASN
            capabilities = n.capabilities
            families = n.families
            addPathSend = n.addPathSend
            addPathReceive = n.addPathReceive
            localAddress = n.localAddress?.description
            learnedOtherFamilyNextHop = n.learnedOtherFamilyNextHop?.description
        }
    }

    struct CountersBody: Encodable {
        let messagesIn: Int
        let messagesOut: Int
        let updatesIn: Int
        let updatesOut: Int
        let prefixesReceived: Int
        /// Received paths whose AS_PATH holds Herald's own AS (echoed back: a loop).
        let prefixesWithAsLoop: Int
        let prefixesAdvertised: Int
        let flaps: Int
        /// Prefixes sent with fewer paths than they have (the peer lacks ADD-PATH receive).
        let prefixesWithFewerPaths: Int
        /// Prefixes not sent for lack of a next hop of their family (set other_family_next_hop).
        let prefixesWithoutNextHop: Int
        /// ROUTE-REFRESH requests merged into a later re-send (rate limit).
        let routeRefreshesDeferred: Int
        /// The most paths the received-routes view keeps, and the new prefixes it did not keep.
        let receivedLimit: Int
        let prefixesNotKept: Int

        init(_ c: PeerCounters) {
            messagesIn = c.messagesIn
            messagesOut = c.messagesOut
            updatesIn = c.updatesIn
            updatesOut = c.updatesOut
            prefixesReceived = c.prefixesReceived
            prefixesWithAsLoop = c.prefixesWithASLoop
            prefixesAdvertised = c.prefixesAdvertised
            flaps = c.flaps
            prefixesWithFewerPaths = c.prefixesWithFewerPaths
            prefixesWithoutNextHop = c.prefixesWithoutNextHop
            routeRefreshesDeferred = c.routeRefreshesDeferred
            receivedLimit = c.receivedLimit
            prefixesNotKept = c.prefixesNotKept
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
        let otherFamilyNextHop: String?
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
        let bfd: BFDInput?

        /// Applies the present fields to `config`, recording unparsable ones.
        func apply(to config: inout PeerConfig, into validator: inout Validator) {
            if let text = address, let value = APIParse.peerAddress(text, field: "address", into: &validator) { config.address = value }
            if let port {
                if let value = UInt16(exactly: port), value > 0 { config.port = value } else { validator.add("port", "must be 1–65535") }
            }
            if let asn { config.asn = asn }
            if let text = localAddress {
                config.localAddress = text.isEmpty ? nil : APIParse.address(text, field: "local_address", into: &validator)
            }
            if let text = otherFamilyNextHop {
                config.otherFamilyNextHop = text.isEmpty ? nil : APIParse.address(text, field: "other_family_next_hop", into: &validator)
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
            if let bfd {
                if let enabled = bfd.enabled { config.bfd.enabled = enabled }
                if let minTx = bfd.minTx { config.bfd.minTx = minTx }
                if let minRx = bfd.minRx { config.bfd.minRx = minRx }
                if let multiplier = bfd.multiplier { config.bfd.multiplier = multiplier }
            }
        }
    }

    struct RIBEntryBody: Encodable {
        let prefix: String
        let pathId: UInt32?
        let nextHop: String?
        let asPath: [UInt32]
        let origin: String
        let med: UInt32?
        let localPref: UInt32?
        let communities: [String]
        let largeCommunities: [String]
        let receivedAt: String?
        let stale: Bool
        /// Received with Herald's own AS in its AS_PATH (RFC 4271 §9.1.2); never set on advertised routes.
        let asLoop: Bool

        init(_ e: RIBEntry) {
            prefix = e.prefix.description
            pathId = e.pathID
            nextHop = e.nextHop?.description
            asPath = e.asPath
            origin = e.origin
            med = e.med
            localPref = e.localPreference
            communities = e.communities.map(\.description)
            largeCommunities = e.largeCommunities.map(\.description)
            receivedAt = e.receivedAt.map(APITime.format)
            stale = e.stale
            asLoop = e.asLoop
        }
    }

    struct RIBList: Encodable {
        let peer: String
        let routes: [RIBEntryBody]
        let nextCursor: String?
    }

    struct ResetInput: Decodable {
        /// Route refresh (RFC 2918) instead of closing the session.
        let soft: Bool?
        /// For a soft reset: "in" (ask the peer to resend), "out" (resend ours) or "both".
        let direction: String?
        /// For a hard reset: the RFC 8203 shutdown communication sent with the Cease.
        let message: String?
    }

    struct ResetBody: Encodable {
        let peer: String
        let reset: String
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
}
