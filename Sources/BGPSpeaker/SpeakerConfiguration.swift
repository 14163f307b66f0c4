public import IP

/// The speaker's configuration as a value: its settings and its peers by name.
///
/// The one place that decides whether a configuration change can be applied and what it does to
/// running sessions. `SpeakerCore` applies every change through it; HeraldCore's committer runs
/// the same change against its own copy inside the database transaction, so a change the
/// speaker would refuse is refused before it is committed, and the history records exactly the
/// session resets that will happen.
public struct SpeakerConfiguration: Sendable, Equatable {
    public private(set) var settings: SpeakerSettings
    public private(set) var peers: [String: PeerSettings]

    public init(settings: SpeakerSettings, peers: [PeerSettings] = []) throws(SpeakerError) {
        self.settings = settings
        self.peers = [:]
        for peer in peers { _ = try apply(.add(peer)) }
    }

    /// One change to the peers.
    public enum PeerChange: Sendable, Equatable {
        case add(PeerSettings)
        case update(PeerSettings)
        case remove(name: String)

        public var name: String {
            switch self {
            case .add(let peer), .update(let peer): peer.name
            case .remove(let name): name
            }
        }
    }

    /// What a peer change does to the peer's session.
    public enum PeerEffect: Sendable, Equatable {
        /// A new peer: its session starts (or waits, when disabled).
        case added
        /// The session is replaced (Cease/Other Configuration Change): these fields are sent in
        /// OPEN or set on the socket.
        case reset(fields: [String])
        /// `enabled` went to false: Cease/Administrative Shutdown, and no new session.
        case disabled
        /// `enabled` went to true: a session starts.
        case enabled
        /// Applied to the running session without a reset (labels re-export, a new prefix limit
        /// is checked, BFD changes its timers with a Poll Sequence, RFC 5880 §6.8.3), or nothing
        /// changed at all.
        case inPlace
        /// Cease/Peer De-configured (6/3) and the peer is forgotten.
        case removed
    }

    /// Applies `change`, or throws without changing anything when the speaker cannot take it.
    public mutating func apply(_ change: PeerChange) throws(SpeakerError) -> PeerEffect {
        switch change {
        case .add(let peer):
            guard peers[peer.name] == nil else { throw .duplicatePeer(peer.name) }
            try checkAddressFree(peer)
            peers[peer.name] = peer
            return .added
        case .update(let new):
            guard let old = peers[new.name] else { throw .unknownPeer(new.name) }
            try checkAddressFree(new)
            peers[new.name] = new
            return Self.effect(of: old, becoming: new)
        case .remove(let name):
            guard peers.removeValue(forKey: name) != nil else { throw .unknownPeer(name) }
            return .removed
        }
    }

    /// One peer per neighbour address: inbound sessions are matched by their source address.
    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 neighbour it maps: a
    /// dual-stack listener sees an IPv4 connection from exactly that address.
    private func checkAddressFree(_ peer: PeerSettings) throws(SpeakerError) {
        let address = Self.neighbour(peer.address)
        if let other = peers.values.first(where: { $0.name != peer.name && Self.neighbour($0.address) == address }) {
            throw .duplicateAddress(peer.address, other.name)
        }
    }

    /// The address a neighbour's connections come from, IPv4-mapped addresses unmapped.
    public static func neighbour(_ address: IPAddress) -> IPAddress {
        if case .v6(let v6) = address, let v4 = v6.ipv4Mapped { return .v4(v4) }
        return address
    }

    static func effect(of old: PeerSettings, becoming new: PeerSettings) -> PeerEffect {
        if !new.enabled { return old.enabled ? .disabled : .inPlace }
        if !old.enabled { return .enabled }
        let fields = sessionResetFields(old, new)
        return fields.isEmpty ? .inPlace : .reset(fields: fields)
    }

    /// The fields whose change needs a new session, in the API's words: what is sent in OPEN
    /// (ASN, hold time, families, ADD-PATH, graceful restart) or set on the socket before it
    /// connects (address, port, source address, MD5 key, TTL, GTSM). Labels, the prefix limit,
    /// the connect-retry interval and BFD apply to the running session.
    public static func sessionResetFields(_ old: PeerSettings, _ new: PeerSettings) -> [String] {
        var fields: [String] = []
        func check<T: Equatable>(_ name: String, _ value: (PeerSettings) -> T) {
            if value(old) != value(new) { fields.append(name) }
        }
        check("address") { $0.address }
        check("port") { $0.port }
        check("asn") { $0.asn }
        check("local_address") { $0.localAddress }
        check("password") { $0.password }
        check("ebgp_multihop") { $0.ebgpMultihop }
        check("ttl_security") { $0.ttlSecurity }
        check("hold_time") { $0.holdTime }
        check("keepalive_time") { $0.keepaliveTime }
        check("passive") { $0.passive }
        check("families") { $0.families }
        check("add_path_send") { $0.addPathSend }
        check("add_path_receive") { $0.addPathReceive }
        check("graceful_restart") { $0.gracefulRestart }
        check("other_family_next_hop") { $0.otherFamilyNextHop }
        return fields
    }

    /// What new speaker settings do.
    public struct SettingsEffect: Sendable, Equatable {
        /// The ASN or router ID changed: both are in every OPEN, so every enabled session is
        /// reset (Cease/Other Configuration Change, RFC 4486). In words, for the reset's reason.
        public var identityChange: [String] = []
        /// The listener address or port changed: the listeners are bound again.
        public var rebindsListeners = false
    }

    /// Applies new speaker settings: who we are, where we listen, the session defaults. What
    /// belongs to this process rather than to the configuration — the restart flag, the BFD
    /// port, the back-off and send-hold policies — stays as the process started with it.
    public mutating func apply(settings new: SpeakerSettings) -> SettingsEffect {
        let old = settings
        var effect = SettingsEffect()
        if old.asn != new.asn { effect.identityChange.append("AS \(old.asn) → \(new.asn)") }
        if old.routerID != new.routerID { effect.identityChange.append("router ID \(old.routerID) → \(new.routerID)") }
        effect.rebindsListeners = old.listenAddresses != new.listenAddresses || old.listenPort != new.listenPort
        settings = new
        settings.restarting = old.restarting
        settings.bfdPort = old.bfdPort
        settings.idleHoldTime = old.idleHoldTime
        settings.maximumIdleHoldTime = old.maximumIdleHoldTime
        settings.defaultLocalPreference = old.defaultLocalPreference
        settings.sendHoldTime = old.sendHoldTime
        return effect
    }
}

/// Errors of the speaker's management API: a change it cannot apply.
public enum SpeakerError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownPeer(String)
    case duplicatePeer(String)
    case duplicateAddress(IPAddress, String)

    public var description: String {
        switch self {
        case .unknownPeer(let name): "no peer \(name)"
        case .duplicatePeer(let name): "peer \(name) already exists"
        case .duplicateAddress(let address, let name):
            "address \(address) is already peer \(name): inbound sessions are matched by address, so one peer per address"
        }
    }
}
