public import BGP
public import IP

// The speaker's own input types. HeraldCore maps its `PeerConfig`, `DesiredRoute`/`RoutePath`
// and `AnnounceAttributes` onto these; BGPSpeaker never sees the database or JSON.

/// Speaker-wide settings: who we are and where we listen.
public struct SpeakerSettings: Sendable, Hashable {
    public var asn: UInt32
    public var routerID: IPv4Address
    /// Addresses to accept sessions on (e.g. `0.0.0.0` and `::`); empty: outgoing sessions only.
    public var listenAddresses: [IPAddress]
    /// 179 by default; 0 picks a free port (tests), see `Speaker.listeningAddresses()`.
    public var listenPort: UInt16
    /// Hold time we offer when the peer has none configured (RFC 4271 §10 suggests 90 s).
    public var holdTime: UInt16
    /// Seconds between KEEPALIVEs when the peer has none configured; nil or 0: a third of the
    /// negotiated hold time. Never more than that third (RFC 4271 §10).
    public var keepaliveTime: Int?
    /// Seconds between outgoing connection attempts.
    public var connectRetryTime: Int
    /// First back-off after a failure (doubles up to `maximumIdleHoldTime`, RFC 4271 §8.1.1).
    public var idleHoldTime: Int
    public var maximumIdleHoldTime: Int
    /// LOCAL_PREF sent to iBGP peers when a path has none.
    public var defaultLocalPreference: UInt32
    /// RFC 4724 restart time we advertise.
    public var gracefulRestartTime: UInt16
    /// This process follows a planned restart (`shutdown(mode: .gracefulRestart)`, then a new
    /// process): RFC 4724's Restart State and Forwarding State bits are set, so that helpers keep
    /// our routes until our End-of-RIB — in each peer's OPENs only until that End-of-RIB went
    /// out or the restart time passed (see `PeerDriver.restarting`).
    public var restarting: Bool
    /// UDP port of BFD Control packets, sent to and received on (RFC 5881 §4: 3784). Tests that
    /// run two speakers on one host may pick another.
    public var bfdPort: UInt16
    /// RFC 9687 SendHoldTime in seconds: an Established session whose peer takes no data for
    /// this long is closed. nil: the RFC's suggestion, the larger of 8 minutes and twice the
    /// negotiated Hold Time (Herald applies it with Hold Time 0 too: a peer that reads nothing
    /// is gone whatever it negotiated).
    public var sendHoldTime: Int?
    /// Paths kept per peer in the Adj-RIB-In, which Herald keeps for display only: a peer
    /// cannot grow the process without bound. A peer's `maxPrefixes` above it raises it, so the
    /// max-prefix action still sees every prefix up to its limit.
    public var adjRIBInLimit: Int

    public init(asn: UInt32, routerID: IPv4Address, listenAddresses: [IPAddress] = [], listenPort: UInt16 = 179,
                holdTime: UInt16 = 90, keepaliveTime: Int? = nil, connectRetryTime: Int = 30, idleHoldTime: Int = 5, maximumIdleHoldTime: Int = 120,
                defaultLocalPreference: UInt32 = 100, gracefulRestartTime: UInt16 = 120, restarting: Bool = false,
                bfdPort: UInt16 = 3784,
                sendHoldTime: Int? = nil, adjRIBInLimit: Int = SpeakerSettings.defaultAdjRIBInLimit) {
        self.sendHoldTime = sendHoldTime
        self.adjRIBInLimit = adjRIBInLimit
        self.asn = asn
        self.routerID = routerID
        self.listenAddresses = listenAddresses
        self.listenPort = listenPort
        self.holdTime = holdTime
        self.keepaliveTime = keepaliveTime
        self.connectRetryTime = connectRetryTime
        self.idleHoldTime = idleHoldTime
        self.maximumIdleHoldTime = maximumIdleHoldTime
        self.defaultLocalPreference = defaultLocalPreference
        self.gracefulRestartTime = gracefulRestartTime
        self.restarting = restarting
        self.bfdPort = bfdPort
    }
}

extension SpeakerSettings {
    /// 100,000 paths: several times a homelab router's own table, far below a full Internet
    /// table (about 1,000,000), which Herald has no use for.
    public static let defaultAdjRIBInLimit = 100_000
}

/// BFD for a peer (RFC 5880 asynchronous mode, RFC 5881 single hop). Milliseconds.
public struct PeerBFDSettings: Sendable, Hashable {
    /// Desired Min TX Interval once Up (RFC 5880 §6.8.3 keeps it ≥ 1 s while not Up).
    public var minTx: Int
    /// Required Min RX Interval: the fastest we accept packets.
    public var minRx: Int
    /// Detect Mult: packets the peer may miss before it declares us down.
    public var multiplier: Int

    public init(minTx: Int = 300, minRx: Int = 300, multiplier: Int = 3) {
        self.minTx = minTx
        self.minRx = minRx
        self.multiplier = multiplier
    }
}

/// What to do when a peer sends more prefixes than allowed (RFC 4486).
public struct MaxPrefixLimit: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Log and report, keep the session.
        case warn
        /// Cease/1 (Maximum Number of Prefixes Reached), then restart after the idle hold back-off.
        case restart
    }
    public var limit: Int
    public var action: Action

    public init(_ limit: Int, action: Action = .restart) {
        self.limit = limit
        self.action = action
    }
}

/// One configured neighbour (maps from HeraldCore's `PeerConfig`).
public struct PeerSettings: Sendable, Hashable {
    /// Unique name (the API's key).
    public var name: String
    public var address: IPAddress
    public var port: UInt16
    public var asn: UInt32
    /// Source address of outgoing connections (and the "self" next hop), nil: the kernel's choice.
    public var localAddress: IPAddress?
    /// The next hop "self" for the other family (an IPv6 address for IPv6 routes over an IPv4
    /// session, or the reverse). Without it such routes are not sent on this session.
    public var otherFamilyNextHop: IPAddress?
    /// RFC 2385 TCP MD5 key. Fail closed: if it cannot be installed, the session does not start.
    public var password: String?
    /// eBGP multihop TTL (eBGP default is 1).
    public var ebgpMultihop: Int?
    /// RFC 5082 GTSM: the peer is this many hops away (TTL 255 out, minimum 256 − hops in).
    public var ttlSecurity: Int?
    /// Hold time we offer; nil: the speaker's.
    public var holdTime: UInt16?
    /// Seconds between KEEPALIVEs; nil: the speaker's (capped at a third of the hold time).
    public var keepaliveTime: Int?
    public var connectRetryTime: Int?
    public var passive: Bool
    public var families: Set<IPFamily>
    /// RFC 7911: send every path of a prefix when the peer can receive several.
    public var addPathSend: Bool
    /// RFC 7911: accept several paths per prefix from the peer.
    public var addPathReceive: Bool
    public var gracefulRestart: Bool
    public var maxPrefixes: MaxPrefixLimit?
    /// Matched against `Path.peerSelector`.
    public var labels: [String: String]
    public var enabled: Bool
    /// BFD with the peer (nil: off). A BFD session that goes from Up to Down tears the BGP
    /// session down at once; BFD that never came up never does (RFC 5882 §3.2).
    public var bfd: PeerBFDSettings?

    public init(name: String, address: IPAddress, asn: UInt32, port: UInt16 = 179, localAddress: IPAddress? = nil,
                otherFamilyNextHop: IPAddress? = nil, password: String? = nil, ebgpMultihop: Int? = nil, ttlSecurity: Int? = nil,
                holdTime: UInt16? = nil, keepaliveTime: Int? = nil, connectRetryTime: Int? = nil, passive: Bool = false, families: Set<IPFamily> = [.ipv4],
                addPathSend: Bool = false, addPathReceive: Bool = false, gracefulRestart: Bool = true,
                maxPrefixes: MaxPrefixLimit? = nil, labels: [String: String] = [:], enabled: Bool = true,
                bfd: PeerBFDSettings? = nil) {
        self.name = name
        self.address = address
        self.asn = asn
        self.port = port
        self.localAddress = localAddress
        self.otherFamilyNextHop = otherFamilyNextHop
        self.password = password
        self.ebgpMultihop = ebgpMultihop
        self.ttlSecurity = ttlSecurity
        self.holdTime = holdTime
        self.keepaliveTime = keepaliveTime
        self.connectRetryTime = connectRetryTime
        self.passive = passive
        self.families = families
        self.addPathSend = addPathSend
        self.addPathReceive = addPathReceive
        self.gracefulRestart = gracefulRestart
        self.maxPrefixes = maxPrefixes
        self.labels = labels
        self.enabled = enabled
        self.bfd = bfd
    }
}

/// One way to reach a prefix, with the attributes it is announced with.
public struct Path: Sendable, Hashable {
    public enum NextHop: Sendable, Hashable, Comparable {
        /// The session's local address ("next hop self").
        case session
        /// A node's address: a third-party next hop (RFC 4271 §5.1.3).
        case address(IPAddress)
    }

    public var nextHop: NextHop
    public var communities: [Community]
    public var largeCommunities: [LargeCommunity]
    public var med: UInt32?
    /// Sent to iBGP peers only (default: the speaker's `defaultLocalPreference`).
    public var localPreference: UInt32?
    /// Extra copies of the local AS (eBGP only).
    public var asPathPrepend: Int
    /// Labels a peer must carry to receive this path; empty: every peer.
    public var peerSelector: [String: String]

    public init(nextHop: NextHop = .session, communities: [Community] = [], largeCommunities: [LargeCommunity] = [],
                med: UInt32? = nil, localPreference: UInt32? = nil, asPathPrepend: Int = 0, peerSelector: [String: String] = [:]) {
        self.nextHop = nextHop
        self.communities = communities
        self.largeCommunities = largeCommunities
        self.med = med
        self.localPreference = localPreference
        self.asPathPrepend = asPathPrepend
        self.peerSelector = peerSelector
    }
}

/// A prefix Herald originates, with one or more paths.
public struct Route: Sendable, Hashable {
    public var prefix: IPPrefix
    public var paths: [Path]

    public init(prefix: IPPrefix, paths: [Path]) {
        self.prefix = prefix
        self.paths = paths
    }

    public init(prefix: IPPrefix, path: Path = Path()) {
        self.init(prefix: prefix, paths: [path])
    }
}

/// Worse paths on purpose: a cluster replica that lost the quorum keeps announcing what it last
/// knew, but with these, so the router prefers the replicas that still have it.
public struct PathPenalty: Sendable, Hashable {
    /// Added to each path's MED (a path without MED counts as 0; saturates).
    public var med: UInt32
    /// Extra copies of the local AS in the AS_PATH (eBGP).
    public var prepend: Int

    public init(med: UInt32 = 0, prepend: Int = 0) {
        self.med = med
        self.prepend = prepend
    }
}

/// How `Speaker.shutdown(mode:)` leaves the peers.
public enum ShutdownMode: Sendable, Hashable {
    /// Cease/Administrative Shutdown with a message (RFC 8203): peers withdraw our routes.
    case withdraw(message: String?)
    /// Close the connections without a NOTIFICATION: graceful-restart helpers keep our routes
    /// until the next process sends End-of-RIB (or the restart time passes).
    case gracefulRestart
}

/// What logs and `dump` show of a neighbour: who it is, and whether a password is set — never
/// the password: interpolating settings into a log line must not print the MD5 key.
extension PeerSettings: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "PeerSettings(name: \(name), address: \(address), port: \(port), asn: \(asn), password: \(password == nil ? "none" : "set"), enabled: \(enabled))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "address": address, "port": port, "asn": asn,
                                "password": password == nil ? "none" : "set", "enabled": enabled], displayStyle: .struct)
    }
}
