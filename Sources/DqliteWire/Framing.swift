// Framing: where one message ends in a byte stream, before and apart from decoding it.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Body length in 8-byte words (u32, little endian)     |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |    Schema     |        Unused (zero)          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Body (length × 8 bytes) …                     |

/// The 8-byte header in front of every message, in both directions.
public struct DqliteHeader: Hashable, Sendable {
    public static let size = 8

    /// Body length in 8-byte words.
    public var words: UInt32
    /// The request or response type code.
    public var type: UInt8
    /// The schema version of the body's layout (dqlite 1.11 sends 0 and ignores what it gets).
    public var schema: UInt8
    /// The two unused bytes, kept as read.
    public var extra: UInt16

    public init(words: UInt32, type: UInt8, schema: UInt8 = 0, extra: UInt16 = 0) {
        self.words = words
        self.type = type
        self.schema = schema
        self.extra = extra
    }

    /// The body length in bytes.
    public var bodyLength: Int { Int(words) * 8 }

    /// Reads the header at the start of `bytes`; nil when fewer than 8 bytes are there.
    public init?<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) where Bytes.Index == Int {
        guard bytes.count >= Self.size else { return nil }
        let s = bytes.startIndex
        words = UInt32(bytes[s]) | UInt32(bytes[s + 1]) << 8 | UInt32(bytes[s + 2]) << 16 | UInt32(bytes[s + 3]) << 24
        type = bytes[s + 4]
        schema = bytes[s + 5]
        extra = UInt16(bytes[s + 6]) | UInt16(bytes[s + 7]) << 8
    }
}

/// What `DqliteFraming.nextMessage` found at the start of a receive buffer.
public enum DqliteFrame: Hashable, Sendable {
    /// The next message is not all there: the buffer must hold at least `total` bytes from its
    /// start before asking again (8 until the header is there, then header + body).
    case needMoreBytes(total: Int)
    /// A whole message of `length` bytes (header included) is at the start of the buffer.
    case message(DqliteHeader, length: Int)
}

/// Splits a byte stream into messages without decoding them.
public enum DqliteFraming {
    /// The longest body accepted unless told otherwise: 64 MiB. ROWS come in batches of about a
    /// page, but FILES (the answer to DUMP) carries a whole database and its WAL in one message:
    /// pass a larger maximum for it.
    public static let defaultMaximumBodyLength = 64 << 20

    /// Finds the message at the start of `bytes` (the bytes received so far).
    ///
    /// Throws as soon as the header announces a body longer than `maximumBodyLength`, so a
    /// reader never buffers toward an absurd length (a u32 of words can claim 32 GiB).
    public static func nextMessage<Bytes: RandomAccessCollection<UInt8>>(
        in bytes: Bytes, maximumBodyLength: Int = defaultMaximumBodyLength
    ) throws(DqliteWireError) -> DqliteFrame where Bytes.Index == Int {
        guard let header = DqliteHeader(bytes) else { return .needMoreBytes(total: DqliteHeader.size) }
        guard header.bodyLength <= maximumBodyLength else {
            throw DqliteWireError(.header, field: "body length", .bodyTooLong(bytes: UInt64(header.bodyLength), limit: maximumBodyLength))
        }
        let length = DqliteHeader.size + header.bodyLength
        return bytes.count >= length ? .message(header, length: length) : .needMoreBytes(total: length)
    }

    /// Splits one whole message (as framed by `nextMessage`) into its header and body, checking
    /// that the header's length is exactly what was given.
    static func split(_ message: ArraySlice<UInt8>) throws(DqliteWireError) -> (DqliteHeader, ArraySlice<UInt8>) {
        guard let header = DqliteHeader(message) else {
            throw DqliteWireError(.header, field: "header", .truncated(needed: DqliteHeader.size, available: message.count))
        }
        let declared = DqliteHeader.size + header.bodyLength
        guard declared == message.count else {
            throw DqliteWireError(.header, field: "body length", .lengthMismatch(declared: declared, actual: message.count))
        }
        return (header, message.dropFirst(DqliteHeader.size))
    }
}
