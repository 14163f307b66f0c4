// The reader and writer every dqlite codec here is written against.
//
// dqlite's wire format is little endian and word-aligned: integers are 4 or 8 bytes, strings are
// UTF-8 ended by a NUL and padded with zeros to the next 8-byte word, blobs are a u64 length and
// the bytes padded the same way (src/lib/serialize.h). Alignment is relative to the start of the
// message body, which always starts on a word boundary.
//
// The reader never traps: every read checks what is left of the body first and throws a
// `DqliteWireError` naming the message and the field. Verbs follow swift-nio's ByteBuffer:
// `read…` moves the cursor, `peek…` does not, `write…` appends.

/// A cursor over one message body.
struct WireReader {
    let bytes: ArraySlice<UInt8>
    /// Index (in `bytes`' indices) of the next byte to read.
    private(set) var index: Int
    let message: DqliteWireError.Message

    init(body: ArraySlice<UInt8>, message: DqliteWireError.Message) {
        bytes = body
        index = body.startIndex
        self.message = message
    }

    /// Bytes left to read.
    var remaining: Int { bytes.endIndex - index }
    var isAtEnd: Bool { index >= bytes.endIndex }
    /// Offset of the cursor from the start of the body, for errors.
    var offset: Int { index - bytes.startIndex }

    func error(_ field: @autoclosure () -> String, _ problem: DqliteWireError.Problem, at offset: Int? = nil) -> DqliteWireError {
        DqliteWireError(message, field: field(), problem, offset: offset ?? self.offset)
    }

    private func require(_ count: Int, _ field: @autoclosure () -> String) throws(DqliteWireError) {
        guard count <= remaining else { throw error(field(), .truncated(needed: count, available: remaining)) }
    }

    private func littleEndian(at start: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in (0..<count).reversed() { value = value << 8 | UInt64(bytes[start + i]) }
        return value
    }

    mutating func readUInt8(_ field: @autoclosure () -> String) throws(DqliteWireError) -> UInt8 {
        try require(1, field())
        defer { index += 1 }
        return bytes[index]
    }

    mutating func readUInt32(_ field: @autoclosure () -> String) throws(DqliteWireError) -> UInt32 {
        try require(4, field())
        defer { index += 4 }
        return UInt32(truncatingIfNeeded: littleEndian(at: index, count: 4))
    }

    mutating func readUInt64(_ field: @autoclosure () -> String) throws(DqliteWireError) -> UInt64 {
        try require(8, field())
        defer { index += 8 }
        return littleEndian(at: index, count: 8)
    }

    mutating func readInt64(_ field: @autoclosure () -> String) throws(DqliteWireError) -> Int64 {
        Int64(bitPattern: try readUInt64(field()))
    }

    mutating func readDouble(_ field: @autoclosure () -> String) throws(DqliteWireError) -> Double {
        Double(bitPattern: try readUInt64(field()))
    }

    /// The next word, without moving the cursor; nil when fewer than 8 bytes are left.
    func peekUInt64() -> UInt64? {
        remaining >= 8 ? littleEndian(at: index, count: 8) : nil
    }

    /// A NUL-terminated UTF-8 string and its padding to the next word.
    mutating func readText(_ field: @autoclosure () -> String) throws(DqliteWireError) -> String {
        guard let nul = bytes[index...].firstIndex(of: 0) else { throw error(field(), .missingTerminator) }
        let padded = Self.padded(nul - index + 1)
        guard padded <= remaining else { throw error(field(), .paddingPastEnd(needed: padded, available: remaining)) }
        guard let text = String(validating: bytes[index..<nul], as: UTF8.self) else { throw error(field(), .invalidUTF8) }
        index += padded
        return text
    }

    /// A u64 length, that many bytes, and their padding to the next word.
    mutating func readBlob(_ field: @autoclosure () -> String) throws(DqliteWireError) -> [UInt8] {
        let length = try readUInt64(field())
        // Compare as UInt64 first: a length near 2^64 must neither trap nor wrap when padded.
        guard length <= UInt64(remaining) else {
            throw error(field(), .truncated(needed: Int(clamping: length), available: remaining))
        }
        let count = Int(length), padded = Self.padded(count)
        guard padded <= remaining else { throw error(field(), .paddingPastEnd(needed: padded, available: remaining)) }
        defer { index += padded }
        return Array(bytes[index..<index + count])
    }

    /// Reads `count` bytes without copying them (type code slots of a tuple header).
    mutating func readSlice(_ count: Int, _ field: @autoclosure () -> String) throws(DqliteWireError) -> ArraySlice<UInt8> {
        try require(count, field())
        defer { index += count }
        return bytes[index..<index + count]
    }

    /// Reads a u64 count of items that each take at least `minimumSize` bytes of what follows,
    /// and refuses one that could not fit: a hostile count must fail here, before anything is
    /// allocated or looped over.
    mutating func readCount(_ field: @autoclosure () -> String, minimumSize: Int) throws(DqliteWireError) -> Int {
        let start = offset
        let count = try readUInt64(field())
        let limit = remaining / minimumSize
        guard count <= UInt64(limit) else { throw error(field(), .countTooLarge(count: count, limit: limit), at: start) }
        return Int(count)
    }

    /// Throws unless the whole body has been read: decoding must consume exactly its slice.
    func expectEnd() throws(DqliteWireError) {
        guard isAtEnd else { throw error("end of body", .trailingBytes(count: remaining)) }
    }

    /// `count` rounded up to a whole number of words.
    static func padded(_ count: Int) -> Int { (count + 7) & ~7 }
}

/// An append-only buffer of encoded messages.
///
/// Requests are appended with `DqliteRequest.encode(into:)`; several can share one writer
/// (one `write` for a pipeline), but dqlite 1.11 answers one request at a time.
public struct DqliteWriter: Sendable {
    /// Everything encoded so far.
    public private(set) var bytes: [UInt8]
    /// Where the body of the message being written starts (alignment is relative to it).
    private var bodyStart = 0

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func writeUInt64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func writeInt64(_ value: Int64) { writeUInt64(UInt64(bitPattern: value)) }
    mutating func writeDouble(_ value: Double) { writeUInt64(value.bitPattern) }

    /// Zeros up to the next word boundary of the body.
    mutating func writePadding() {
        let misalignment = (bytes.count - bodyStart) & 7
        if misalignment != 0 { bytes.append(contentsOf: repeatElement(0, count: 8 - misalignment)) }
    }

    /// A NUL-terminated string padded to a word. Refuses a string holding a NUL, which the
    /// server would silently cut short.
    mutating func writeText(_ text: String, message: DqliteWireError.Message, field: @autoclosure () -> String) throws(DqliteWireError) {
        let utf8 = text.utf8
        if utf8.contains(0) { throw DqliteWireError(message, field: field(), .nulInText, offset: bytes.count - bodyStart) }
        bytes.append(contentsOf: utf8)
        bytes.append(0)
        writePadding()
    }

    /// A u64 length, the bytes, and zeros to the next word.
    mutating func writeBlob(_ blob: [UInt8]) {
        writeUInt64(UInt64(blob.count))
        bytes.append(contentsOf: blob)
        writePadding()
    }

    /// Reserves the 8-byte header; returns its position for `finishMessage`.
    mutating func beginMessage() -> Int {
        let position = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: DqliteHeader.size))
        bodyStart = bytes.count
        return position
    }

    /// Writes the header last, once the body's length is known: words, type, schema, 0, 0.
    mutating func finishMessage(at position: Int, type: UInt8, schema: UInt8, message: DqliteWireError.Message) throws(DqliteWireError) {
        let bodyLength = bytes.count - position - DqliteHeader.size
        // Every field is word-padded as it is written, so this only fails on a bug here.
        precondition(bodyLength % 8 == 0, "dqlite message body of \(bodyLength) bytes is not word-aligned")
        guard let words = UInt32(exactly: bodyLength / 8) else {
            throw DqliteWireError(message, field: "body", .bodyTooLong(bytes: UInt64(bodyLength), limit: Int(UInt32.max) * 8))
        }
        for i in 0..<4 { bytes[position + i] = UInt8(truncatingIfNeeded: words >> UInt32(8 * i)) }
        bytes[position + 4] = type
        bytes[position + 5] = schema
        bodyStart = bytes.count
    }

    /// Drops a half-written message after an encoding error, so the writer stays whole.
    mutating func abandonMessage(at position: Int) {
        bytes.removeSubrange(position...)
        bodyStart = bytes.count
    }
}
