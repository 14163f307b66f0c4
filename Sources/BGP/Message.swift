// BGP-4 messages (RFC 4271 §4) and their framing.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                                                               |
//  +                                                               +
//  |                           Marker                              |
//  +                                                               +
//  |                                                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Length               |      Type     |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

/// The message types of RFC 4271 §4.1 and RFC 2918.
public enum MessageType: UInt8, Hashable, Sendable, CaseIterable {
    case open = 1
    case update = 2
    case notification = 3
    case keepalive = 4
    case routeRefresh = 5
}

/// What the codec needs to know about the session to read or write a message in one direction.
public struct CodecContext: Hashable, Sendable {
    /// RFC 6793: AS numbers in AS_PATH and AGGREGATOR are four octets.
    public var fourOctetASN: Bool
    /// RFC 7911: families whose NLRI carry a path identifier in this direction.
    public var addPath: Set<AddressFamily>
    /// 4096, or 65535 once RFC 8654 extended messages are negotiated.
    public var maxMessageLength: Int

    public init(fourOctetASN: Bool = false, addPath: Set<AddressFamily> = [], maxMessageLength: Int = BGPHeader.maximumLength) {
        self.fourOctetASN = fourOctetASN
        self.addPath = addPath
        self.maxMessageLength = maxMessageLength
    }

    /// Before the OPEN exchange: two-octet AS numbers, no ADD-PATH, 4096-octet messages.
    public static let initial = CodecContext()
}

/// The 19-octet message header.
public enum BGPHeader {
    public static let length = 19
    /// RFC 4271 §4.1: the largest message without RFC 8654.
    public static let maximumLength = 4096
    /// RFC 8654 §3: the largest message once extended messages are negotiated.
    public static let extendedMaximumLength = 65535
    public static let marker = [UInt8](repeating: 0xFF, count: 16)

    /// Writes marker, a reserved length and the type; returns the length position for `finish`.
    static func begin(_ type: MessageType, into writer: inout ByteWriter) -> Int {
        for _ in 0..<16 { writer.writeUInt8(0xFF) }
        let position = writer.reserveLength16()
        writer.writeUInt8(type.rawValue)
        return position
    }

    /// Patches the total message length (header included) written since `begin`.
    static func finish(at position: Int, into writer: inout ByteWriter) {
        writer.patchLength16(at: position, value: writer.count - (position - 16))
    }
}

/// Splits a byte stream into messages without decoding them.
public enum MessageFraming {
    /// The total length of the message at the start of `bytes`, or nil when fewer than 19
    /// octets have arrived. Throws when the marker or the length field is invalid, so a
    /// driver can send the NOTIFICATION without waiting for the rest.
    public static func nextMessageLength<Bytes: RandomAccessCollection<UInt8>>(
        in bytes: Bytes, maxMessageLength: Int = BGPHeader.maximumLength
    ) throws(BGPError) -> Int? where Bytes.Index == Int {
        guard bytes.count >= BGPHeader.length else { return nil }
        let start = bytes.startIndex
        // RFC 4271 §6.1: a marker that is not all ones is "Connection Not Synchronized".
        for i in start..<start + 16 where bytes[i] != 0xFF {
            throw .header(.connectionNotSynchronized, "marker is not all ones")
        }
        let length = Int(bytes[start + 16]) << 8 | Int(bytes[start + 17])
        // RFC 4271 §6.1: the Data field is the erroneous Length field.
        guard length >= BGPHeader.length, length <= maxMessageLength else {
            throw .header(.badMessageLength, data: [bytes[start + 16], bytes[start + 17]],
                          "length \(length) is outside 19…\(maxMessageLength)")
        }
        return length
    }
}

/// One BGP message.
public enum BGPMessage: Hashable, Sendable {
    case open(OpenMessage)
    case update(UpdateMessage)
    case notification(NotificationMessage)
    case keepalive
    case routeRefresh(RouteRefreshMessage)

    public var type: MessageType {
        switch self {
        case .open: .open
        case .update: .update
        case .notification: .notification
        case .keepalive: .keepalive
        case .routeRefresh: .routeRefresh
        }
    }

    /// Decodes exactly one message (header included), as framed by `MessageFraming`.
    ///
    /// Throws only errors whose action is `.resetSession`; UPDATE errors that RFC 7606 handles
    /// by treat-as-withdraw or attribute discard are reported in `UpdateMessage.errors`.
    public static func decode(_ bytes: [UInt8], context: CodecContext = .initial) throws(BGPError) -> BGPMessage {
        guard let length = try MessageFraming.nextMessageLength(in: bytes, maxMessageLength: context.maxMessageLength) else {
            throw .header(.badMessageLength, data: bytes.count >= 18 ? [bytes[16], bytes[17]] : [], "message shorter than the 19-octet header")
        }
        let lengthField = [bytes[16], bytes[17]]
        // Framing hands over exactly one message; anything else is a length mismatch.
        guard length == bytes.count else {
            throw .header(.badMessageLength, data: lengthField, "length field \(length) but \(bytes.count) octets given")
        }
        let badLength = BGPError.header(.badMessageLength, data: lengthField, "length \(length) is wrong for the message type")
        var reader = ByteReader(bytes, underrun: badLength)
        try reader.skip(18)
        let typeCode = try reader.readUInt8()
        guard let type = MessageType(rawValue: typeCode) else {
            // RFC 4271 §6.1: the Data field is the erroneous Type field.
            throw .header(.badMessageType, data: [typeCode], "unknown message type \(typeCode)")
        }
        // RFC 4271 §6.1: per-type minimum (and for KEEPALIVE exact) lengths.
        switch type {
        case .open where length < 29, .update where length < 23, .notification where length < 21:
            throw badLength
        case .keepalive where length != 19:
            throw badLength
        case .open where length > BGPHeader.maximumLength:
            // RFC 8654 §3: extended messages never apply to OPEN.
            throw badLength
        case .routeRefresh where length != 23:
            // RFC 7313 §5: the Data field is the complete ROUTE-REFRESH message.
            throw .routeRefresh(.invalidMessageLength, data: bytes, "ROUTE-REFRESH of \(length) octets")
        default:
            break
        }
        switch type {
        case .open: return .open(try OpenMessage.decode(from: &reader))
        case .update: return .update(try UpdateMessage.decode(from: &reader, context: context))
        case .notification: return .notification(NotificationMessage.decode(from: &reader))
        case .keepalive: return .keepalive
        case .routeRefresh: return .routeRefresh(try RouteRefreshMessage.decode(from: &reader))
        }
    }

    /// Decodes one framed message held in a slice of a receive buffer.
    public static func decode(_ bytes: ArraySlice<UInt8>, context: CodecContext = .initial) throws(BGPError) -> BGPMessage {
        try decode(Array(bytes), context: context)
    }

    /// Appends the encoded message (header included) to `writer`.
    public func encode(into writer: inout ByteWriter, context: CodecContext = .initial) {
        let position = BGPHeader.begin(type, into: &writer)
        switch self {
        case .open(let m): m.encode(into: &writer)
        case .update(let m): m.encode(into: &writer, context: context)
        case .notification(let m): m.encode(into: &writer)
        case .keepalive: break
        case .routeRefresh(let m): m.encode(into: &writer)
        }
        BGPHeader.finish(at: position, into: &writer)
    }

    /// The encoded message as a new array.
    public func encoded(context: CodecContext = .initial) -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        encode(into: &writer, context: context)
        return writer.bytes
    }
}

extension BGPMessage: CustomStringConvertible {
    /// A one-line summary for logs: "OPEN AS65001 hold 90 s id 192.0.2.1", "UPDATE +3 −1".
    public var description: String {
        switch self {
        case .open(let m): "OPEN AS\(m.asn) hold \(m.holdTime) s id \(m.bgpIdentifier), \(m.capabilities.count) capabilities"
        case .update(let m):
            if let family = m.endOfRIB { "UPDATE End-of-RIB \(family)" } else {
                "UPDATE +\(m.announced.count) −\(m.withdrawn.count)" + (m.errors.isEmpty ? "" : " (\(m.errors.count) RFC 7606 errors)")
            }
        case .notification(let m): "NOTIFICATION \(m)"
        case .keepalive: "KEEPALIVE"
        case .routeRefresh(let m): "ROUTE-REFRESH \(m.family) subtype \(m.subtype.rawValue)"
        }
    }
}

// MARK: - NOTIFICATION

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Error code    | Error subcode |   Data (variable)             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// RFC 4271 §4.5 NOTIFICATION. Codes are kept as raw octets so that a code from a newer RFC
/// still round-trips; `knownCode` names it when we know it.
public struct NotificationMessage: Hashable, Sendable, CustomStringConvertible {
    public var code: UInt8
    public var subcode: UInt8
    public var data: [UInt8]

    public init(code: UInt8, subcode: UInt8, data: [UInt8] = []) {
        self.code = code
        self.subcode = subcode
        self.data = data
    }

    public init(code: NotificationCode, subcode: UInt8, data: [UInt8] = []) {
        self.init(code: code.rawValue, subcode: subcode, data: data)
    }

    /// The NOTIFICATION that reports `error`.
    public init(_ error: BGPError) {
        self.init(code: error.code.rawValue, subcode: error.subcode, data: error.data)
    }

    public var knownCode: NotificationCode? { NotificationCode(rawValue: code) }

    /// RFC 8203 / RFC 9003: Cease/Administrative Shutdown (or Reset) with a UTF-8 message of at
    /// most 255 octets, cut on a character boundary if longer.
    public static func administrativeShutdown(_ communication: String? = nil, reset: Bool = false) -> NotificationMessage {
        let subcode = (reset ? CeaseReason.administrativeReset : .administrativeShutdown).rawValue
        guard let communication, !communication.isEmpty else { return NotificationMessage(code: .cease, subcode: subcode) }
        var utf8: [UInt8] = []
        for scalar in communication.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            if utf8.count + encoded.count > 255 { break }
            utf8 += encoded
        }
        return NotificationMessage(code: .cease, subcode: subcode, data: [UInt8(utf8.count)] + utf8)
    }

    /// RFC 9003 §2: the shutdown communication of a Cease/Administrative Shutdown or Reset, if
    /// the data holds a well-formed one.
    public var shutdownCommunication: String? {
        guard code == NotificationCode.cease.rawValue,
              subcode == CeaseReason.administrativeShutdown.rawValue || subcode == CeaseReason.administrativeReset.rawValue,
              let length = data.first, length > 0, Int(length) <= data.count - 1
        else { return nil }
        var utf8 = data[1...Int(length)].makeIterator()
        var text = ""
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&utf8) {
            case .scalarValue(let s): text.unicodeScalars.append(s)
            case .emptyInput: break loop
            case .error: return nil  // RFC 9003 §2: not valid UTF-8, so not shown
            }
        }
        return text
    }

    /// The readable names of a code/subcode pair.
    public static func name(code: UInt8, subcode: UInt8) -> String {
        guard let known = NotificationCode(rawValue: code) else { return "unknown error code \(code)" }
        let sub: String?
        switch known {
        case .messageHeaderError:
            sub = MessageHeaderError(rawValue: subcode).map {
                switch $0 {
                case .connectionNotSynchronized: "Connection Not Synchronized"
                case .badMessageLength: "Bad Message Length"
                case .badMessageType: "Bad Message Type"
                }
            }
        case .openMessageError:
            sub = OpenMessageError(rawValue: subcode).map {
                switch $0 {
                case .unspecific: "OPEN Message Error"
                case .unsupportedVersionNumber: "Unsupported Version Number"
                case .badPeerAS: "Bad Peer AS"
                case .badBGPIdentifier: "Bad BGP Identifier"
                case .unsupportedOptionalParameter: "Unsupported Optional Parameter"
                case .unacceptableHoldTime: "Unacceptable Hold Time"
                case .unsupportedCapability: "Unsupported Capability"
                case .roleMismatch: "Role Mismatch"
                }
            }
        case .updateMessageError:
            sub = UpdateMessageError(rawValue: subcode).map {
                switch $0 {
                case .malformedAttributeList: "Malformed Attribute List"
                case .unrecognizedWellKnownAttribute: "Unrecognized Well-known Attribute"
                case .missingWellKnownAttribute: "Missing Well-known Attribute"
                case .attributeFlagsError: "Attribute Flags Error"
                case .attributeLengthError: "Attribute Length Error"
                case .invalidOriginAttribute: "Invalid ORIGIN Attribute"
                case .invalidNextHopAttribute: "Invalid NEXT_HOP Attribute"
                case .optionalAttributeError: "Optional Attribute Error"
                case .invalidNetworkField: "Invalid Network Field"
                case .malformedASPath: "Malformed AS_PATH"
                }
            }
        case .holdTimerExpired:
            sub = subcode == 0 ? "Hold Timer Expired" : nil
        case .finiteStateMachineError:
            sub = FSMError(rawValue: subcode).map {
                switch $0 {
                case .unspecified: "Finite State Machine Error"
                case .unexpectedMessageInOpenSent: "Unexpected Message in OpenSent"
                case .unexpectedMessageInOpenConfirm: "Unexpected Message in OpenConfirm"
                case .unexpectedMessageInEstablished: "Unexpected Message in Established"
                }
            }
        case .cease:
            sub = CeaseReason(rawValue: subcode).map {
                switch $0 {
                case .unspecified: "Cease"
                case .maximumNumberOfPrefixesReached: "Maximum Number of Prefixes Reached"
                case .administrativeShutdown: "Administrative Shutdown"
                case .peerDeconfigured: "Peer De-configured"
                case .administrativeReset: "Administrative Reset"
                case .connectionRejected: "Connection Rejected"
                case .otherConfigurationChange: "Other Configuration Change"
                case .connectionCollisionResolution: "Connection Collision Resolution"
                case .outOfResources: "Out of Resources"
                case .hardReset: "Hard Reset"
                case .bfdDown: "BFD Down"
                }
            }
        case .routeRefreshMessageError:
            sub = subcode == 1 ? "Invalid Message Length" : nil
        case .sendHoldTimerExpired:
            sub = subcode == 0 ? "Send Hold Timer Expired" : nil
        }
        return sub ?? "\(known.name), subcode \(subcode)"
    }

    /// "6/2 (Administrative Shutdown): 'maintenance'".
    public var description: String {
        var text = "\(code)/\(subcode) (\(Self.name(code: code, subcode: subcode)))"
        if let message = shutdownCommunication { text += ": '\(message)'" }
        return text
    }

    static func decode(from reader: inout ByteReader) -> NotificationMessage {
        // The header check guaranteed the two octets.
        let code = (try? reader.readUInt8()) ?? 0
        let subcode = (try? reader.readUInt8()) ?? 0
        return NotificationMessage(code: code, subcode: subcode, data: reader.readRemainingBytes())
    }

    /// The most Data a NOTIFICATION carries: what fits in a 4,096-octet message (RFC 4271 §4.1).
    /// A NOTIFICATION may go out before extended messages are negotiated (RFC 8654 §3), or to a
    /// peer that never offered them, and some errors' Data is a whole message (RFC 7313 §5: the
    /// ROUTE-REFRESH; RFC 7606: an attribute of up to 65,535 octets), so it is cut to fit.
    public static let maximumDataLength = BGPHeader.maximumLength - BGPHeader.length - 2

    func encode(into writer: inout ByteWriter) {
        writer.writeUInt8(code)
        writer.writeUInt8(subcode)
        writer.writeBytes(data.prefix(Self.maximumDataLength))
    }
}

// MARK: - ROUTE-REFRESH

//   0       7      15      23      31
//  +-------+-------+-------+-------+
//  |      AFI      | Subtype| SAFI |
//  +-------+-------+-------+-------+
/// RFC 2918 ROUTE-REFRESH, with the RFC 7313 §3 subtype in the former reserved octet.
public struct RouteRefreshMessage: Hashable, Sendable {
    /// RFC 7313 §3 message subtypes; others are kept as received (RFC 7313 §5: ignored).
    public struct Subtype: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let normal = Subtype(rawValue: 0)
        public static let beginningOfRouteRefresh = Subtype(rawValue: 1)
        public static let endOfRouteRefresh = Subtype(rawValue: 2)
    }

    public var family: AddressFamily
    public var subtype: Subtype

    public init(family: AddressFamily, subtype: Subtype = .normal) {
        self.family = family
        self.subtype = subtype
    }

    static func decode(from reader: inout ByteReader) throws(BGPError) -> RouteRefreshMessage {
        let afi = AFI(rawValue: try reader.readUInt16())
        let subtype = Subtype(rawValue: try reader.readUInt8())
        let safi = SAFI(rawValue: try reader.readUInt8())
        return RouteRefreshMessage(family: AddressFamily(afi: afi, safi: safi), subtype: subtype)
    }

    func encode(into writer: inout ByteWriter) {
        writer.writeUInt16(family.afi.rawValue)
        writer.writeUInt8(subtype.rawValue)
        writer.writeUInt8(family.safi.rawValue)
    }
}
