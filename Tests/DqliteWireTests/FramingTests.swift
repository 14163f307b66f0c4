import TestSupport
import Testing
@testable import DqliteWire

@Suite struct FramingTests {
    static let welcome = message(2, "983a000000000000")

    @Test func needsTheHeaderFirst() throws {
        #expect(try DqliteFraming.nextMessage(in: [UInt8]()) == .needMoreBytes(total: 8))
        #expect(try DqliteFraming.nextMessage(in: Self.welcome[0..<7]) == .needMoreBytes(total: 8))
    }

    @Test func thenTheWholeBody() throws {
        #expect(try DqliteFraming.nextMessage(in: Self.welcome[0..<8]) == .needMoreBytes(total: 16))
        #expect(try DqliteFraming.nextMessage(in: Self.welcome[0..<15]) == .needMoreBytes(total: 16))
        #expect(try DqliteFraming.nextMessage(in: Self.welcome) == .message(DqliteHeader(words: 1, type: 2), length: 16))
    }

    @Test func framesTheFirstOfSeveralMessagesInASlice() throws {
        let stream = hex("ff") + Self.welcome + message(8, "0000000000000000")
        #expect(try DqliteFraming.nextMessage(in: stream[1...]) == .message(DqliteHeader(words: 1, type: 2), length: 16))
        #expect(try DqliteFraming.nextMessage(in: stream[17...]) == .message(DqliteHeader(words: 1, type: 8), length: 16))
        #expect(try DqliteResponse.decode(stream[17..<33]) == .empty)
    }

    @Test func keepsSchemaAndUnusedBytes() throws {
        let header = try #require(DqliteHeader(hex("02000000 05 01 3412")))
        #expect(header == DqliteHeader(words: 2, type: 5, schema: 1, extra: 0x1234))
        #expect(header.bodyLength == 16)
    }

    @Test func refusesAnAbsurdLengthBeforeTheBodyArrives() throws {
        // 0xffffffff words = 32 GiB announced by the first 8 bytes
        let header = hex("ffffffff 07 00 0000")
        #expect(throws: DqliteWireError(.header, field: "body length", .bodyTooLong(bytes: 0xffff_ffff * 8, limit: DqliteFraming.defaultMaximumBodyLength))) {
            _ = try DqliteFraming.nextMessage(in: header)
        }
        // the maximum is configurable (a DUMP answer carries a whole database)
        let small = hex("03000000 09 00 0000")
        #expect(throws: DqliteWireError(.header, field: "body length", .bodyTooLong(bytes: 24, limit: 16))) {
            _ = try DqliteFraming.nextMessage(in: small, maximumBodyLength: 16)
        }
        #expect(try DqliteFraming.nextMessage(in: small, maximumBodyLength: 24) == .needMoreBytes(total: 32))
    }

    @Test func decodeWantsExactlyOneMessage() throws {
        #expect(throws: DqliteWireError(.header, field: "body length", .lengthMismatch(declared: 16, actual: 24))) {
            _ = try DqliteResponse.decode(Self.welcome + [0, 0, 0, 0, 0, 0, 0, 0])
        }
        #expect(throws: DqliteWireError(.header, field: "header", .truncated(needed: 8, available: 3))) {
            _ = try DqliteResponse.decode([1, 0, 0])
        }
        let header = DqliteHeader(words: 2, type: 2)
        #expect(throws: DqliteWireError(.header, field: "body length", .lengthMismatch(declared: 16, actual: 8))) {
            _ = try DqliteResponse.decode(header: header, body: Self.welcome[8...])
        }
    }
}
