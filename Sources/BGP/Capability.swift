//  RFC 5492 §4 capability TLV:
//  +------------------------------+
//  | Capability Code (1 octet)    |
//  +------------------------------+
//  | Capability Length (1 octet)  |
//  +------------------------------+
//  | Capability Value (variable)  |
//  +------------------------------+

/// The capability codes this speaker understands (IANA "Capability Codes").
public enum CapabilityCode: UInt8, Hashable, Sendable, CaseIterable {
    case multiprotocol = 1
    case routeRefresh = 2
    case extendedNextHop = 5
    case extendedMessage = 6
    case gracefulRestart = 64
    case fourOctetASN = 65
    case addPath = 69
    case enhancedRouteRefresh = 70
    case fqdn = 73
}

/// RFC 7911 §4: which directions ADD-PATH is wanted in for a family.
public struct AddPathDirection: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let receive = AddPathDirection(rawValue: 1)
    public static let send = AddPathDirection(rawValue: 2)
    public static let both: AddPathDirection = [.receive, .send]
}

/// RFC 8950 §3: NLRI of `family` may carry a next hop of `nextHopAFI`.
public struct ExtendedNextHopEntry: Hashable, Sendable {
    public var family: AddressFamily
    public var nextHopAFI: AFI
    public init(family: AddressFamily, nextHopAFI: AFI) {
        self.family = family
        self.nextHopAFI = nextHopAFI
    }
}

//  RFC 4724 §3:
//  +--------------------------------------------------+
//  | Restart Flags (4 bits)                           |
//  +--------------------------------------------------+
//  | Restart Time in seconds (12 bits)                |
//  +--------------------------------------------------+
//  | AFI (16 bits) | SAFI (8 bits) | Flags for AF (8) |  repeated
//  +--------------------------------------------------+
/// RFC 4724 graceful restart capability (with the RFC 8538 N bit).
public struct GracefulRestart: Hashable, Sendable {
    public struct Family: Hashable, Sendable {
        public var family: AddressFamily
        /// The F bit: forwarding state for this family was kept across the restart.
        public var forwardingPreserved: Bool
        public init(_ family: AddressFamily, forwardingPreserved: Bool = false) {
            self.family = family
            self.forwardingPreserved = forwardingPreserved
        }
    }

    /// The R bit: the sender has just restarted.
    public var restarting: Bool
    /// RFC 8538 §2 N bit: graceful restart also covers NOTIFICATION-triggered resets.
    public var notificationSupport: Bool
    /// Seconds (0…4095) the sender needs to come back.
    public var restartTime: UInt16
    public var families: [Family]

    public init(restarting: Bool = false, notificationSupport: Bool = false, restartTime: UInt16, families: [Family] = []) {
        self.restarting = restarting
        self.notificationSupport = notificationSupport
        self.restartTime = restartTime & 0x0FFF
        self.families = families
    }
}

/// One capability (RFC 5492). Unknown capabilities keep their code and raw value.
public enum Capability: Hashable, Sendable {
    case multiprotocol(AddressFamily)
    case routeRefresh
    case extendedNextHop([ExtendedNextHopEntry])
    case extendedMessage
    case gracefulRestart(GracefulRestart)
    case fourOctetASN(UInt32)
    case addPath([AddressFamily: AddPathDirection])
    case enhancedRouteRefresh
    /// draft-walton-bgp-hostname-capability: host and domain names, UTF-8.
    case fqdn(hostname: String, domain: String)
    case unknown(code: UInt8, value: [UInt8])

    public var code: UInt8 {
        switch self {
        case .multiprotocol: CapabilityCode.multiprotocol.rawValue
        case .routeRefresh: CapabilityCode.routeRefresh.rawValue
        case .extendedNextHop: CapabilityCode.extendedNextHop.rawValue
        case .extendedMessage: CapabilityCode.extendedMessage.rawValue
        case .gracefulRestart: CapabilityCode.gracefulRestart.rawValue
        case .fourOctetASN: CapabilityCode.fourOctetASN.rawValue
        case .addPath: CapabilityCode.addPath.rawValue
        case .enhancedRouteRefresh: CapabilityCode.enhancedRouteRefresh.rawValue
        case .fqdn: CapabilityCode.fqdn.rawValue
        case .unknown(let code, _): code
        }
    }

    var encodedLength: Int {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.count
    }

    /// Decodes the capability TLVs filling `reader`.
    static func decodeAll(from reader: inout ByteReader) throws(BGPError) -> [Capability] {
        var list: [Capability] = []
        while !reader.isEmpty {
            list.append(try decode(from: &reader))
        }
        return list
    }

    public static func decode(from reader: inout ByteReader) throws(BGPError) -> Capability {
        let overrun = BGPError.open(.unspecific, "capability overruns its optional parameter")
        reader.underrun = overrun
        let code = try reader.readUInt8()
        let length = Int(try reader.readUInt8())
        let badLength = BGPError.open(.unspecific, "capability \(code) has a malformed length \(length)")
        var value = try reader.readSlice(length, underrun: badLength)
        let capability: Capability
        switch CapabilityCode(rawValue: code) {
        case .multiprotocol:
            // RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
            guard length == 4 else { throw badLength }
            let afi = AFI(rawValue: try value.readUInt16())
            try value.skip(1)
            capability = .multiprotocol(AddressFamily(afi: afi, safi: SAFI(rawValue: try value.readUInt8())))
        case .routeRefresh, .extendedMessage, .enhancedRouteRefresh:
            guard length == 0 else { throw badLength }
            capability = code == CapabilityCode.routeRefresh.rawValue ? .routeRefresh
                : code == CapabilityCode.extendedMessage.rawValue ? .extendedMessage : .enhancedRouteRefresh
        case .extendedNextHop:
            // RFC 8950 §3: NLRI AFI (2), NLRI SAFI (2), Nexthop AFI (2), repeated.
            guard length % 6 == 0 else { throw badLength }
            var entries: [ExtendedNextHopEntry] = []
            while !value.isEmpty {
                let afi = AFI(rawValue: try value.readUInt16())
                let safi = try value.readUInt16()
                let nextHop = AFI(rawValue: try value.readUInt16())
                guard safi <= 255 else { throw badLength }
                entries.append(ExtendedNextHopEntry(family: AddressFamily(afi: afi, safi: SAFI(rawValue: UInt8(safi))), nextHopAFI: nextHop))
            }
            capability = .extendedNextHop(entries)
        case .gracefulRestart:
            guard length >= 2, (length - 2) % 4 == 0 else { throw badLength }
            let header = try value.readUInt16()
            var families: [GracefulRestart.Family] = []
            while !value.isEmpty {
                let afi = AFI(rawValue: try value.readUInt16())
                let safi = SAFI(rawValue: try value.readUInt8())
                let flags = try value.readUInt8()
                families.append(.init(AddressFamily(afi: afi, safi: safi), forwardingPreserved: flags & 0x80 != 0))
            }
            capability = .gracefulRestart(GracefulRestart(restarting: header & 0x8000 != 0, notificationSupport: header & 0x4000 != 0,
                                                          restartTime: header & 0x0FFF, families: families))
        case .fourOctetASN:
            guard length == 4 else { throw badLength }
            capability = .fourOctetASN(try value.readUInt32())
        case .addPath:
            // RFC 7911 §4: AFI (2), SAFI (1), Send/Receive (1), repeated.
            guard length % 4 == 0 else { throw badLength }
            var entries: [AddressFamily: AddPathDirection] = [:]
            while !value.isEmpty {
                let afi = AFI(rawValue: try value.readUInt16())
                let safi = SAFI(rawValue: try value.readUInt8())
                let direction = try value.readUInt8()
                // RFC 7911 §4: values other than 1–3 are ignored... we keep the two low bits.
                entries[AddressFamily(afi: afi, safi: safi)] = AddPathDirection(rawValue: direction & 0x03)
            }
            capability = .addPath(entries)
        case .fqdn:
            let hostLength = Int(try value.readUInt8())
            let host = try value.readBytes(hostLength)
            let domainLength = Int(try value.readUInt8())
            let domain = try value.readBytes(domainLength)
            guard value.isEmpty else { throw badLength }
            capability = .fqdn(hostname: String(decoding: host, as: UTF8.self), domain: String(decoding: domain, as: UTF8.self))
        case nil:
            capability = .unknown(code: code, value: value.readRemainingBytes())
        }
        return capability
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeUInt8(code)
        let position = writer.reserveLength8()
        switch self {
        case .multiprotocol(let family):
            writer.writeUInt16(family.afi.rawValue)
            writer.writeUInt8(0)
            writer.writeUInt8(family.safi.rawValue)
        case .routeRefresh, .extendedMessage, .enhancedRouteRefresh:
            break
        case .extendedNextHop(let entries):
            for entry in entries {
                writer.writeUInt16(entry.family.afi.rawValue)
                writer.writeUInt16(UInt16(entry.family.safi.rawValue))
                writer.writeUInt16(entry.nextHopAFI.rawValue)
            }
        case .gracefulRestart(let gr):
            writer.writeUInt16((gr.restarting ? 0x8000 : 0) | (gr.notificationSupport ? 0x4000 : 0) | gr.restartTime & 0x0FFF)
            for family in gr.families {
                writer.writeUInt16(family.family.afi.rawValue)
                writer.writeUInt8(family.family.safi.rawValue)
                writer.writeUInt8(family.forwardingPreserved ? 0x80 : 0)
            }
        case .fourOctetASN(let asn):
            writer.writeUInt32(asn)
        case .addPath(let entries):
            // Sorted so the encoding is deterministic.
            for (family, direction) in entries.sorted(by: { $0.key < $1.key }) {
                writer.writeUInt16(family.afi.rawValue)
                writer.writeUInt8(family.safi.rawValue)
                writer.writeUInt8(direction.rawValue)
            }
        case .fqdn(let hostname, let domain):
            // The whole value must fit the one-octet capability length.
            let host = Array(hostname.utf8.prefix(253))
            let dom = Array(domain.utf8.prefix(253 - host.count))
            writer.writeUInt8(UInt8(host.count))
            writer.writeBytes(host)
            writer.writeUInt8(UInt8(dom.count))
            writer.writeBytes(dom)
        case .unknown(_, let value):
            writer.writeBytes(value.prefix(255))
        }
        writer.patchLength8(at: position)
    }
}
