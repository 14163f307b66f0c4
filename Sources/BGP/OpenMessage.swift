public import IP

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+
//  |    Version    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     My Autonomous System      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Hold Time           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                         BGP Identifier                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Opt Parm Len  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |             Optional Parameters (variable)                    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 9072 §2 extended form: Opt Parm Len = 255, then a Non-Ext OP Type of 255, then a two-octet
// Extended Opt. Parm. Length; every parameter then has a two-octet length.

/// RFC 4271 §4.2 OPEN.
public struct OpenMessage: Hashable, Sendable {
    /// RFC 6793 §9: the two-octet AS number sent by a speaker whose AS does not fit.
    public static let asTrans: UInt16 = 23456
    /// RFC 4271 §4.2: "the current BGP version number is 4".
    public static let version: UInt8 = 4

    /// One optional parameter. Type 2 carries capabilities (RFC 5492 §4); anything else is kept
    /// raw and refused at negotiation (RFC 4271 §6.2 Unsupported Optional Parameter).
    public enum Parameter: Hashable, Sendable {
        case capabilities([Capability])
        case unknown(type: UInt8, value: [UInt8])
        static let capabilitiesType: UInt8 = 2
    }

    public var version: UInt8
    /// The two-octet My Autonomous System field (AS_TRANS when the real AS is four-octet).
    public var myAutonomousSystem: UInt16
    public var holdTime: UInt16
    public var bgpIdentifier: IPv4Address
    public var parameters: [Parameter]
    /// RFC 9072: encode with the extended optional parameters length even if they would fit.
    public var usesExtendedParameterLength: Bool

    public init(version: UInt8 = OpenMessage.version, myAutonomousSystem: UInt16, holdTime: UInt16, bgpIdentifier: IPv4Address,
                parameters: [Parameter], usesExtendedParameterLength: Bool = false) {
        self.version = version
        self.myAutonomousSystem = myAutonomousSystem
        self.holdTime = holdTime
        self.bgpIdentifier = bgpIdentifier
        self.parameters = parameters
        self.usesExtendedParameterLength = usesExtendedParameterLength
    }

    /// The OPEN a speaker of `asn` sends: AS_TRANS in the two-octet field when `asn` does not fit,
    /// the four-octet AS capability added if missing, all capabilities in one parameter.
    public init(asn: UInt32, holdTime: UInt16, bgpIdentifier: IPv4Address, capabilities: [Capability]) {
        var capabilities = capabilities
        if !capabilities.contains(where: { if case .fourOctetASN = $0 { true } else { false } }) {
            capabilities.append(.fourOctetASN(asn))
        }
        self.init(myAutonomousSystem: asn > UInt32(UInt16.max) ? Self.asTrans : UInt16(asn), holdTime: holdTime,
                  bgpIdentifier: bgpIdentifier, parameters: capabilities.isEmpty ? [] : [.capabilities(capabilities)])
    }

    /// Every capability, in order, from every capabilities parameter.
    public var capabilities: [Capability] {
        parameters.flatMap { parameter -> [Capability] in
            if case .capabilities(let list) = parameter { return list }
            return []
        }
    }

    /// RFC 6793 §4.1: the four-octet AS from the capability, else the two-octet field.
    public var asn: UInt32 {
        for case .fourOctetASN(let asn) in capabilities { return asn }
        return UInt32(myAutonomousSystem)
    }

    static func decode(from reader: inout ByteReader) throws(BGPError) -> OpenMessage {
        let version = try reader.readUInt8()
        // RFC 4271 §6.2: the Data field is the largest locally supported version below the bid.
        guard version == OpenMessage.version else {
            throw .open(.unsupportedVersionNumber, data: [0, OpenMessage.version], "peer offered BGP version \(version)")
        }
        let myAS = try reader.readUInt16()
        let holdTime = try reader.readUInt16()
        let identifier = try reader.readIPv4()
        let malformed = BGPError.open(.unspecific, "optional parameters overrun the message")
        var length = Int(try reader.readUInt8())
        var extended = false
        // RFC 9072 §2: 255 followed by a Non-Ext OP Type of 255 announces the extended form.
        if length == 255, reader.peekUInt8() == 255 {
            try reader.skip(1)
            length = Int(try reader.readUInt16())
            extended = true
        }
        guard length == reader.readableBytes else {
            throw .open(.unspecific, "optional parameter length \(length) but \(reader.readableBytes) octets follow")
        }
        var body = try reader.readSlice(length, underrun: malformed)
        var parameters: [Parameter] = []
        while !body.isEmpty {
            let type = try body.readUInt8()
            let valueLength = extended ? Int(try body.readUInt16()) : Int(try body.readUInt8())
            var value = try body.readSlice(valueLength)
            if type == Parameter.capabilitiesType {
                parameters.append(.capabilities(try Capability.decodeAll(from: &value)))
            } else {
                parameters.append(.unknown(type: type, value: value.readRemainingBytes()))
            }
        }
        return OpenMessage(version: version, myAutonomousSystem: myAS, holdTime: holdTime, bgpIdentifier: identifier,
                           parameters: parameters, usesExtendedParameterLength: extended)
    }

    func encode(into writer: inout ByteWriter) {
        writer.writeUInt8(version)
        writer.writeUInt16(myAutonomousSystem)
        writer.writeUInt16(holdTime)
        writer.writeIPv4(bgpIdentifier)
        var body = ByteWriter()
        for parameter in parameters {
            switch parameter {
            case .capabilities(let list):
                var value = ByteWriter()
                for capability in list { capability.encode(into: &value) }
                body.writeUInt8(Parameter.capabilitiesType)
                appendParameterValue(value.bytes, into: &body)
            case .unknown(let type, let value):
                body.writeUInt8(type)
                appendParameterValue(value, into: &body)
            }
        }
        if extendedForm(body: body.count) {
            writer.writeUInt8(255)
            writer.writeUInt8(255)
            writer.writeUInt16(UInt16(truncatingIfNeeded: body.count))
        } else {
            writer.writeUInt8(UInt8(body.count))
        }
        writer.writeBytes(body.bytes)

        func appendParameterValue(_ value: [UInt8], into body: inout ByteWriter) {
            if extendedForm(body: 0) { body.writeUInt16(UInt16(truncatingIfNeeded: value.count)) } else { body.writeUInt8(UInt8(truncatingIfNeeded: value.count)) }
            body.writeBytes(value)
        }
    }

    /// RFC 9072 §2: the extended form is used when the parameters do not fit in 255 octets, or
    /// when exactly 255 octets start with type 255 (which a reader would take for the extended
    /// form's marker).
    private func extendedForm(body: Int) -> Bool {
        if usesExtendedParameterLength { return true }
        var total = 0
        for parameter in parameters {
            switch parameter {
            case .capabilities(let list):
                let size = list.reduce(0) { $0 + $1.encodedLength }
                if size > 255 { return true }
                total += 2 + size
            case .unknown(_, let value):
                if value.count > 255 { return true }
                total += 2 + value.count
            }
        }
        if total > 255 || body > 255 { return true }
        if total == 255, case .unknown(255, _)? = parameters.first { return true }
        return false
    }
}
