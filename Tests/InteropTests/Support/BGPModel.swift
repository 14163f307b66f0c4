import Foundation
import IP

// The small, daemon-neutral description of a BGP speaker that the BIRD, GoBGP and FRR config
// generators all accept, and the common shape their route and session readers return.

/// A standard community (RFC 1997), written "65001:42".
struct Community: Hashable, Sendable, CustomStringConvertible {
    var asn: UInt16
    var value: UInt16

    init(_ asn: UInt16, _ value: UInt16) {
        self.asn = asn
        self.value = value
    }

    init(raw: UInt32) { self.init(UInt16(raw >> 16), UInt16(raw & 0xFFFF)) }

    var raw: UInt32 { UInt32(asn) << 16 | UInt32(value) }

    /// "65001:42", or one of the well-known names FRR prints ("no-export", …).
    init?(_ text: String) {
        let wellKnown: [String: UInt32] = [
            "no-export": 0xFFFF_FF01, "no-advertise": 0xFFFF_FF02, "local-AS": 0xFFFF_FF03, "no-peer": 0xFFFF_FF04,
            "graceful-shutdown": 0xFFFF_0000, "accept-own": 0xFFFF_0001, "llgr-stale": 0xFFFF_0006,
            "no-llgr": 0xFFFF_0007, "blackhole": 0xFFFF_029A,
        ]
        if let raw = wellKnown[text] {
            self.init(raw: raw)
            return
        }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let asn = UInt16(parts[0]), let value = UInt16(parts[1]) else { return nil }
        self.init(asn, value)
    }

    var description: String { "\(asn):\(value)" }
}

/// A large community (RFC 8092), written "65001:1:2".
struct LargeCommunity: Hashable, Sendable, CustomStringConvertible {
    var global: UInt32
    var local1: UInt32
    var local2: UInt32

    init(_ global: UInt32, _ local1: UInt32, _ local2: UInt32) {
        self.global = global
        self.local1 = local1
        self.local2 = local2
    }

    init?(_ text: String) {
        let parts = text.split(separator: ":").map { UInt32($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let a = parts[0], let b = parts[1], let c = parts[2] else { return nil }
        self.init(a, b, c)
    }

    var description: String { "\(global):\(local1):\(local2)" }
}

enum Origin: String, Hashable, Sendable {
    case igp, egp, incomplete
}

/// One neighbor of a daemon under test (typically Herald's address).
struct Neighbor: Sendable {
    var address: IPAddress
    var asn: UInt32
    /// TCP MD5 signature (RFC 2385) password.
    var password: String?
    /// eBGP multihop: the TTL the daemon sends with (nil: directly connected).
    var multihopTTL: Int?
    /// GTSM (RFC 5082): send with TTL 255 and accept only TTL ≥ 256 - hops (1: directly
    /// connected). Takes the place of `multihopTTL`.
    var gtsmHops: Int?
    /// Only accept connections, never connect.
    var passive: Bool = false
    /// Advertise the ADD-PATH receive capability for the unicast families.
    var addPathReceive: Bool = false
    /// BFD for this session (`bfd on` in BIRD), with the daemon's `bfd` timers.
    var bfd: Bool = false
    /// The families exchanged on this session; both by default (IPv6 over an IPv4 session
    /// needs an IPv6 next hop, which the generators take from `DaemonConfig.localIPv6`).
    var families: [IPFamily] = [.ipv4, .ipv6]
    /// RFC 8950: IPv4 routes with IPv6 next hops on an IPv6 session (`extended next hop on` in
    /// BIRD's ipv4 channel).
    var extendedNextHop: Bool = false

    init(address: IPAddress, asn: UInt32, password: String? = nil, multihopTTL: Int? = nil, gtsmHops: Int? = nil,
         passive: Bool = false, addPathReceive: Bool = false, families: [IPFamily] = [.ipv4, .ipv6]) {
        self.address = address
        self.asn = asn
        self.password = password
        self.multihopTTL = multihopTTL
        self.gtsmHops = gtsmHops
        self.passive = passive
        self.addPathReceive = addPathReceive
        self.families = families
    }
}

/// A route the daemon originates itself.
struct OriginatedRoute: Sendable {
    var prefix: IPPrefix
    /// nil: the daemon's own address on the session (next-hop self).
    var nextHop: IPAddress?
    var communities: [Community] = []
    var largeCommunities: [LargeCommunity] = []
    var med: UInt32?
    var localPref: UInt32?

    init(prefix: IPPrefix, nextHop: IPAddress? = nil, communities: [Community] = [], largeCommunities: [LargeCommunity] = [],
         med: UInt32? = nil, localPref: UInt32? = nil) {
        self.prefix = prefix
        self.nextHop = nextHop
        self.communities = communities
        self.largeCommunities = largeCommunities
        self.med = med
        self.localPref = localPref
    }
}

/// What every daemon config generator takes.
struct DaemonConfig: Sendable {
    var asn: UInt32
    var routerID: IPv4Address
    /// The daemon's own addresses on the session's link: the session source and the next hop it
    /// announces for each family (nil: let the daemon choose).
    var localIPv4: IPAddress?
    var localIPv6: IPAddress?
    var neighbors: [Neighbor]
    var routes: [OriginatedRoute] = []
    var gracefulRestart: Bool = false
    /// Proposed hold time in seconds (keepalive is a third of it).
    var holdTime: Int = 9
    /// BFD timers (ms) for neighbours with `bfd`: min rx, min tx, multiplier.
    var bfdTimers: (minRx: Int, minTx: Int, multiplier: Int) = (300, 300, 3)

    init(asn: UInt32, routerID: IPv4Address, localIPv4: IPAddress? = nil, localIPv6: IPAddress? = nil, neighbors: [Neighbor],
         routes: [OriginatedRoute] = [], gracefulRestart: Bool = false, holdTime: Int = 9) {
        self.asn = asn
        self.routerID = routerID
        self.localIPv4 = localIPv4
        self.localIPv6 = localIPv6
        self.neighbors = neighbors
        self.routes = routes
        self.gracefulRestart = gracefulRestart
        self.holdTime = holdTime
    }

    /// A config whose local addresses are `end`'s, with `end.ipv4` as router ID.
    init(asn: UInt32, on end: LinkEnd, neighbors: [Neighbor], routes: [OriginatedRoute] = [], gracefulRestart: Bool = false,
         holdTime: Int = 9) {
        guard case .v4(let id) = end.ipv4 else { preconditionFailure("link ends always have IPv4") }
        self.init(asn: asn, routerID: id, localIPv4: end.ipv4, localIPv6: end.ipv6, neighbors: neighbors, routes: routes,
                  gracefulRestart: gracefulRestart, holdTime: holdTime)
    }

    func localAddress(_ family: IPFamily) -> IPAddress? { family == .ipv4 ? localIPv4 : localIPv6 }
}

/// One path as a daemon reports it, the same shape for all three readers.
struct ObservedPath: Hashable, Sendable, CustomStringConvertible {
    var prefix: IPPrefix
    var nextHop: IPAddress?
    /// AS_PATH flattened (AS_SET members appear in order, like the daemons print them).
    var asPath: [UInt32]
    var origin: Origin?
    var med: UInt32?
    var localPref: UInt32?
    var communities: [Community]
    var largeCommunities: [LargeCommunity]
    /// The ADD-PATH path identifier, when the daemon shows one.
    var pathID: UInt32?
    /// Marked stale (graceful restart), when the daemon shows it.
    var stale: Bool
    /// The neighbor the path came from, when the daemon shows it.
    var neighbor: IPAddress?

    init(prefix: IPPrefix, nextHop: IPAddress? = nil, asPath: [UInt32] = [], origin: Origin? = nil, med: UInt32? = nil,
         localPref: UInt32? = nil, communities: [Community] = [], largeCommunities: [LargeCommunity] = [],
         pathID: UInt32? = nil, stale: Bool = false, neighbor: IPAddress? = nil) {
        self.prefix = prefix
        self.nextHop = nextHop
        self.asPath = asPath
        self.origin = origin
        self.med = med
        self.localPref = localPref
        self.communities = communities
        self.largeCommunities = largeCommunities
        self.pathID = pathID
        self.stale = stale
        self.neighbor = neighbor
    }

    var description: String {
        var parts = ["\(prefix)", "nh \(nextHop.map(String.init(describing:)) ?? "-")",
                     "as-path [\(asPath.map(String.init).joined(separator: " "))]"]
        if let origin { parts.append("origin \(origin.rawValue)") }
        if let med { parts.append("med \(med)") }
        if let localPref { parts.append("local-pref \(localPref)") }
        if !communities.isEmpty { parts.append("communities \(communities)") }
        if !largeCommunities.isEmpty { parts.append("large \(largeCommunities)") }
        if let pathID { parts.append("path-id \(pathID)") }
        if stale { parts.append("stale") }
        if let neighbor { parts.append("from \(neighbor)") }
        return parts.joined(separator: ", ")
    }
}

/// RFC 4271 session states, as all three daemons name them.
enum SessionState: String, Hashable, Sendable {
    case idle, connect, active, openSent, openConfirm, established

    /// Parses the daemons' spellings ("Established", "OpenSent", "BGP_FSM_ESTABLISHED", "Clearing"…).
    init(daemonText text: String) {
        let key = text.lowercased().replacingOccurrences(of: "bgp_fsm_", with: "").replacingOccurrences(of: "_", with: "")
        switch key {
        case "connect": self = .connect
        case "active": self = .active
        case "opensent": self = .openSent
        case "openconfirm": self = .openConfirm
        case "established": self = .established
        default: self = .idle
        }
    }
}

/// A neighbor's session as a daemon reports it.
struct NeighborStatus: Hashable, Sendable, CustomStringConvertible {
    var address: IPAddress
    var state: SessionState
    var remoteASN: UInt32?
    /// The daemon's last error / reset reason, if it shows one.
    var lastError: String?

    var description: String {
        "\(address) \(state.rawValue)" + (remoteASN.map { " AS\($0)" } ?? "") + (lastError.map { " (\($0))" } ?? "")
    }
}

/// What the harness can do with any of the three daemons.
protocol BGPDaemon: AnyObject, Sendable {
    /// "BIRD", "GoBGP", "FRR".
    var name: String { get }
    var namespace: NetworkNamespace { get }
    /// The daemon's PID (the child started through `ip netns exec`).
    var pid: Int32 { get }
    /// Paths received from neighbors (not the daemon's own originated routes), both families.
    func receivedRoutes() throws -> [ObservedPath]
    /// Every configured neighbor's session.
    func neighbors() throws -> [NeighborStatus]
    /// The daemon's log (stdout and stderr) for error messages.
    func logTail() -> String
    /// SIGTERM, then SIGKILL; reaped. Idempotent. Also done when the namespace is removed.
    func stop()
}

extension BGPDaemon {
    /// Waits until the session with `address` is Established.
    @discardableResult
    func waitEstablished(with address: IPAddress, timeout: Duration = .seconds(30)) async throws -> NeighborStatus {
        do {
            return try await eventually("\(name) session with \(address) Established", timeout: timeout) {
                try self.neighbors().first { $0.address == address && $0.state == .established }
            }
        } catch {
            let seen = (try? neighbors().map(\.description).joined(separator: "; ")) ?? "?"
            throw HarnessError("\(error)\nneighbors: \(seen)\n\(name) log:\n\(logTail())")
        }
    }

    /// Waits until paths for `prefix` are received and `accept` holds for them; returns them.
    @discardableResult
    func waitForRoute(_ prefix: IPPrefix, timeout: Duration = .seconds(30),
                      where accept: @escaping @Sendable ([ObservedPath]) -> Bool = { !$0.isEmpty }) async throws -> [ObservedPath] {
        do {
            return try await eventually("\(name) to receive \(prefix)", timeout: timeout) {
                let paths = try self.receivedRoutes().filter { $0.prefix == prefix }
                return paths.isEmpty || !accept(paths) ? nil : paths
            }
        } catch {
            let seen = (try? receivedRoutes().map(\.description).joined(separator: "\n  ")) ?? "?"
            throw HarnessError("\(error)\nreceived:\n  \(seen)\n\(name) log:\n\(logTail())")
        }
    }

    /// Waits until no path for `prefix` is received any more.
    func waitForWithdrawal(_ prefix: IPPrefix, timeout: Duration = .seconds(30)) async throws {
        _ = try await eventually("\(name) to withdraw \(prefix)", timeout: timeout) {
            try self.receivedRoutes().contains { $0.prefix == prefix } ? nil : true
        }
    }
}

/// Waits until `command` succeeds inside the daemon's namespace while the daemon stays alive;
/// a daemon that exits during start-up fails at once with its log.
func waitUntilReady(_ child: ChildProcess, name: String, timeout: Duration = .seconds(20),
                    _ probe: @escaping @Sendable () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        if let status = child.exitStatus {
            throw HarnessError("\(name) exited with status \(status) during start-up:\n\(child.logTail())")
        }
        do {
            if try await blocking(probe) { return }
        } catch {
            lastError = error
        }
        if ContinuousClock.now >= deadline {
            throw HarnessError("\(name) did not accept commands within \(timeout)"
                + (lastError.map { ": \($0)" } ?? "") + "\n\(child.logTail())")
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

extension IPAddress {
    /// Parses a daemon's text, failing with the text in the error.
    init(daemonText text: some StringProtocol) throws {
        do { self = try IPAddress(parsing: text) } catch { throw HarnessError("bad address from daemon: \(error)") }
    }
}

extension IPPrefix {
    init(daemonText text: some StringProtocol) throws {
        do { self = try IPPrefix(parsing: text) } catch { throw HarnessError("bad prefix from daemon: \(error)") }
    }
}
