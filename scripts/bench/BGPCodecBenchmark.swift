// Release micro-benchmark: encode 1,000,000 IPv4 /32 prefixes sharing one attribute set into
// UPDATE messages with UpdatePacker, then decode them back. Built only by
// scripts/bench/bgp-codec.sh.
import BGP
import IP

@main
struct BGPCodecBenchmark {
    static func main() throws {
        let arguments = CommandLine.arguments
        let count = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
        let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
        let extended = arguments.contains("--extended")
        let context = CodecContext(fourOctetASN: true, maxMessageLength: extended ? 65535 : 4096)
        let attributes: [PathAttribute] = [
            .origin(.igp), .asPath(.sequence([65001])), .multiExitDiscriminator(0),
            .communities([Community(asn: 65001, value: 100)]), .largeCommunities([LargeCommunity(65001, 1, 1)]),
        ]
        let nextHop = NextHop.ipv4(IPv4Address(100, 64, 0, 1))
        let prefixes = (0..<UInt32(count)).map { NLRI(IPPrefix(host: .v4(IPv4Address(0x0A00_0000 &+ $0)))) }
        let packer = UpdatePacker(context: context)
        let clock = ContinuousClock()

        var bestEncode = Duration.seconds(1_000_000), bestDecode = Duration.seconds(1_000_000)
        var messages: [[UInt8]] = []
        for _ in 0..<rounds {
            let start = clock.now
            messages = try packer.announcements(prefixes, attributes: attributes, nextHop: nextHop)
            bestEncode = min(bestEncode, clock.now - start)

            let decodeStart = clock.now
            var decoded = 0
            for bytes in messages {
                guard case .update(let update) = try BGPMessage.decode(bytes, context: context), update.errors.isEmpty else {
                    fatalError("benchmark message did not decode cleanly")
                }
                decoded += update.nlri.count
            }
            bestDecode = min(bestDecode, clock.now - decodeStart)
            precondition(decoded == count, "decoded \(decoded) of \(count) prefixes")
        }
        let octets = messages.reduce(0) { $0 + $1.count }
        func rate(_ d: Duration) -> String {
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return "\(Int(Double(count) / seconds)) prefixes/s (\(String(Int(seconds * 1000))) ms)"
        }
        print("prefixes: \(count) IPv4 /32, shared attributes; \(messages.count) UPDATEs of ≤\(context.maxMessageLength) octets, \(octets) octets")
        print("encode (UpdatePacker.announcements): \(rate(bestEncode))  [best of \(rounds)]")
        print("decode (BGPMessage.decode):          \(rate(bestDecode))  [best of \(rounds)]")
    }
}
