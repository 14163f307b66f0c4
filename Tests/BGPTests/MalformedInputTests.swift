import TestSupport
import Testing
@testable import BGP
import IP

/// One row per RFC 4271 §6 / RFC 7606 case: the input and its one outcome.
enum Outcome: Equatable, CustomStringConvertible {
    /// NOTIFICATION code/subcode, session reset.
    case reset(NotificationCode, UInt8)
    /// RFC 7606 treat-as-withdraw with this UPDATE subcode.
    case treatAsWithdraw(UpdateMessageError)
    /// RFC 7606 attribute discard with this UPDATE subcode.
    case discard(UpdateMessageError)
    /// Decoded with no error at all.
    case accepted

    var description: String {
        switch self {
        case .reset(let c, let s): "reset \(c.rawValue)/\(s)"
        case .treatAsWithdraw(let s): "treat-as-withdraw 3/\(s.rawValue)"
        case .discard(let s): "attribute discard 3/\(s.rawValue)"
        case .accepted: "accepted"
        }
    }

    /// The OPEN the table's OPENs are negotiated against: AS65001 (so AS65001 peers are
    /// internal), identifier 192.0.2.1, and a peer that must offer multiprotocol.
    static let localOpen = OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 1), capabilities: [.multiprotocol(.ipv4Unicast)])
    static let expectations = PeerExpectations(peerASN: 65001, requiredCapabilities: [.multiprotocol])

    static func of(_ bytes: [UInt8], context: CodecContext = CodecContext(fourOctetASN: true)) -> (Outcome, BGPMessage?, BGPError?) {
        do {
            let message = try BGPMessage.decode(bytes, context: context)
            // RFC 4271 §6.2: an OPEN that decodes can still be refused at negotiation.
            if case .open(let open) = message {
                switch SessionParameters.negotiate(local: localOpen, remote: open, expectations: expectations) {
                case .failure(let error): return (.reset(error.code, error.subcode), message, error)
                case .success: return (.accepted, message, nil)
                }
            }
            if case .update(let u) = message {
                if let e = u.errors.first(where: { $0.action == .treatAsWithdraw }) {
                    return (.treatAsWithdraw(UpdateMessageError(rawValue: e.subcode)!), message, e)
                }
                if let e = u.errors.first { return (.discard(UpdateMessageError(rawValue: e.subcode)!), message, e) }
            }
            return (.accepted, message, nil)
        } catch {
            #expect(error.action == .resetSession)
            return (.reset(error.code, error.subcode), nil, error)
        }
    }
}

struct MalformedCase: CustomTestStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let expected: Outcome
    /// The NOTIFICATION Data we expect, when the RFC defines it.
    var data: [UInt8]? = nil
    var context = CodecContext(fourOctetASN: true)
    var testDescription: String { name }
}

private let origin = "40 01 01 00"
private let asPath = "40 02 06 02 01 0000fde9"
private let nextHop = "40 03 04 c0000201"
private let base = origin + asPath + nextHop
private let aNLRI = "18 c00002"
private let mpReachV6 = "90 0e 001e 0002 01 10 20010db8000000000000000000000001 00 40 20010db800000001"

let malformedCases: [MalformedCase] = [
    // RFC 4271 §6.1 message header errors.
    MalformedCase(name: "marker not all ones", bytes: hex("ffffffffffffffffffffffffffff00ff 0013 04"), expected: .reset(.messageHeaderError, 1)),
    MalformedCase(name: "length below 19", bytes: hex("ffffffffffffffffffffffffffffffff 0012 04"), expected: .reset(.messageHeaderError, 2), data: [0x00, 0x12]),
    MalformedCase(name: "length above 4096", bytes: hex("ffffffffffffffffffffffffffffffff 1001 04"), expected: .reset(.messageHeaderError, 2), data: [0x10, 0x01]),
    MalformedCase(name: "length field disagrees with the bytes", bytes: hex("ffffffffffffffffffffffffffffffff 0014 04"), expected: .reset(.messageHeaderError, 2)),
    MalformedCase(name: "unknown message type", bytes: message(9, ""), expected: .reset(.messageHeaderError, 3), data: [9]),
    MalformedCase(name: "KEEPALIVE with a body", bytes: message(4, "00"), expected: .reset(.messageHeaderError, 2), data: [0x00, 0x14]),
    MalformedCase(name: "UPDATE shorter than 23", bytes: message(2, "0000"), expected: .reset(.messageHeaderError, 2)),
    MalformedCase(name: "NOTIFICATION shorter than 21", bytes: message(3, "06"), expected: .reset(.messageHeaderError, 2)),
    // RFC 4271 §6.2 OPEN errors.
    MalformedCase(name: "OPEN shorter than 29", bytes: message(1, "04 fde9 005a c0000201"), expected: .reset(.messageHeaderError, 2)),
    MalformedCase(name: "OPEN longer than 4096 even with extended messages", bytes: message(1, "04 fde9 005a c0000201 ff ff 0ff0 02 0fed" + String(repeating: "8000", count: 2030) + "0000" + "00"), expected: .reset(.messageHeaderError, 2),
                  context: CodecContext(fourOctetASN: true, maxMessageLength: 65535)),
    MalformedCase(name: "OPEN version 3", bytes: message(1, "03 fde9 005a c0000201 00"), expected: .reset(.openMessageError, 1), data: [0, 4]),
    MalformedCase(name: "OPEN parameter length past the end", bytes: message(1, "04 fde9 005a c0000201 09 0206 0104 0001 0001"), expected: .reset(.openMessageError, 0)),
    MalformedCase(name: "OPEN capability overruns its parameter", bytes: message(1, "04 fde9 005a c0000201 06 0204 0104 0001"), expected: .reset(.openMessageError, 0)),
    MalformedCase(name: "OPEN multiprotocol capability of length 3", bytes: message(1, "04 fde9 005a c0000201 07 0205 0103 000100"), expected: .reset(.openMessageError, 0)),
    MalformedCase(name: "OPEN acceptable", bytes: message(1, "04 fde9 005a c0000202 08 0206 0104 0001 0001"), expected: .accepted),
    MalformedCase(name: "OPEN hold time 0 is acceptable", bytes: message(1, "04 fde9 0000 c0000202 08 0206 0104 0001 0001"), expected: .accepted),
    MalformedCase(name: "OPEN from the wrong AS", bytes: message(1, "04 fdea 005a c0000202 08 0206 0104 0001 0001"), expected: .reset(.openMessageError, 2), data: [0xfd, 0xea]),
    MalformedCase(name: "OPEN hold time 2", bytes: message(1, "04 fde9 0002 c0000202 08 0206 0104 0001 0001"), expected: .reset(.openMessageError, 6)),
    MalformedCase(name: "OPEN hold time 1", bytes: message(1, "04 fde9 0001 c0000202 08 0206 0104 0001 0001"), expected: .reset(.openMessageError, 6)),
    MalformedCase(name: "OPEN BGP identifier 0.0.0.0", bytes: message(1, "04 fde9 005a 00000000 08 0206 0104 0001 0001"), expected: .reset(.openMessageError, 3)),
    MalformedCase(name: "OPEN internal peer with our BGP identifier", bytes: message(1, "04 fde9 005a c0000201 08 0206 0104 0001 0001"), expected: .reset(.openMessageError, 3)),
    MalformedCase(name: "OPEN with an unsupported optional parameter", bytes: message(1, "04 fde9 005a c0000202 0c 0206 0104 0001 0001 0102 0000"), expected: .reset(.openMessageError, 4)),
    MalformedCase(name: "OPEN without a required capability", bytes: message(1, "04 fde9 005a c0000202 00"), expected: .reset(.openMessageError, 7), data: hex("0104 0001 0001")),
    // RFC 7313 §5.
    MalformedCase(name: "ROUTE-REFRESH of 24 octets", bytes: message(5, "0001 00 01 00"), expected: .reset(.routeRefreshMessageError, 1)),
    // RFC 4271 §6.3 / RFC 7606 §4 UPDATE structure.
    MalformedCase(name: "withdrawn routes length overruns", bytes: message(2, "0010 0000"), expected: .reset(.updateMessageError, 1)),
    MalformedCase(name: "total attribute length overruns", bytes: message(2, "0000 0010 40010100"), expected: .reset(.updateMessageError, 1)),
    MalformedCase(name: "attribute length overruns the attribute block", bytes: update(attributes: base + "c0 08 08 ffffff01", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "fewer than 3 octets left for an attribute", bytes: update(attributes: base + "c0 08", nlri: aNLRI), expected: .treatAsWithdraw(.malformedAttributeList)),
    MalformedCase(name: "extended length attribute header truncated", bytes: update(attributes: base + "d0 08 00", nlri: aNLRI), expected: .treatAsWithdraw(.malformedAttributeList)),
    // RFC 7606 §3 duplicates.
    MalformedCase(name: "duplicate ORIGIN keeps the first", bytes: update(attributes: base + "40 01 01 02", nlri: aNLRI), expected: .discard(.malformedAttributeList)),
    MalformedCase(name: "two MP_REACH_NLRI", bytes: update(attributes: origin + asPath + mpReachV6 + mpReachV6), expected: .reset(.updateMessageError, 1)),
    MalformedCase(name: "two MP_UNREACH_NLRI", bytes: update(attributes: "90 0f 0003 000201 90 0f 0003 000201"), expected: .reset(.updateMessageError, 1)),
    // RFC 7606 §3 flags.
    MalformedCase(name: "ORIGIN flagged optional", bytes: update(attributes: "c0 01 01 00" + asPath + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.attributeFlagsError), data: hex("c0010100")),
    MalformedCase(name: "COMMUNITIES flagged well-known", bytes: update(attributes: base + "40 08 04 ffffff01", nlri: aNLRI), expected: .treatAsWithdraw(.attributeFlagsError)),
    MalformedCase(name: "AGGREGATOR flagged non-transitive", bytes: update(attributes: base + "80 07 08 0000fde9 c0000201", nlri: aNLRI), expected: .discard(.attributeFlagsError)),
    MalformedCase(name: "MP_REACH_NLRI flagged transitive", bytes: update(attributes: origin + asPath + "d0 0e 001e 0002 01 10 20010db8000000000000000000000001 00 40 20010db800000001"), expected: .reset(.updateMessageError, 4)),
    // RFC 7606 §3 missing well-known mandatory attributes.
    MalformedCase(name: "ORIGIN missing", bytes: update(attributes: asPath + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.missingWellKnownAttribute), data: [1]),
    MalformedCase(name: "AS_PATH missing", bytes: update(attributes: origin + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.missingWellKnownAttribute), data: [2]),
    MalformedCase(name: "NEXT_HOP missing with classic NLRI", bytes: update(attributes: origin + asPath, nlri: aNLRI), expected: .treatAsWithdraw(.missingWellKnownAttribute), data: [3]),
    MalformedCase(name: "NEXT_HOP not needed for MP_REACH only", bytes: update(attributes: origin + asPath + mpReachV6), expected: .accepted),
    MalformedCase(name: "withdrawal only needs no attributes", bytes: update(withdrawn: aNLRI), expected: .accepted),
    // RFC 7606 §7 per attribute.
    MalformedCase(name: "ORIGIN value 3", bytes: update(attributes: "40 01 01 03" + asPath + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.invalidOriginAttribute)),
    MalformedCase(name: "ORIGIN of zero length", bytes: update(attributes: "40 01 00" + asPath + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "AS_PATH unknown segment type 5", bytes: update(attributes: origin + "40 02 06 05 01 0000fde9" + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.malformedASPath)),
    MalformedCase(name: "AS_PATH segment of zero ASes", bytes: update(attributes: origin + "40 02 02 02 00" + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.malformedASPath)),
    MalformedCase(name: "AS_PATH segment overruns", bytes: update(attributes: origin + "40 02 06 02 02 0000fde9" + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.malformedASPath)),
    MalformedCase(name: "AS_PATH single leftover octet", bytes: update(attributes: origin + "40 02 07 02 01 0000fde9 02" + nextHop, nlri: aNLRI), expected: .treatAsWithdraw(.malformedASPath)),
    MalformedCase(name: "NEXT_HOP of 5 octets", bytes: update(attributes: origin + asPath + "40 03 05 c000020100", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "NEXT_HOP 0.0.0.0", bytes: update(attributes: origin + asPath + "40 03 04 00000000", nlri: aNLRI), expected: .treatAsWithdraw(.invalidNextHopAttribute)),
    MalformedCase(name: "NEXT_HOP multicast", bytes: update(attributes: origin + asPath + "40 03 04 e0000005", nlri: aNLRI), expected: .treatAsWithdraw(.invalidNextHopAttribute)),
    MalformedCase(name: "MED of 2 octets", bytes: update(attributes: base + "80 04 02 0064", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "LOCAL_PREF of 3 octets", bytes: update(attributes: base + "40 05 03 000064", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "ATOMIC_AGGREGATE with a value", bytes: update(attributes: base + "40 06 01 00", nlri: aNLRI), expected: .discard(.attributeLengthError)),
    MalformedCase(name: "AGGREGATOR of 7 octets", bytes: update(attributes: base + "c0 07 07 00fde9 c0000201", nlri: aNLRI), expected: .discard(.attributeLengthError)),
    MalformedCase(name: "COMMUNITIES of 5 octets", bytes: update(attributes: base + "c0 08 05 ffffff0100", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "COMMUNITIES of zero length", bytes: update(attributes: base + "c0 08 00", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "ORIGINATOR_ID of 3 octets", bytes: update(attributes: base + "80 09 03 c00002", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "CLUSTER_LIST of 6 octets", bytes: update(attributes: base + "80 0a 06 c0000201 0000", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "EXTENDED_COMMUNITIES of 7 octets", bytes: update(attributes: base + "c0 10 07 0002fde9000000", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "LARGE_COMMUNITY of 8 octets", bytes: update(attributes: base + "c0 20 08 0000fde900000001", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "AS4_PATH malformed", bytes: update(attributes: base + "c0 11 06 09 01 0000fde9", nlri: aNLRI), expected: .discard(.malformedASPath)),
    MalformedCase(name: "AS4_AGGREGATOR of 6 octets", bytes: update(attributes: base + "c0 12 06 fde9 c0000201", nlri: aNLRI), expected: .discard(.attributeLengthError)),
    // RFC 7606 §7.11 MP_REACH / MP_UNREACH.
    MalformedCase(name: "MP_REACH IPv6 with a 4-octet next hop", bytes: update(attributes: origin + asPath + "90 0e 000e 0002 01 04 c0000201 00 40 20010db800000001"), expected: .reset(.updateMessageError, 9)),
    MalformedCase(name: "MP_REACH IPv4 with a 5-octet next hop", bytes: update(attributes: origin + asPath + "90 0e 000b 0001 01 05 c000020100 00 00"), expected: .reset(.updateMessageError, 9)),
    MalformedCase(name: "MP_REACH next hop overruns", bytes: update(attributes: origin + asPath + "90 0e 0006 0002 01 10 2001 0db8"), expected: .reset(.updateMessageError, 9)),
    MalformedCase(name: "MP_REACH IPv6 prefix length 129", bytes: update(attributes: origin + asPath + "90 0e 001e 0002 01 10 20010db8000000000000000000000001 00 81 20010db800000001"), expected: .reset(.updateMessageError, 9)),
    MalformedCase(name: "MP_UNREACH prefix truncated", bytes: update(attributes: "90 0f 0006 0002 01 40 2001 0d"), expected: .reset(.updateMessageError, 9)),
    // RFC 4271 §6.3 / RFC 7606 §5.3 NLRI.
    MalformedCase(name: "NLRI prefix length 33", bytes: update(attributes: base, nlri: "21 c0000201 00"), expected: .reset(.updateMessageError, 10)),
    MalformedCase(name: "NLRI prefix octets truncated", bytes: update(attributes: base, nlri: "18 c000"), expected: .reset(.updateMessageError, 10)),
    MalformedCase(name: "withdrawn prefix length 40", bytes: update(withdrawn: "28 c0000201 00"), expected: .reset(.updateMessageError, 10)),
    MalformedCase(name: "NLRI of length 0 is the default route", bytes: update(attributes: base, nlri: "00"), expected: .accepted),
    // Unknown attributes.
    MalformedCase(name: "unrecognised well-known attribute", bytes: update(attributes: base + "40 63 01 00", nlri: aNLRI), expected: .reset(.updateMessageError, 2), data: hex("40630100")),
    MalformedCase(name: "unknown optional non-transitive is dropped", bytes: update(attributes: base + "80 63 01 00", nlri: aNLRI), expected: .accepted),
    // The 2023 incidents: a malformed optional transitive attribute must never reset.
    MalformedCase(name: "garbage in unknown optional transitive 29", bytes: update(attributes: base + "c0 1d 03 ffffff", nlri: aNLRI), expected: .accepted),
    MalformedCase(name: "malformed optional transitive LARGE_COMMUNITY", bytes: update(attributes: base + "c0 20 0d 00000000000000000000000000", nlri: aNLRI), expected: .treatAsWithdraw(.attributeLengthError)),
    MalformedCase(name: "malformed attributes in a withdraw-only UPDATE", bytes: update(withdrawn: aNLRI, attributes: "40 01 01 09"), expected: .treatAsWithdraw(.invalidOriginAttribute)),
]

@Suite struct MalformedInputTests {
    @Test(arguments: malformedCases)
    func outcome(_ row: MalformedCase) {
        let (outcome, _, error) = Outcome.of(row.bytes, context: row.context)
        #expect(outcome == row.expected, "\(row.name)")
        if let data = row.data { #expect(error?.data == data, "\(row.name)") }
        // Whatever the outcome, a reset becomes exactly one NOTIFICATION with those numbers.
        if case .reset(let code, let subcode) = row.expected, let error {
            let n = NotificationMessage(error)
            #expect(n.code == code.rawValue && n.subcode == subcode)
        }
    }

    @Test func treatAsWithdrawTurnsAnnouncementsIntoWithdrawals() throws {
        let bytes = update(withdrawn: "18 0a0000", attributes: "40 01 01 07" + asPath + nextHop + mpReachV6, nlri: aNLRI)
        guard case .update(let u) = try BGPMessage.decode(bytes, context: CodecContext(fourOctetASN: true)) else { Issue.record("not an UPDATE"); return }
        #expect(u.isTreatAsWithdraw)
        #expect(u.announced.isEmpty)
        #expect(Set(u.withdrawn) == Set([nlri("10.0.0.0/24"), nlri("192.0.2.0/24"), nlri("2001:db8:0:1::/64")]))
    }

    @Test func discardedAttributeLeavesTheRest() throws {
        let bytes = update(attributes: base + "40 06 01 00" + "c0 08 04 ffffff01", nlri: aNLRI)
        guard case .update(let u) = try BGPMessage.decode(bytes, context: CodecContext(fourOctetASN: true)) else { Issue.record("not an UPDATE"); return }
        #expect(!u.isTreatAsWithdraw)
        #expect(u.announced == [nlri("192.0.2.0/24")])
        #expect(u.attributes.communities == [.noExport])
        #expect(!u.attributes.contains(.atomicAggregate))
    }

    /// RFC 7313 §5 puts the whole ROUTE-REFRESH in the NOTIFICATION's Data; with extended
    /// messages that can be 65,535 octets, more than a NOTIFICATION may carry. The Data is cut so
    /// the NOTIFICATION is at most 4,096 octets (RFC 4271 §4.1), and the cut keeps the start.
    @Test func aNotificationAboutAHugeMessageFitsInFourKilobytes() throws {
        let length = 60_000
        var refresh = [UInt8](repeating: 0xFF, count: 16) + [UInt8(length >> 8), UInt8(length & 0xFF), 5]
        refresh += [0, 1, 0, 1] + [UInt8](repeating: 0xAB, count: length - 23)
        var thrown: BGPError?
        do { _ = try BGPMessage.decode(refresh, context: CodecContext(maxMessageLength: BGPHeader.extendedMaximumLength)) } catch { thrown = error }
        let error = try #require(thrown, "a 60,000-octet ROUTE-REFRESH is refused")
        #expect(error.data.count == length, "the error keeps the whole message (RFC 7313 §5)")
        let sent = BGPMessage.notification(NotificationMessage(error)).encoded()
        #expect(sent.count == BGPHeader.maximumLength, "NOTIFICATION of \(sent.count) octets")
        #expect(Int(sent[16]) << 8 | Int(sent[17]) == sent.count, "the length field says what was sent")
        #expect(Array(sent[21...]) == Array(refresh.prefix(NotificationMessage.maximumDataLength)))
        guard case .notification(let received) = try BGPMessage.decode(sent) else { Issue.record("not a NOTIFICATION"); return }
        #expect(received.code == error.code.rawValue && received.subcode == error.subcode)
    }

    @Test func hostBitsInNLRIAreCleared() throws {
        // 192.0.3.0/23 has a host bit set: read as 192.0.2.0/23.
        guard case .update(let w) = try BGPMessage.decode(update(attributes: base, nlri: "17 c00003"), context: CodecContext(fourOctetASN: true)) else { Issue.record("not an UPDATE"); return }
        #expect(w.nlri == [nlri("192.0.2.0/23")])
    }
}
