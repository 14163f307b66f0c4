import TestSupport
import Testing
@testable import BGP
import IP

/// One byte vector per capability and per path attribute, both ways, compared as hex.
struct CapabilityVector: Sendable, CustomTestStringConvertible {
    let name: String
    let hex: String
    let value: Capability
    var testDescription: String { name }
}

let capabilityVectors: [CapabilityVector] = [
    .init(name: "multiprotocol IPv4 unicast", hex: "01 04 0001 00 01", value: .multiprotocol(.ipv4Unicast)),
    .init(name: "multiprotocol IPv6 unicast", hex: "01 04 0002 00 01", value: .multiprotocol(.ipv6Unicast)),
    .init(name: "route refresh", hex: "02 00", value: .routeRefresh),
    .init(name: "extended next hop", hex: "05 0c 0001 0001 0002 0001 0002 0002",
          value: .extendedNextHop([.init(family: .ipv4Unicast, nextHopAFI: .ipv6), .init(family: AddressFamily(afi: .ipv4, safi: .multicast), nextHopAFI: .ipv6)])),
    .init(name: "extended message", hex: "06 00", value: .extendedMessage),
    .init(name: "graceful restart, restarting, two families", hex: "40 0a c05a 0001 01 80 0002 01 00",
          value: .gracefulRestart(GracefulRestart(restarting: true, notificationSupport: true, restartTime: 90,
                                                  families: [.init(.ipv4Unicast, forwardingPreserved: true), .init(.ipv6Unicast)]))),
    .init(name: "graceful restart, helper only", hex: "40 02 0078", value: .gracefulRestart(GracefulRestart(restartTime: 120))),
    .init(name: "four-octet AS", hex: "41 04 fa56ea00", value: .fourOctetASN(4_200_000_000)),
    .init(name: "ADD-PATH", hex: "45 08 0001 01 01 0002 01 02", value: .addPath([.ipv4Unicast: .receive, .ipv6Unicast: .send])),
    .init(name: "enhanced route refresh", hex: "46 00", value: .enhancedRouteRefresh),
    .init(name: "FQDN", hex: "49 0d 04 6e6f6465 07 6578616d706c65", value: .fqdn(hostname: "node", domain: "example")),
    .init(name: "unknown (BGP role)", hex: "09 01 03", value: .unknown(code: 9, value: [3])),
]

struct AttributeVector: Sendable, CustomTestStringConvertible {
    let name: String
    let hex: String
    let value: PathAttribute
    var fourOctetASN = true
    var testDescription: String { name }
}

let attributeVectors: [AttributeVector] = [
    .init(name: "ORIGIN incomplete", hex: "40 01 01 02", value: .origin(.incomplete)),
    .init(name: "AS_PATH sequence and set, 4-octet", hex: "40 02 14 02 02 0000fde9 fa56ea00 01 02 00000001 00000002",
          value: .asPath(ASPath([.init(.sequence, [65001, 4_200_000_000]), .init(.set, [1, 2])]))),
    .init(name: "AS_PATH confederation segments, 2-octet", hex: "40 02 0a 03 01 fde9 02 02 fdea fdeb",
          value: .asPath(ASPath([.init(.confedSequence, [65001]), .init(.sequence, [65002, 65003])])), fourOctetASN: false),
    .init(name: "AS_PATH empty (iBGP)", hex: "40 02 00", value: .asPath(ASPath())),
    .init(name: "NEXT_HOP", hex: "40 03 04 64400001", value: .nextHop(IPv4Address(100, 64, 0, 1))),
    .init(name: "MULTI_EXIT_DISC", hex: "80 04 04 000003e8", value: .multiExitDiscriminator(1000)),
    .init(name: "LOCAL_PREF", hex: "40 05 04 00000064", value: .localPreference(100)),
    .init(name: "ATOMIC_AGGREGATE", hex: "40 06 00", value: .atomicAggregate),
    .init(name: "AGGREGATOR 4-octet", hex: "c0 07 08 fa56ea00 64400001", value: .aggregator(Aggregator(asn: 4_200_000_000, address: IPv4Address(100, 64, 0, 1)))),
    .init(name: "AGGREGATOR 2-octet", hex: "c0 07 06 fde9 64400001", value: .aggregator(Aggregator(asn: 65001, address: IPv4Address(100, 64, 0, 1))), fourOctetASN: false),
    .init(name: "COMMUNITIES well-known", hex: "c0 08 10 ffffff01 ffffff02 ffffff03 ffff029a",
          value: .communities([.noExport, .noAdvertise, .noExportSubconfed, .blackhole])),
    .init(name: "ORIGINATOR_ID", hex: "80 09 04 0a000001", value: .originatorID(IPv4Address(10, 0, 0, 1))),
    .init(name: "CLUSTER_LIST", hex: "80 0a 08 0a000001 0a000002", value: .clusterList([IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2)])),
    .init(name: "MP_REACH_NLRI IPv6, 16-octet next hop", hex: "90 0e 001d 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001 00",
          value: .mpReachNLRI(MPReachNLRI(family: .ipv6Unicast, nextHop: .ipv6(IPv6Address(0x2001_0db8 << 96 | 1), linkLocal: nil),
                                          nlri: [NLRI(IPPrefix("2001:db8:1::/48")!), NLRI(IPPrefix("::/0")!)]))),
    .init(name: "MP_UNREACH_NLRI IPv6", hex: "90 0f 0014 0002 01 80 20010db8000000000000000000000001",
          value: .mpUnreachNLRI(MPUnreachNLRI(family: .ipv6Unicast, withdrawn: [NLRI(IPPrefix("2001:db8::1/128")!)]))),
    .init(name: "EXTENDED_COMMUNITIES", hex: "c0 10 10 0002fde900000064 4300000000000000",
          value: .extendedCommunities([.routeTarget(asn: 65001, value: 100), ExtendedCommunity(rawValue: 0x4300_0000_0000_0000)])),
    .init(name: "AS4_PATH", hex: "c0 11 0a 02 02 fa56ea00 0000fde9", value: .as4Path(.sequence([4_200_000_000, 65001])), fourOctetASN: false),
    .init(name: "AS4_AGGREGATOR", hex: "c0 12 08 fa56ea00 64400001", value: .as4Aggregator(Aggregator(asn: 4_200_000_000, address: IPv4Address(100, 64, 0, 1))), fourOctetASN: false),
    .init(name: "LARGE_COMMUNITY", hex: "c0 20 18 fa56ea00 00000001 00000002 0000fde9 00000000 ffffffff",
          value: .largeCommunities([LargeCommunity(4_200_000_000, 1, 2), LargeCommunity(65001, 0, .max)])),
    .init(name: "unknown optional transitive (OTC, RFC 9234)", hex: "c0 23 04 0000fde9",
          value: .unknown(UnknownAttribute(flags: [.optional, .transitive], typeCode: 35, value: [0, 0, 0xfd, 0xe9]))),
]

@Suite struct ElementVectorTests {
    @Test(arguments: capabilityVectors)
    func capability(_ vector: CapabilityVector) throws {
        var reader = ByteReader(hex(vector.hex))
        let decoded = try Capability.decode(from: &reader)
        #expect(reader.isEmpty)
        #expect(decoded == vector.value)
        var writer = ByteWriter()
        vector.value.encode(into: &writer)
        #expect(writer.bytes.hexString == hex(vector.hex).hexString)
    }

    @Test(arguments: attributeVectors)
    func attribute(_ vector: AttributeVector) throws {
        let context = CodecContext(fourOctetASN: vector.fourOctetASN)
        var writer = ByteWriter()
        vector.value.encode(into: &writer, context: context)
        #expect(writer.bytes.hexString == hex(vector.hex).hexString)
        // Decoded alone inside an UPDATE: only MP_REACH_NLRI announces routes, and so lacks
        // ORIGIN and AS_PATH (RFC 7606 §3: treat-as-withdraw, not a decoding failure).
        guard case .update(let u) = try BGPMessage.decode(update(attributes: vector.hex), context: context) else { Issue.record("not an UPDATE"); return }
        if case .mpReachNLRI = vector.value {
            #expect(u.errors.map(\.data) == [[1], [2]])
        } else {
            #expect(u.errors.isEmpty)
        }
        #expect(u.attributes == [vector.value])
    }
}
