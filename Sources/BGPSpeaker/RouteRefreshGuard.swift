import BGP
import IP
import Sockets

/// A peer's ROUTE-REFRESH requests, rate-limited. One small message makes the speaker re-send the
/// peer's whole table for a family (RFC 2918 §4, RFC 7313), so a peer repeating it could keep the
/// speaker busy writing the same million routes. At most one re-send per family starts every
/// `interval`; requests inside the interval merge into one re-send when it ends, so the peer
/// still gets the table after its last request.
struct RouteRefreshGuard {
    static let interval: Duration = .seconds(5)
    /// When the last re-send of each family started (EventLoop.now(), ns).
    var lastResend: [IPFamily: UInt64] = [:]
    /// The merged re-send waiting for the interval to end, per family.
    var deferred: [IPFamily: TimerHandle] = [:]

    /// What to do with a request now: re-send at once, or merged into the re-send due in `after`
    /// (nil when one is already waiting).
    enum Decision: Equatable {
        case resendNow
        case deferred(after: Duration?)
    }

    mutating func decide(_ family: IPFamily, now: UInt64) -> Decision {
        if deferred[family] != nil { return .deferred(after: nil) }
        let interval = UInt64(Self.interval.components.seconds) * 1_000_000_000
        if let last = lastResend[family], now &- last < interval {
            return .deferred(after: .nanoseconds(Int64(interval - (now &- last))))
        }
        lastResend[family] = now
        return .resendNow
    }
}

extension PeerDriver {
    /// RFC 2918 §4 / RFC 7313: the peer asks for the table of `refresh.family` again. A family
    /// this module cannot carry or that the session did not negotiate is ignored (RFC 2918 §4:
    /// "shall ignore such a message"); repeated requests are rate-limited (`RouteRefreshGuard`).
    func routeRefreshRequested(_ refresh: RouteRefreshMessage, on attempt: SessionAttempt) {
        loop.preconditionInEventLoop()
        guard let family = refresh.family.ipFamily, attempt.parameters?.families.contains(refresh.family) == true else {
            logger.info("route refresh for a family the session does not carry: ignored (RFC 2918 §4)", metadata: ["family": "\(refresh.family)"])
            return
        }
        switch refreshGuard.decide(family, now: EventLoop.now()) {
        case .resendNow:
            logger.info("route refresh requested by peer", metadata: ["family": "\(refresh.family)"])
            resendAll(family: family)
        case .deferred(let after):
            counters.routeRefreshesDeferred += 1
            guard let after else { return }
            logger.info("route refresh requested again within \(RouteRefreshGuard.interval): merged into one re-send when it ends",
                        metadata: ["family": "\(refresh.family)"])
            refreshGuard.deferred[family] = loop.scheduleTimer(after: after) { [weak self, weak attempt] in
                guard let self else { return }
                self.refreshGuard.deferred[family] = nil
                // Only for the session that asked: a new session gets its whole table anyway.
                guard let attempt, attempt === self.session else { return }
                self.refreshGuard.lastResend[family] = EventLoop.now()
                self.resendAll(family: family)
            }
        }
    }
}
