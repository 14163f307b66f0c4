// BFD Control packets (RFC 5880 §4.1) and the receive checks of §6.8.6 that need no session.
//
// Deliberate deviations: Herald does not implement authentication (§6.7); a packet with the
// A bit set is discarded, as §6.8.6 requires when no authentication is configured. Demand mode
// and the Echo function are never used by Herald (we send D = 0 and Required Min Echo RX = 0).

/// Session states as carried in the Sta field (RFC 5880 §4.1).
public enum BFDState: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case adminDown = 0
    case down = 1
    case `init` = 2
    case up = 3

    /// The lower-case words the API and logs use.
    public var description: String {
        switch self {
        case .adminDown: "admin_down"
        case .down: "down"
        case .`init`: "init"
        case .up: "up"
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1, Diag field): why the local system last left Up.
public enum BFDDiagnostic: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case none = 0
    case controlDetectionTimeExpired = 1
    case echoFunctionFailed = 2
    case neighborSignaledSessionDown = 3
    case forwardingPlaneReset = 4
    case pathDown = 5
    case concatenatedPathDown = 6
    case administrativelyDown = 7
    case reverseConcatenatedPathDown = 8

    public var description: String {
        switch self {
        case .none: "no diagnostic"
        case .controlDetectionTimeExpired: "control detection time expired"
        case .echoFunctionFailed: "echo function failed"
        case .neighborSignaledSessionDown: "neighbor signaled session down"
        case .forwardingPlaneReset: "forwarding plane reset"
        case .pathDown: "path down"
        case .concatenatedPathDown: "concatenated path down"
        case .administrativelyDown: "administratively down"
        case .reverseConcatenatedPathDown: "reverse concatenated path down"
        }
    }
}

/// Why a received packet was discarded (RFC 5880 §6.8.6). Discarding is silent on the wire;
/// the reason is for counters and logs.
public enum BFDPacketError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooShort(Int)
    case badVersion(UInt8)
    case badLength(field: Int, received: Int)
    case zeroDetectMultiplier
    case multipointSet
    case zeroMyDiscriminator
    case zeroYourDiscriminatorWhileActive(BFDState)
    case authenticationNotSupported

    public var description: String {
        switch self {
        case .tooShort(let n): "packet of \(n) bytes is shorter than the 24-byte minimum"
        case .badVersion(let v): "version \(v), expected 1"
        case .badLength(let field, let received): "Length field \(field) does not fit the \(received) bytes received"
        case .zeroDetectMultiplier: "Detect Mult is zero"
        case .multipointSet: "Multipoint (M) bit is set"
        case .zeroMyDiscriminator: "My Discriminator is zero"
        case .zeroYourDiscriminatorWhileActive(let s): "Your Discriminator is zero while State is \(s)"
        case .authenticationNotSupported: "Authentication Present (A) bit set, and authentication is not configured"
        }
    }
}

/// A BFD Control packet without authentication (RFC 5880 §4.1). Intervals are microseconds,
/// as on the wire.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       My Discriminator                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Your Discriminator                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Desired Min TX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   Required Min RX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Required Min Echo RX Interval                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
public struct BFDControlPacket: Sendable, Hashable {
    public static let version: UInt8 = 1
    /// The length of a packet without an authentication section.
    public static let length = 24

    public var diagnostic: BFDDiagnostic
    public var state: BFDState
    public var poll: Bool
    public var final: Bool
    public var controlPlaneIndependent: Bool
    public var demand: Bool
    public var detectMultiplier: UInt8
    public var myDiscriminator: UInt32
    public var yourDiscriminator: UInt32
    public var desiredMinTxInterval: UInt32
    public var requiredMinRxInterval: UInt32
    public var requiredMinEchoRxInterval: UInt32

    public init(diagnostic: BFDDiagnostic = .none, state: BFDState, poll: Bool = false, final: Bool = false,
                controlPlaneIndependent: Bool = false, demand: Bool = false, detectMultiplier: UInt8,
                myDiscriminator: UInt32, yourDiscriminator: UInt32, desiredMinTxInterval: UInt32,
                requiredMinRxInterval: UInt32, requiredMinEchoRxInterval: UInt32 = 0) {
        self.diagnostic = diagnostic
        self.state = state
        self.poll = poll
        self.final = final
        self.controlPlaneIndependent = controlPlaneIndependent
        self.demand = demand
        self.detectMultiplier = detectMultiplier
        self.myDiscriminator = myDiscriminator
        self.yourDiscriminator = yourDiscriminator
        self.desiredMinTxInterval = desiredMinTxInterval
        self.requiredMinRxInterval = requiredMinRxInterval
        self.requiredMinEchoRxInterval = requiredMinEchoRxInterval
    }

    /// The 24 bytes on the wire.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.length)
        out.append(Self.version << 5 | diagnostic.rawValue)
        var flags = state.rawValue << 6
        if poll { flags |= 0x20 }
        if final { flags |= 0x10 }
        if controlPlaneIndependent { flags |= 0x08 }
        if demand { flags |= 0x02 }
        out.append(flags)
        out.append(detectMultiplier)
        out.append(UInt8(Self.length))
        for word in [myDiscriminator, yourDiscriminator, desiredMinTxInterval, requiredMinRxInterval, requiredMinEchoRxInterval] {
            out.append(UInt8(truncatingIfNeeded: word >> 24))
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8))
            out.append(UInt8(truncatingIfNeeded: word))
        }
        return out
    }

    /// Decodes a received UDP payload, applying every check of RFC 5880 §6.8.6 that does not
    /// need the session (those that do are in `BFDSession.receive`).
    public init(decoding bytes: some Collection<UInt8>) throws(BFDPacketError) {
        let b = Array(bytes)
        // §6.8.6: "If the Length field is less than the minimum correct value (24 if the A bit
        // is clear, or 26 if the A bit is set), the packet MUST be discarded."
        guard b.count >= Self.length else { throw .tooShort(b.count) }
        // §6.8.6: "If the version number is not correct (1), the packet MUST be discarded."
        let version = b[0] >> 5
        guard version == Self.version else { throw .badVersion(version) }
        let authentication = b[1] & 0x04 != 0
        let length = Int(b[3])
        // §6.8.6: Length below the minimum, or "greater than the payload of the encapsulating
        // protocol", is discarded.
        guard length >= (authentication ? 26 : Self.length), length <= b.count else {
            throw .badLength(field: length, received: b.count)
        }
        // §6.8.6: "If the Detect Mult field is zero, the packet MUST be discarded."
        guard b[2] != 0 else { throw .zeroDetectMultiplier }
        // §6.8.6: "If the Multipoint (M) bit is nonzero, the packet MUST be discarded."
        guard b[1] & 0x01 == 0 else { throw .multipointSet }
        func word(_ at: Int) -> UInt32 {
            UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        }
        let state = BFDState(rawValue: b[1] >> 6)!  // two bits: every value is a state
        let my = word(4), your = word(8)
        // §6.8.6: "If the My Discriminator field is zero, the packet MUST be discarded."
        guard my != 0 else { throw .zeroMyDiscriminator }
        // §6.8.6: "If the Your Discriminator field is zero and the State field is not Down or
        // AdminDown, the packet MUST be discarded."
        guard your != 0 || state == .down || state == .adminDown else { throw .zeroYourDiscriminatorWhileActive(state) }
        // §6.8.6: "If the A bit is set and no authentication is in use (bfd.AuthType is zero),
        // the packet MUST be discarded."
        guard !authentication else { throw .authenticationNotSupported }
        // Diagnostic values 9–31 are reserved; keep the packet, read them as "none".
        diagnostic = BFDDiagnostic(rawValue: b[0] & 0x1F) ?? .none
        self.state = state
        poll = b[1] & 0x20 != 0
        final = b[1] & 0x10 != 0
        controlPlaneIndependent = b[1] & 0x08 != 0
        demand = b[1] & 0x02 != 0
        detectMultiplier = b[2]
        myDiscriminator = my
        yourDiscriminator = your
        desiredMinTxInterval = word(12)
        requiredMinRxInterval = word(16)
        requiredMinEchoRxInterval = word(20)
    }
}
