import TestSupport
import Testing
@testable import BGP
import IP

/// Inputs found by `scripts/fuzz/bgp.sh`, kept so that they stay fixed. Each must decode or
/// throw without trapping, and anything decoded cleanly must survive encode → decode.
let fuzzRegressions: [(name: String, hex: String)] = [
    // Seeds and hand-made edge cases around the limits the fuzzer explores first.
    ("empty", ""),
    ("marker only", "ffffffffffffffffffffffffffffffff"),
    ("header claiming 65535 octets", "ffffffffffffffffffffffffffffffff ffff 02"),
    ("OPEN with RFC 9072 marker but no length", "ffffffffffffffffffffffffffffffff 001e 01 04fde9005ac0000201ff ff"),
    ("OPEN with RFC 9072 length past the end", "ffffffffffffffffffffffffffffffff 0021 01 04fde9005ac0000201ff ff 00ff 02"),
    ("UPDATE with extended-length attribute header cut", "ffffffffffffffffffffffffffffffff 001a 02 0000 0003 d00e00"),
    ("MP_REACH with next-hop length 255", "ffffffffffffffffffffffffffffffff 0021 02 0000 000a 800e07 000201 ff 0000 00 00"),
    ("capability of length 255 in a short parameter", "ffffffffffffffffffffffffffffffff 0021 01 04fde9005ac0000201 04 0202 01ff"),
    ("FQDN capability with host length past the value", "ffffffffffffffffffffffffffffffff 0022 01 04fde9005ac0000201 05 0203 490109"),
    ("NOTIFICATION shutdown length past the data", "ffffffffffffffffffffffffffffffff 0017 03 0602 ff41"),
    ("AS_PATH segment count 255 with 2 octets left", "ffffffffffffffffffffffffffffffff 001d 02 0000 0006 40020302ff00"),
]

@Suite struct FuzzRegressionTests {
    @Test(arguments: fuzzRegressions.map(\.name))
    func neverTraps(_ name: String) throws {
        let bytes = hex(fuzzRegressions.first { $0.name == name }!.hex)
        for context in [CodecContext.initial, CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast, .ipv6Unicast], maxMessageLength: 65535)] {
            _ = try? MessageFraming.nextMessageLength(in: bytes, maxMessageLength: context.maxMessageLength)
            guard let message = try? BGPMessage.decode(bytes, context: context) else { continue }
            if case .notification(let n) = message { _ = n.description }
            if case .update(let u) = message, !u.errors.isEmpty { continue }
            #expect(try BGPMessage.decode(message.encoded(context: context), context: context) == message, "\(name)")
        }
    }
}
