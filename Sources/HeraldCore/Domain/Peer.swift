public import IP
public import Store

/// An address family a BGP session may carry (RFC 4760 AFI/SAFI), as operators write it.
public enum PeerFamily: String, Sendable, CaseIterable, Codable, Comparable {
    case ipv4Unicast = "ipv4-unicast"
    case ipv6Unicast = "ipv6-unicast"

    public static func < (lhs: PeerFamily, rhs: PeerFamily) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// BFD with a peer (RFC 5880 asynchronous mode, RFC 5881 single hop). Milliseconds.
public struct PeerBFD: Sendable, Equatable {
    public var enabled: Bool = false
    /// Desired Min TX Interval once Up.
    public var minTx: Int = 300
    /// Required Min RX Interval.
    public var minRx: Int = 300
    /// Detect Mult.
    public var multiplier: Int = 3

    public init(enabled: Bool = false, minTx: Int = 300, minRx: Int = 300, multiplier: Int = 3) {
        self.enabled = enabled
        self.minTx = minTx
        self.minRx = minRx
        self.multiplier = multiplier
    }
}

/// Everything configured about a BGP neighbour, password included. Only the speaker sees this
/// type; what the API returns is `Peer`, which says whether a password is set but never what it is.
public struct PeerConfig: Sendable, Equatable {
    public var address: IPAddress
    public var port: UInt16 = 179
    public var asn: UInt32
    public var localAddress: IPAddress?
    /// The next hop for routes of the other family than `address` that Herald announces as its
    /// own ("self"): an IPv6 address for IPv6 routes on an IPv4 session, or the other way round.
    public var otherFamilyNextHop: IPAddress?
    /// RFC 2385 TCP MD5 key.
    public var password: String?
    /// eBGP multihop: the TTL of outgoing packets (1 = directly connected, the eBGP default).
    public var ebgpMultihop: Int?
    /// RFC 5082 GTSM: the peer is this many hops away; TTL 255 out, at least 256 − hops in.
    public var ttlSecurity: Int?
    /// Nil: the speaker's default.
    public var holdTime: Int?
    public var keepaliveTime: Int?
    public var connectRetryTime: Int?
    /// Wait for the peer to connect; never connect out.
    public var passive: Bool = false
    public var families: [PeerFamily] = [.ipv4Unicast]
    /// RFC 7911: send several paths per prefix when the peer can receive them.
    public var addPathSend: Bool = false
    public var gracefulRestart: Bool = true
    /// Most prefixes accepted from the peer before the session is closed (RFC 4486 Cease 1).
    public var maxPrefixes: Int?
    public var labels: [String: String] = [:]
    public var enabled: Bool = true
    public var description: String = ""
    /// BFD: a session that goes from Up to Down closes the BGP session at once.
    public var bfd = PeerBFD()

    public init(address: IPAddress, asn: UInt32) {
        self.address = address
        self.asn = asn
    }

    func validate(into validator: inout Validator) {
        if address.isUnspecified || address.isMulticast { validator.add("address", "\(address) cannot be a BGP neighbour") }
        if let problem = Self.addressProblem(address) { validator.add("address", problem) }
        if let local = localAddress, let problem = Self.addressProblem(local) { validator.add("local_address", problem) }
        if port == 0 { validator.add("port", "must be 1–65535") }
        if !BGPLimits.isValidASN(Int64(asn)) { validator.add("asn", BGPLimits.asnRule) }
        if let local = localAddress, local.family != address.family {
            validator.add("local_address", "\(local) is not of the neighbour address's family")
        }
        if let hop = otherFamilyNextHop {
            if hop.family == address.family {
                validator.add("other_family_next_hop", "\(hop) is of the session's own family: give an \(address.family == .ipv4 ? "IPv6" : "IPv4") address (the session's own family uses its local address)")
            } else if hop.isUnspecified || hop.isMulticast || hop.isLoopback {
                validator.add("other_family_next_hop", "\(hop) cannot be a next hop")
            } else if let problem = Self.addressProblem(hop) {
                validator.add("other_family_next_hop", problem)
            }
        }
        if let password, password.utf8.isEmpty || password.utf8.count > 80 {
            validator.add("password", "TCP MD5 keys are 1–80 bytes (Linux TCP_MD5SIG_MAXKEYLEN)")
        }
        if let hops = ebgpMultihop, !(1...255).contains(hops) { validator.add("ebgp_multihop", "is a TTL: 1–255") }
        if let hops = ttlSecurity, !(1...254).contains(hops) { validator.add("ttl_security", "is a hop count: 1–254") }
        if ebgpMultihop != nil && ttlSecurity != nil {
            validator.add("ttl_security", "cannot be combined with ebgp_multihop: GTSM sends with TTL 255 and checks the incoming TTL instead")
        }
        if let hold = holdTime, !BGPLimits.isValidHoldTime(hold) { validator.add("hold_time", BGPLimits.holdTimeRule) }
        if let keepalive = keepaliveTime, let problem = BGPLimits.keepaliveProblem(keepalive, holdTime: holdTime) {
            validator.add("keepalive_time", problem)
        }
        if let retry = connectRetryTime, !BGPLimits.connectRetryTimes.contains(retry) { validator.add("connect_retry_time", BGPLimits.connectRetryRule) }
        if families.isEmpty { validator.add("families", "at least one of ipv4-unicast, ipv6-unicast") }
        if Set(families).count != families.count { validator.add("families", "lists a family twice") }
        if let max = maxPrefixes, max < 1 { validator.add("max_prefixes", "must be at least 1") }
        Labels.validate(labels, field: "labels", into: &validator)
        validator.checkDescription(description)
        // Herald keeps BFD timers on its event loop: 10 ms is the finest it promises to hold.
        if !(10...60_000).contains(bfd.minTx) { validator.add("bfd.min_tx", "must be 10–60000 ms") }
        if !(10...60_000).contains(bfd.minRx) { validator.add("bfd.min_rx", "must be 10–60000 ms") }
        if !(1...255).contains(bfd.multiplier) { validator.add("bfd.multiplier", "must be 1–255 (RFC 5880 §4.1 Detect Mult)") }
        if bfd.enabled, ebgpMultihop.map({ $0 > 1 }) == true || ttlSecurity.map({ $0 > 1 }) == true {
            validator.add("bfd.enabled", "BFD is single-hop (RFC 5881): the peer must be directly connected, not multihop")
        }
    }
}

extension PeerConfig {
    /// Addresses a session could never use, and what to write instead.
    static func addressProblem(_ address: IPAddress) -> String? {
        guard case .v6(let v6) = address else { return nil }
        if let v4 = v6.ipv4Mapped {
            // Sessions and the one-peer-per-address rule go by the address as written, so
            // ::ffff:192.0.2.1 would be a second peer for 192.0.2.1.
            return "\(address) is an IPv4-mapped IPv6 address: use \(v4)"
        }
        if v6.isLinkLocal {
            // A link-local address means something only with its interface (fe80::1%eth0): the
            // socket needs the interface's scope id, and Herald does not carry zones through its
            // sessions, BFD and TCP MD5 keys, so connect(2) would fail with EINVAL.
            return "\(address) is link-local, and a link-local peer needs an interface (fe80::1%eth0), which Herald cannot use yet: use the neighbour's global or unique-local address"
        }
        return nil
    }
}

/// What logs and `dump` show of a configuration: the neighbour and whether a password is set —
/// never the password. (`description` is the operator's text, so `"\(config)"` goes through
/// the mirror below.)
extension PeerConfig: CustomDebugStringConvertible, CustomReflectable {
    public var debugDescription: String {
        "PeerConfig(address: \(address), port: \(port), asn: \(asn), password: \(password == nil ? "none" : "set"), enabled: \(enabled))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["address": address, "port": port, "asn": asn,
                                "password": password == nil ? "none" : "set", "enabled": enabled], displayStyle: .struct)
    }
}

/// A stored peer as the API shows it: the configuration without the password.
public struct Peer: Sendable, Equatable {
    public var name: String
    public var config: PeerConfig
    public var createdAt: Int64
    public var updatedAt: Int64

    public var passwordSet: Bool { config.password != nil }
}

/// Peers in the database.
public enum Peers {
    static let selectSQL = """
        SELECT name, address, port, asn, local_address, password, ebgp_multihop, ttl_security, hold_time, keepalive_time,
               connect_retry_time, passive, families, add_path_send, graceful_restart, max_prefixes, labels, enabled, description,
               bfd_enabled, bfd_min_tx, bfd_min_rx, bfd_multiplier, other_family_next_hop, created_at, updated_at FROM peers
        """

    public static func get(_ db: Database, name: String) throws -> Peer? {
        try db.firstRow(selectSQL + " WHERE name = ?", [name]).map(peer)
    }

    public static func list(_ db: Database) throws -> [Peer] {
        try db.rows(selectSQL + " ORDER BY name").map(peer)
    }

    /// Up to `limit` peers after the name `after`, in name order.
    public static func page(_ db: Database, after: String?, limit: Int) throws -> [Peer] {
        try db.rows(selectSQL + " WHERE name > ? ORDER BY name LIMIT ?", [after ?? "", limit]).map(peer)
    }

    private static func peer(_ row: Row) throws -> Peer {
        var config = PeerConfig(address: try IPAddress(parsing: row.get("address", as: String.self)), asn: try row.get("asn"))
        config.port = UInt16(try row.get("port", as: Int.self))
        config.localAddress = try row.get("local_address", as: String?.self).map { try IPAddress(parsing: $0) }
        config.password = try row.get("password")
        config.ebgpMultihop = try row.get("ebgp_multihop")
        config.ttlSecurity = try row.get("ttl_security")
        config.holdTime = try row.get("hold_time")
        config.keepaliveTime = try row.get("keepalive_time")
        config.connectRetryTime = try row.get("connect_retry_time")
        config.passive = try row.get("passive")
        config.families = try JSONColumn.decode([PeerFamily].self, from: row.get("families"), column: "families")
        config.addPathSend = try row.get("add_path_send")
        config.gracefulRestart = try row.get("graceful_restart")
        config.maxPrefixes = try row.get("max_prefixes")
        config.labels = try row.labels("labels")
        config.enabled = try row.get("enabled")
        config.description = try row.get("description")
        config.bfd = PeerBFD(enabled: try row.get("bfd_enabled"), minTx: try row.get("bfd_min_tx"), minRx: try row.get("bfd_min_rx"),
                             multiplier: try row.get("bfd_multiplier"))
        config.otherFamilyNextHop = try row.get("other_family_next_hop", as: String?.self).map { try IPAddress(parsing: $0) }
        return Peer(name: try row.get("name"), config: config, createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"))
    }

    private static func validate(_ db: Database, name: String, config: PeerConfig) throws {
        var validator = Validator()
        if let problem = ObjectName.validate(name) { validator.add("name", problem) }
        config.validate(into: &validator)
        try validator.finish()
        if let other = try db.firstRow("SELECT name FROM peers WHERE address = ? AND name <> ?", [config.address.description, name])?.get(0, as: String.self) {
            throw DomainError.conflict("address \(config.address) is already peer \"\(other)\": inbound sessions are matched by address, so one peer per address")
        }
    }

    /// Creates a peer; a peer of that name must not exist.
    public static func create(_ db: Database, name: String, config: PeerConfig, now: Int64) throws -> Peer {
        try validate(db, name: name, config: config)
        if try get(db, name: name) != nil { throw DomainError.conflict("peer \"\(name)\" already exists") }
        try db.execute("""
            INSERT INTO peers (name, address, port, asn, local_address, password, ebgp_multihop, ttl_security, hold_time, keepalive_time,
                               connect_retry_time, passive, families, add_path_send, graceful_restart, max_prefixes, labels, enabled,
                               description, bfd_enabled, bfd_min_tx, bfd_min_rx, bfd_multiplier, other_family_next_hop, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, values(name: name, config) + [now, now])
        return try get(db, name: name)!
    }

    /// Replaces a peer's configuration with `change(old)` and returns the peer as stored.
    public static func update(_ db: Database, name: String, now: Int64, _ change: (inout PeerConfig) throws -> Void) throws -> Peer {
        guard let before = try get(db, name: name) else { throw DomainError.notFound(kind: "peer", name: name) }
        var config = before.config
        try change(&config)
        try validate(db, name: name, config: config)
        try db.execute("""
            UPDATE peers SET address = ?, port = ?, asn = ?, local_address = ?, password = ?, ebgp_multihop = ?, ttl_security = ?,
                   hold_time = ?, keepalive_time = ?, connect_retry_time = ?, passive = ?, families = ?, add_path_send = ?,
                   graceful_restart = ?, max_prefixes = ?, labels = ?, enabled = ?, description = ?,
                   bfd_enabled = ?, bfd_min_tx = ?, bfd_min_rx = ?, bfd_multiplier = ?, other_family_next_hop = ?, updated_at = ?
            WHERE name = ?
            """, Array(values(name: name, config).dropFirst()) + [now, name])
        return try get(db, name: name)!
    }

    private static func values(name: String, _ c: PeerConfig) -> [any DatabaseValueConvertible] {
        [name, c.address.description, Int(c.port), c.asn, c.localAddress?.description, c.password, c.ebgpMultihop, c.ttlSecurity,
         c.holdTime, c.keepaliveTime, c.connectRetryTime, c.passive, JSONColumn.encode(c.families.map(\.rawValue)), c.addPathSend,
         c.gracefulRestart, c.maxPrefixes, JSONColumn.encode(c.labels), c.enabled, c.description,
         c.bfd.enabled, c.bfd.minTx, c.bfd.minRx, c.bfd.multiplier, c.otherFamilyNextHop?.description]
    }

    /// Deletes a peer and returns it (the caller closes its session with a Cease).
    @discardableResult
    public static func delete(_ db: Database, name: String) throws -> Peer {
        guard let peer = try get(db, name: name) else { throw DomainError.notFound(kind: "peer", name: name) }
        try db.execute("DELETE FROM peers WHERE name = ?", [name])
        return peer
    }
}
