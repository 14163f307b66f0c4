public import IP

/// What we require of a peer, beyond what its OPEN says about itself.
public struct PeerExpectations: Hashable, Sendable {
    /// The AS the peer must be in (RFC 4271 §6.2 Bad Peer AS), or nil to accept any.
    public var peerASN: UInt32?
    /// The smallest non-zero hold time we accept (RFC 4271 §6.2: never below 3).
    public var minimumHoldTime: UInt16
    /// Capabilities the peer must advertise, or we refuse with Unsupported Capability (RFC 5492 §3).
    public var requiredCapabilities: Set<CapabilityCode>

    public init(peerASN: UInt32? = nil, minimumHoldTime: UInt16 = 3, requiredCapabilities: Set<CapabilityCode> = []) {
        self.peerASN = peerASN
        self.minimumHoldTime = max(3, minimumHoldTime)
        self.requiredCapabilities = requiredCapabilities
    }
}

/// The parameters both sides agreed on in the OPEN exchange.
public struct SessionParameters: Hashable, Sendable {
    public var localASN: UInt32
    public var peerASN: UInt32
    public var peerIdentifier: IPv4Address
    /// RFC 4271 §4.2: the smaller of the two hold times; 0 means no keepalives at all.
    public var holdTime: UInt16
    /// Seconds between our KEEPALIVEs: RFC 4271 §10 suggests a third of the hold time (0 when
    /// the hold time is 0); a configured shorter interval wins (`SessionConfiguration`).
    public var keepaliveTime: UInt16
    /// RFC 6793: both sides sent the four-octet AS capability.
    public var fourOctetASN: Bool
    /// RFC 4760: families both sides announced (IPv4 unicast when neither sent any).
    public var families: Set<AddressFamily>
    /// RFC 7911: families in which we may send several paths per prefix.
    public var addPathSend: Set<AddressFamily>
    /// RFC 7911: families in which the peer sends path identifiers.
    public var addPathReceive: Set<AddressFamily>
    /// RFC 8654: both sides accept 65535-octet messages.
    public var extendedMessages: Bool
    public var routeRefresh: Bool
    public var enhancedRouteRefresh: Bool
    /// RFC 8950: NLRI/next-hop combinations both sides announced.
    public var extendedNextHop: Set<ExtendedNextHopEntry>
    /// RFC 4724: the peer's graceful restart capability, when both sides announced one.
    public var peerGracefulRestart: GracefulRestart?
    /// The peer's FQDN capability hostname, if any (for display).
    public var peerHostname: String?

    public var maxMessageLength: Int { extendedMessages ? BGPHeader.extendedMaximumLength : BGPHeader.maximumLength }
    public var isInternal: Bool { localASN == peerASN }

    /// How to read what the peer sends.
    public var receiveContext: CodecContext {
        CodecContext(fourOctetASN: fourOctetASN, addPath: addPathReceive, maxMessageLength: maxMessageLength)
    }

    /// How to write what we send.
    public var sendContext: CodecContext {
        CodecContext(fourOctetASN: fourOctetASN, addPath: addPathSend, maxMessageLength: maxMessageLength)
    }

    /// Checks the peer's OPEN against ours and our expectations (RFC 4271 §6.2, RFC 5492,
    /// RFC 6793, RFC 6286) and returns the agreed parameters, or the error whose NOTIFICATION
    /// we must send.
    public static func negotiate(local: OpenMessage, remote: OpenMessage, expectations: PeerExpectations = .init()) -> Result<SessionParameters, BGPError> {
        let remoteCapabilities = remote.capabilities
        let localCapabilities = local.capabilities

        // RFC 4271 §6.2: we only speak version 4 (decode already refuses others).
        guard remote.version == OpenMessage.version else {
            return .failure(.open(.unsupportedVersionNumber, data: [0, OpenMessage.version], "peer offered BGP version \(remote.version)"))
        }
        // RFC 4271 §6.2 / RFC 5492 §4: capabilities are the only optional parameter we know.
        for case .unknown(let type, _) in remote.parameters {
            return .failure(.open(.unsupportedOptionalParameter, "optional parameter type \(type)"))
        }
        // RFC 6793 §4.1 / RFC 4271 §6.2.
        let peerASN = remote.asn
        if let expected = expectations.peerASN, expected != peerASN {
            var data: [UInt8] = []
            if remote.myAutonomousSystem != OpenMessage.asTrans || peerASN <= 0xFFFF {
                data = [UInt8(remote.myAutonomousSystem >> 8), UInt8(truncatingIfNeeded: remote.myAutonomousSystem)]
            }
            return .failure(.open(.badPeerAS, data: data, "peer is AS\(peerASN), expected AS\(expected)"))
        }
        // RFC 4271 §6.2: a hold time of 1 or 2 seconds is refused; so is one below our minimum.
        if remote.holdTime != 0, remote.holdTime < expectations.minimumHoldTime {
            return .failure(.open(.unacceptableHoldTime, "peer proposed hold time \(remote.holdTime) s, minimum is \(expectations.minimumHoldTime) s"))
        }
        // RFC 6286 §2.2: the identifier must be non-zero, and within one AS it must differ
        // from ours.
        if remote.bgpIdentifier.value == 0 {
            return .failure(.open(.badBGPIdentifier, data: remote.bgpIdentifier.octets, "peer BGP identifier is 0.0.0.0"))
        }
        let localASN = local.asn
        if peerASN == localASN, remote.bgpIdentifier == local.bgpIdentifier {
            return .failure(.open(.badBGPIdentifier, data: remote.bgpIdentifier.octets, "internal peer uses our BGP identifier \(remote.bgpIdentifier)"))
        }
        // RFC 5492 §3: refuse when a capability we need is absent; the data lists them.
        let remoteCodes = Set(remoteCapabilities.map(\.code))
        let missing = expectations.requiredCapabilities.filter { !remoteCodes.contains($0.rawValue) }.sorted { $0.rawValue < $1.rawValue }
        if !missing.isEmpty {
            var data = ByteWriter()
            for code in missing {
                if let ours = localCapabilities.first(where: { $0.code == code.rawValue }) {
                    ours.encode(into: &data)
                } else {
                    data.writeUInt8(code.rawValue)
                    data.writeUInt8(0)
                }
            }
            return .failure(.open(.unsupportedCapability, data: data.bytes, "peer lacks capability \(missing.map { String($0.rawValue) }.joined(separator: ", "))"))
        }

        func families(_ list: [Capability]) -> Set<AddressFamily> {
            var set = Set<AddressFamily>()
            for case .multiprotocol(let f) in list { set.insert(f) }
            // RFC 4760 §8 / RFC 4271: without any multiprotocol capability, IPv4 unicast only.
            return set.isEmpty ? [.ipv4Unicast] : set
        }
        func addPath(_ list: [Capability]) -> [AddressFamily: AddPathDirection] {
            var map: [AddressFamily: AddPathDirection] = [:]
            for case .addPath(let entries) in list { map.merge(entries) { $1 } }
            return map
        }
        func has(_ list: [Capability], _ code: CapabilityCode) -> Bool { list.contains { $0.code == code.rawValue } }

        let agreedFamilies = families(localCapabilities).intersection(families(remoteCapabilities))
        let localAddPath = addPath(localCapabilities)
        let remoteAddPath = addPath(remoteCapabilities)
        var send = Set<AddressFamily>(), receive = Set<AddressFamily>()
        // RFC 7911 §4: we send paths where we offered Send and the peer offered Receive, and
        // receive them where we offered Receive and the peer offered Send.
        for family in agreedFamilies {
            let ours = localAddPath[family] ?? [], theirs = remoteAddPath[family] ?? []
            if ours.contains(.send), theirs.contains(.receive) { send.insert(family) }
            if ours.contains(.receive), theirs.contains(.send) { receive.insert(family) }
        }
        var localNH = Set<ExtendedNextHopEntry>(), remoteNH = Set<ExtendedNextHopEntry>()
        for case .extendedNextHop(let e) in localCapabilities { localNH.formUnion(e) }
        for case .extendedNextHop(let e) in remoteCapabilities { remoteNH.formUnion(e) }
        var peerGR: GracefulRestart?
        if has(localCapabilities, .gracefulRestart) {
            for case .gracefulRestart(let gr) in remoteCapabilities { peerGR = gr }
        }
        var hostname: String?
        for case .fqdn(let host, let domain) in remoteCapabilities { hostname = domain.isEmpty ? host : "\(host).\(domain)" }

        return .success(SessionParameters(
            localASN: localASN, peerASN: peerASN, peerIdentifier: remote.bgpIdentifier,
            holdTime: min(local.holdTime, remote.holdTime), keepaliveTime: min(local.holdTime, remote.holdTime) / 3,
            fourOctetASN: has(localCapabilities, .fourOctetASN) && has(remoteCapabilities, .fourOctetASN),
            families: agreedFamilies, addPathSend: send, addPathReceive: receive,
            extendedMessages: has(localCapabilities, .extendedMessage) && has(remoteCapabilities, .extendedMessage),
            routeRefresh: has(localCapabilities, .routeRefresh) && has(remoteCapabilities, .routeRefresh),
            enhancedRouteRefresh: has(localCapabilities, .enhancedRouteRefresh) && has(remoteCapabilities, .enhancedRouteRefresh),
            extendedNextHop: localNH.intersection(remoteNH),
            peerGracefulRestart: peerGR, peerHostname: hostname))
    }
}
