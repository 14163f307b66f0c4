import Testing
@testable import BFD

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
func bytes(_ hex: String) -> [UInt8] {
    let clean = hex.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = clean.startIndex
    while i < clean.endIndex {
        let j = clean.index(i, offsetBy: 2)
        out.append(UInt8(clean[i..<j], radix: 16)!)
        i = j
    }
    return out
}

@Suite("BFD Control packet codec (RFC 5880 §4.1, §6.8.6)")
struct ControlPacketTests {
    @Test("A Down packet at the slow rate: bytes to value and back")
    func downPacket() throws {
        let wire = bytes("20 40 03 18  00000001  00000000  000f4240  000493e0  00000000")
        let packet = try BFDControlPacket(decoding: wire)
        #expect(packet == BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 1, yourDiscriminator: 0,
                                           desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 300_000))
        #expect(hex(packet.encoded()) == hex(wire))
    }

    @Test("Up with Poll, and Down with a diagnostic and Final")
    func flags() throws {
        let up = BFDControlPacket(state: .up, poll: true, detectMultiplier: 5, myDiscriminator: 0x1122_3344,
                                  yourDiscriminator: 0x5566_7788, desiredMinTxInterval: 300_000, requiredMinRxInterval: 10_000)
        #expect(hex(up.encoded()) == "20e00518" + "11223344" + "55667788" + "000493e0" + "00002710" + "00000000")
        #expect(try BFDControlPacket(decoding: up.encoded()) == up)

        let down = BFDControlPacket(diagnostic: .controlDetectionTimeExpired, state: .down, final: true, controlPlaneIndependent: true,
                                    detectMultiplier: 3, myDiscriminator: 7, yourDiscriminator: 9,
                                    desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 1_000_000)
        #expect(hex(down.encoded()).prefix(8) == "21580318")
        #expect(try BFDControlPacket(decoding: down.encoded()) == down)
        let admin = BFDControlPacket(diagnostic: .administrativelyDown, state: .adminDown, detectMultiplier: 3, myDiscriminator: 7,
                                     yourDiscriminator: 0, desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 0)
        #expect(hex(admin.encoded()).prefix(8) == "27000318")
    }

    @Test("Trailing bytes beyond Length are ignored; reserved diagnostics read as none")
    func lenient() throws {
        let wire = bytes("3f 40 03 18  00000001  00000000  000f4240  000493e0  00000000  dead")
        let packet = try BFDControlPacket(decoding: wire)
        #expect(packet.diagnostic == BFDDiagnostic.none)
        #expect(packet.state == .down)
    }

    @Test("Malformed packets are discarded with the §6.8.6 reason", arguments: [
        ("20 40 03 18 00000001 00000000 000f4240 000493e0 0000", BFDPacketError.tooShort(22)),
        ("40 40 03 18 00000001 00000000 000f4240 000493e0 00000000", .badVersion(2)),
        ("20 40 03 17 00000001 00000000 000f4240 000493e0 00000000", .badLength(field: 23, received: 24)),
        ("20 40 03 19 00000001 00000000 000f4240 000493e0 00000000", .badLength(field: 25, received: 24)),
        ("20 40 00 18 00000001 00000000 000f4240 000493e0 00000000", .zeroDetectMultiplier),
        ("20 41 03 18 00000001 00000000 000f4240 000493e0 00000000", .multipointSet),
        ("20 40 03 18 00000000 00000000 000f4240 000493e0 00000000", .zeroMyDiscriminator),
        ("20 c0 03 18 00000001 00000000 000f4240 000493e0 00000000", .zeroYourDiscriminatorWhileActive(.up)),
        ("20 80 03 18 00000001 00000000 000f4240 000493e0 00000000", .zeroYourDiscriminatorWhileActive(.`init`)),
        ("20 44 03 1a 00000001 00000000 000f4240 000493e0 00000000 0102", .authenticationNotSupported),
    ])
    func malformed(_ wire: String, _ expected: BFDPacketError) {
        #expect(throws: expected) { try BFDControlPacket(decoding: bytes(wire)) }
    }

    @Test("Fuzz: seeded random and mutated inputs never crash the decoder or a session")
    func fuzz() throws {
        var random = SplitMix64(state: 0x5EED_BFD)
        let valid = BFDControlPacket(state: .up, poll: true, detectMultiplier: 3, myDiscriminator: 42, yourDiscriminator: 1,
                                     desiredMinTxInterval: 300_000, requiredMinRxInterval: 300_000).encoded()
        var session = BFDSession(configuration: BFDConfiguration(), localDiscriminator: 1, seed: 1)
        var decoded = 0
        var now: UInt64 = 0
        for round in 0..<20_000 {
            var input: [UInt8]
            if round % 2 == 0 {
                input = (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                input = valid
                for _ in 0..<(1 + random.next() % 3) {
                    input[Int(random.next() % UInt64(input.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                }
                if random.next() % 8 == 0 { input.removeLast(Int(random.next() % 24)) }
            }
            guard let packet = try? BFDControlPacket(decoding: input) else { continue }
            decoded += 1
            // Whatever decodes re-encodes to a packet that decodes to the same value.
            #expect(try BFDControlPacket(decoding: packet.encoded()) == packet)
            now += random.next() % 2_000_000
            _ = session.receive(packet, now: now)
            if random.next() % 4 == 0 { _ = session.detectionTimerExpired(now: now) }
            if random.next() % 4 == 0 { _ = session.transmitTimerExpired(now: now) }
        }
        #expect(decoded > 1_000)
    }
}
