import BGP
import IP

// Adj-RIB-In: what a peer announces to us, kept for display only (never installed in a
// kernel table), with the max-prefix limit of RFC 4486 and graceful-restart staleness.

extension PeerDriver {
    func process(_ update: UpdateMessage, _ parameters: SessionParameters, _ attempt: SessionAttempt) {
        if let family = update.endOfRIB {
            // RFC 4724 §4.2: the restarting peer's stale routes of this family go now.
            removeStale { AddressFamily.unicast($0.prefix.family) == family }
            core?.emit(.endOfRIB(peer: settings.name, family: Self.familyName(family), direction: .received))
            return
        }
        if !update.errors.isEmpty {
            logger.warning("malformed UPDATE handled per RFC 7606", metadata: ["errors": "\(update.errors.map(\.description))"])
        }
        var withdrawn = 0, announced = 0
        for nlri in update.withdrawn {
            guard let gone = received.removeValue(forKey: nlri) else { continue }
            withdrawn += 1
            if gone.asLoop { counters.prefixesWithASLoop -= 1 }
        }
        let nlri = update.announced
        if !nlri.isEmpty {
            var attributes = parameters.fourOctetASN ? update.attributes : update.attributes.reconcilingAS4Attributes()
            let mpNextHop: IPAddress? = switch attributes.mpReachNLRI?.nextHop {
            case .ipv4(let a): .v4(a)
            case .ipv6(let a, _): .v6(a)
            default: nil
            }
            let classicNextHop = attributes.nextHop.map { IPAddress.v4($0) }
            attributes.removeAll {
                switch $0 {
                case .mpReachNLRI, .mpUnreachNLRI: true
                default: false
                }
            }
            let now = wallClockMillis()
            let localAS = speaker.asn
            let asLoop = attributes.asPath?.segments.contains { $0.asns.contains(localAS) } ?? false
            let classic = Set(update.nlri)
            let limit = adjRIBInLimit
            var notKept = 0
            for n in nlri {
                // At the limit a new prefix is counted, not kept; a known one is still replaced.
                guard received.count < limit || received[n] != nil else {
                    notKept += 1
                    continue
                }
                let hop = classic.contains(n) ? classicNextHop : mpNextHop
                let path = ReceivedPath(attributes: attributes, nextHop: hop, receivedAt: now, stale: false, asLoop: asLoop)
                if let replaced = received.updateValue(path, forKey: n) {
                    if replaced.asLoop { counters.prefixesWithASLoop -= 1 }
                } else {
                    receivedGainedPrefixes = true
                }
                if asLoop { counters.prefixesWithASLoop += 1 }
                announced += 1
            }
            if notKept > 0 { adjRIBInFull(notKept: notKept, limit: limit) }
        }
        counters.prefixesReceived = received.count
        if announced + withdrawn > 0 {
            core?.emit(.receivedRoutesChanged(peer: settings.name, announced: announced, withdrawn: withdrawn))
        }
        checkMaxPrefixes(attempt)
    }

    /// The most paths kept for this peer: the speaker's bound, or the peer's max-prefix limit
    /// when that is higher (so its action sees every prefix up to the limit).
    var adjRIBInLimit: Int {
        // One above the limit, saturating: the API takes any max_prefixes up to 2^63 − 1, and
        // `+ 1` trapped on that one (a schemathesis run brought the process down through it).
        let limit = settings.maxPrefixes?.limit ?? 0
        return max(speaker.adjRIBInLimit, limit == .max ? .max : limit + 1)
    }

    /// Received routes are kept for display only, so a full Adj-RIB-In costs the operator a
    /// complete view, never the session or Herald's own announcements: the rest is counted.
    func adjRIBInFull(notKept: Int, limit: Int) {
        counters.prefixesNotKept += notKept
        guard !adjRIBInFullReported else { return }
        adjRIBInFullReported = true
        hint = "the received-routes view holds its limit of \(limit) paths; further new prefixes are counted in prefixes_not_kept, not kept (display only: the session and Herald's announcements are unaffected; max_prefixes above the limit raises it)"
        logger.warning("Adj-RIB-In at its limit: new prefixes from the peer are counted, not kept", metadata: ["limit": "\(limit)"])
    }

    func checkMaxPrefixes(_ attempt: SessionAttempt) {
        guard let limit = settings.maxPrefixes, received.count > limit.limit else { return }
        let detail = "peer sent \(received.count) prefixes, the limit is \(limit.limit)"
        switch limit.action {
        case .warn:
            guard !maxPrefixReported else { return }
            maxPrefixReported = true
            hint = "max-prefix limit exceeded: \(detail) (warn only)"
            logger.warning("max-prefix limit exceeded", metadata: ["detail": "\(detail)"])
            core?.emit(.maxPrefixExceeded(peer: settings.name, count: received.count, limit: limit.limit))
        case .restart:
            hint = "max-prefix limit exceeded: \(detail); the session restarts after the idle hold time"
            logger.warning("max-prefix limit exceeded, closing the session", metadata: ["detail": "\(detail)"])
            core?.emit(.maxPrefixExceeded(peer: settings.name, count: received.count, limit: limit.limit))
            // RFC 4486: Cease / Maximum Number of Prefixes Reached.
            handle(attempt, .automaticStop(reason: .maximumNumberOfPrefixesReached, detail: "maximum number of prefixes reached: \(detail)"))
        }
    }

    /// Asks the peer to send its table again (RFC 2918), per negotiated family.
    func requestRefresh() {
        loop.preconditionInEventLoop()
        guard let session, let parameters = session.parameters, parameters.routeRefresh else { return }
        for family in exportFamilies(parameters) {
            send(.routeRefresh(RouteRefreshMessage(family: .unicast(family))), on: session)
        }
    }
}
