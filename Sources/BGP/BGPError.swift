// Errors with their wire meaning: a NOTIFICATION code, subcode and data, plus the RFC 7606
// action a receiver takes. `NotificationMessage(error)` is the one place an error becomes the
// NOTIFICATION we send.

/// RFC 4271 §4.5 NOTIFICATION error codes (IANA "BGP Error (Notification) Codes").
public enum NotificationCode: UInt8, Hashable, Sendable, CaseIterable {
    case messageHeaderError = 1
    case openMessageError = 2
    case updateMessageError = 3
    case holdTimerExpired = 4
    case finiteStateMachineError = 5
    case cease = 6
    case routeRefreshMessageError = 7
    /// RFC 9687: nothing could be sent to the peer for the SendHoldTime.
    case sendHoldTimerExpired = 8

    public var name: String {
        switch self {
        case .messageHeaderError: "Message Header Error"
        case .openMessageError: "OPEN Message Error"
        case .updateMessageError: "UPDATE Message Error"
        case .holdTimerExpired: "Hold Timer Expired"
        case .finiteStateMachineError: "Finite State Machine Error"
        case .cease: "Cease"
        case .routeRefreshMessageError: "ROUTE-REFRESH Message Error"
        case .sendHoldTimerExpired: "Send Hold Timer Expired"
        }
    }
}

/// RFC 4271 §6.1 Message Header Error subcodes.
public enum MessageHeaderError: UInt8, Sendable, CaseIterable {
    case connectionNotSynchronized = 1
    case badMessageLength = 2
    case badMessageType = 3
}

/// RFC 4271 §6.2 / RFC 5492 / RFC 9234 OPEN Message Error subcodes.
public enum OpenMessageError: UInt8, Sendable, CaseIterable {
    case unspecific = 0
    case unsupportedVersionNumber = 1
    case badPeerAS = 2
    case badBGPIdentifier = 3
    case unsupportedOptionalParameter = 4
    case unacceptableHoldTime = 6
    case unsupportedCapability = 7
    case roleMismatch = 11
}

/// RFC 4271 §6.3 UPDATE Message Error subcodes.
public enum UpdateMessageError: UInt8, Sendable, CaseIterable {
    case malformedAttributeList = 1
    case unrecognizedWellKnownAttribute = 2
    case missingWellKnownAttribute = 3
    case attributeFlagsError = 4
    case attributeLengthError = 5
    case invalidOriginAttribute = 6
    case invalidNextHopAttribute = 8
    case optionalAttributeError = 9
    case invalidNetworkField = 10
    case malformedASPath = 11
}

/// RFC 6608 Finite State Machine Error subcodes.
public enum FSMError: UInt8, Sendable, CaseIterable {
    case unspecified = 0
    case unexpectedMessageInOpenSent = 1
    case unexpectedMessageInOpenConfirm = 2
    case unexpectedMessageInEstablished = 3
}

/// RFC 4486 / RFC 8538 Cease subcodes.
public enum CeaseReason: UInt8, Sendable, CaseIterable {
    case unspecified = 0
    case maximumNumberOfPrefixesReached = 1
    case administrativeShutdown = 2
    case peerDeconfigured = 3
    case administrativeReset = 4
    case connectionRejected = 5
    case otherConfigurationChange = 6
    case connectionCollisionResolution = 7
    case outOfResources = 8
    case hardReset = 9
    case bfdDown = 10
}

/// RFC 7313 §5 ROUTE-REFRESH Message Error subcodes.
public enum RouteRefreshMessageError: UInt8, Sendable, CaseIterable {
    case invalidMessageLength = 1
}

/// What a receiver does about a malformed message (RFC 7606 §2).
public enum ErrorAction: String, Hashable, Sendable {
    /// Send the NOTIFICATION and close the session.
    case resetSession
    /// Treat every prefix in the UPDATE as withdrawn (RFC 7606 §2 "treat-as-withdraw").
    case treatAsWithdraw
    /// Drop this one attribute and use the rest of the UPDATE (RFC 7606 §2 "attribute discard").
    case discardAttribute
}

/// A protocol error found while decoding or negotiating, with its NOTIFICATION meaning.
public struct BGPError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: NotificationCode
    public var subcode: UInt8
    public var data: [UInt8]
    public var action: ErrorAction
    /// A human explanation, for logs and "down" reasons (not sent on the wire).
    public var reason: String

    public init(code: NotificationCode, subcode: UInt8, data: [UInt8] = [], action: ErrorAction = .resetSession, reason: String = "") {
        self.code = code
        self.subcode = subcode
        self.data = data
        self.action = action
        self.reason = reason
    }

    public static func header(_ subcode: MessageHeaderError, data: [UInt8] = [], _ reason: String = "") -> BGPError {
        BGPError(code: .messageHeaderError, subcode: subcode.rawValue, data: data, reason: reason)
    }

    public static func open(_ subcode: OpenMessageError, data: [UInt8] = [], _ reason: String = "") -> BGPError {
        BGPError(code: .openMessageError, subcode: subcode.rawValue, data: data, reason: reason)
    }

    public static func update(_ subcode: UpdateMessageError, _ action: ErrorAction, data: [UInt8] = [], _ reason: String = "") -> BGPError {
        BGPError(code: .updateMessageError, subcode: subcode.rawValue, data: data, action: action, reason: reason)
    }

    public static func routeRefresh(_ subcode: RouteRefreshMessageError, data: [UInt8] = [], _ reason: String = "") -> BGPError {
        BGPError(code: .routeRefreshMessageError, subcode: subcode.rawValue, data: data, reason: reason)
    }

    public static func fsm(_ subcode: FSMError, _ reason: String = "") -> BGPError {
        BGPError(code: .finiteStateMachineError, subcode: subcode.rawValue, reason: reason)
    }

    public static func cease(_ subcode: CeaseReason, data: [UInt8] = [], _ reason: String = "") -> BGPError {
        BGPError(code: .cease, subcode: subcode.rawValue, data: data, reason: reason)
    }

    /// Two errors are the same when their wire meaning and action are; the reason is prose.
    public static func == (a: BGPError, b: BGPError) -> Bool {
        a.code == b.code && a.subcode == b.subcode && a.data == b.data && a.action == b.action
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(subcode)
        hasher.combine(data)
        hasher.combine(action)
    }

    public var description: String {
        let name = NotificationMessage.name(code: code.rawValue, subcode: subcode)
        let why = reason.isEmpty ? "" : ": \(reason)"
        return "\(code.rawValue)/\(subcode) (\(name))\(why) [\(action.rawValue)]"
    }
}
