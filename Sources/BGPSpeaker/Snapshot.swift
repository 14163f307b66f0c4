public import BGP
public import IP
import Glibc

/// Unix time in milliseconds (wall clock, for display).
func wallClockMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The RFC 4271 session state of a peer, as shown to people.
public enum PeerState: String, Sendable, Hashable {
    case disabled, idle, connect, active, openSent = "opensent", openConfirm = "openconfirm", established
}

/// A NOTIFICATION that ended a session.
public struct NotificationInfo: Sendable, Hashable {
    public enum Direction: String, Sendable, Hashable { case sent, received }
    public var direction: Direction
    public var code: UInt8
    public var subcode: UInt8
    /// "Cease / Administrative Shutdown".
    public var name: String
    /// RFC 8203 shutdown communication, if any.
    public var text: String?

    init(_ message: NotificationMessage, _ direction: Direction) {
        self.direction = direction
        code = message.code
        subcode = message.subcode
        name = NotificationMessage.name(code: message.code, subcode: message.subcode)
        text = message.shutdownCommunication
    }
}

/// Why the last session (or attempt) ended.
public struct PeerError: Sendable, Hashable {
    /// Unix time, milliseconds.
    public var at: Int64
    public var reason: String
    public var notification: NotificationInfo?
}

/// One of a peer's recent errors; the same error in a row is one entry with a count, so a peer
/// refusing every second does not push the operator's hard reset out of the list.
public struct RecentPeerError: Sendable, Hashable {
    public var error: PeerError
    /// Times it happened in a row, the last at `error.at`.
    public var count: Int
    /// Unix time, milliseconds, of the first of them.
    public var firstAt: Int64
}

/// What the OPEN exchange agreed on.
public struct NegotiatedSession: Sendable, Hashable {
    public var holdTime: UInt16
    public var keepaliveTime: UInt16
    public var peerRouterID: IPv4Address
    public var fourOctetASN: Bool
    /// Capability names both sides announced ("route-refresh", "graceful-restart", …).
    public var capabilities: [String]
    public var families: [String]
    public var addPathSend: [String]
    public var addPathReceive: [String]
    public var localAddress: IPAddress?
    /// The next hop this session gives routes of the other family whose next hop is Herald
    /// itself, when it came from the interface of `localAddress` (no `otherFamilyNextHop` set).
    public var learnedOtherFamilyNextHop: IPAddress?
    public var localPort: UInt16?
    public var remotePort: UInt16?
}

public struct PeerCounters: Sendable, Hashable {
    public var messagesIn = 0
    public var messagesOut = 0
    public var updatesIn = 0
    public var updatesOut = 0
    public var prefixesReceived = 0
    /// Received paths whose AS_PATH holds our own AS (RFC 4271 §9.1.2: a loop; marked in the view).
    public var prefixesWithASLoop = 0
    public var prefixesAdvertised = 0
    /// Established sessions that went down.
    public var flaps = 0
    /// Prefixes sent with fewer paths than they have (the peer has no ADD-PATH receive).
    public var prefixesWithFewerPaths = 0
    /// Prefixes not sent: their next hop is Herald itself in a family the session has no address of.
    public var prefixesWithoutNextHop = 0
    /// ROUTE-REFRESH requests merged into a later re-send (`RouteRefreshGuard`).
    public var routeRefreshesDeferred = 0
    /// The most paths the Adj-RIB-In keeps for this peer (`SpeakerSettings.adjRIBInLimit`, or the
    /// peer's max-prefix limit when higher).
    public var receivedLimit = 0
    /// Announcements of new prefixes not kept because the Adj-RIB-In was at its limit.
    public var prefixesNotKept = 0
}

/// One peer, for the API.
public struct PeerSnapshot: Sendable, Hashable {
    public var name: String
    public var address: IPAddress
    public var asn: UInt32
    public var state: PeerState
    /// Unix time, milliseconds, of the current Established session.
    public var establishedAt: Int64?
    public var lastError: PeerError?
    /// The last errors, newest first (at most `PeerDriver.recentErrorLimit`): `lastError` says
    /// only the newest, which a reconnect's failure replaces within seconds of the reason that
    /// explains the state (an operator's reset, a NOTIFICATION).
    public var recentErrors: [RecentPeerError] = []
    public var negotiated: NegotiatedSession?
    public var counters: PeerCounters
    /// A hint for people when the session does not come up (MD5, TTL, max-prefix).
    public var hint: String?
    /// While the session waits out its idle hold back-off (RFC 4271 §8.1.1
    /// DampPeerOscillations): how long this wait is, in seconds, and when (Unix time, ms) the
    /// next attempt starts. The wait doubles with each consecutive failure, so a peer that
    /// resets every second is retried ever less often instead of every second.
    public var idleHoldSeconds: Int? = nil
    public var nextAttemptAt: Int64? = nil
    /// Failures since the session was last stable (the back-off's exponent).
    public var consecutiveFailures: Int = 0
    /// The live BFD session, when BFD is on for the peer.
    public var bfd: BFDSnapshot? = nil
}

/// A peer's BFD session (RFC 5880 §6.8.1 variables, in operator units).
public struct BFDSnapshot: Sendable, Hashable {
    /// `admin_down`, `down`, `init`, `up`.
    public var state: String
    public var localDiscriminator: UInt32
    /// nil until the peer's discriminator is known.
    public var remoteDiscriminator: UInt32?
    public var remoteState: String
    /// Negotiated interval between our packets, ms (before jitter).
    public var transmitInterval: Double
    /// Negotiated detection time, ms; nil before a packet arrived.
    public var detectionTime: Double?
    /// Why the session last left Up (RFC 5880 §4.1 Diag), in words; nil when it never did.
    public var lastDiagnostic: String?
    /// The peer's Diag field.
    public var remoteDiagnostic: String?
    /// Unix ms of the current Up state.
    public var upSince: Int64?
    /// Unix ms of the last state change.
    public var lastChange: Int64?
    public var packetsIn: Int
    public var packetsOut: Int
    /// Packets dropped: malformed (RFC 5880 §6.8.6), no session, or TTL ≠ 255 (RFC 5881 §5).
    public var packetsDiscarded: Int
    /// The last socket error, if any (e.g. the local address is not configured).
    public var error: String?
}

public struct SpeakerSnapshot: Sendable, Hashable {
    public var asn: UInt32
    public var routerID: IPv4Address
    public var listening: [String]
    /// Why the listener is not running, if it is not.
    public var listenError: String?
    public var locRIBPrefixes: Int
    public var peers: [PeerSnapshot]
}

/// A route in a peer's Adj-RIB-Out or Adj-RIB-In, for display.
public struct RIBEntry: Sendable, Hashable {
    public var prefix: IPPrefix
    public var pathID: UInt32?
    public var nextHop: IPAddress?
    public var asPath: [UInt32]
    public var origin: String
    public var med: UInt32?
    public var localPreference: UInt32?
    public var communities: [Community]
    public var largeCommunities: [LargeCommunity]
    /// Unix time, milliseconds (received routes).
    public var receivedAt: Int64?
    /// Kept for a restarting peer until its End-of-RIB (RFC 4724).
    public var stale: Bool
    /// A received path whose AS_PATH holds our own AS (RFC 4271 §9.1.2).
    public var asLoop = false

    init(prefix: IPPrefix, pathID: UInt32?, nextHop: IPAddress?, attributes: [PathAttribute], receivedAt: Int64?, stale: Bool) {
        self.prefix = prefix
        self.pathID = pathID
        self.nextHop = nextHop
        var asns: [UInt32] = []
        for segment in attributes.asPath?.segments ?? [] { asns += segment.asns }
        asPath = asns
        origin = switch attributes.origin {
        case .igp: "igp"
        case .egp: "egp"
        case .incomplete: "incomplete"
        case nil: "?"
        }
        med = attributes.multiExitDiscriminator
        localPreference = attributes.localPreference
        communities = attributes.communities
        largeCommunities = attributes.largeCommunities
        self.receivedAt = receivedAt
        self.stale = stale
    }
}

/// What the speaker reports as it happens.
public enum SpeakerEvent: Sendable, Hashable {
    /// A peer's session changed state; `reason` says why when it went down.
    case peerStateChanged(peer: String, from: PeerState, to: PeerState, reason: String?, notification: NotificationInfo?)
    /// The Loc-RIB changed (after `apply`).
    case routesChanged(announced: [IPPrefix], withdrawn: [IPPrefix])
    /// A peer's Adj-RIB-In changed.
    case receivedRoutesChanged(peer: String, announced: Int, withdrawn: Int)
    /// A peer went over its max-prefix limit.
    case maxPrefixExceeded(peer: String, count: Int, limit: Int)
    /// A peer finished sending its table (End-of-RIB) or we finished ours.
    case endOfRIB(peer: String, family: String, direction: NotificationInfo.Direction)
    /// A peer's BFD session changed state (`diagnostic` in words, RFC 5880 §4.1).
    case bfdStateChanged(peer: String, from: String, to: String, diagnostic: String)
}
