public import IP

// The byte reader and writer every BGP codec in this module is written against.
//
// The reader never traps: every read checks what is left and throws the error its creator chose
// for "the field ends early", because what that means on the wire depends on where it happens
// (a short OPEN is a message-length error, a short attribute is an RFC 7606 attribute error).
// Verbs follow swift-nio's ByteBuffer: `read…` moves the cursor, `peek…` does not, `write…` appends.

/// A cursor over a byte array that throws, never traps, when a field runs past the end.
public struct ByteReader: Sendable {
    @usableFromInline let storage: [UInt8]
    /// Index of the next byte to read.
    public private(set) var readerIndex: Int
    /// One past the last readable byte.
    public let endIndex: Int
    /// The error thrown when a read runs past `endIndex`.
    public var underrun: BGPError

    public init(_ bytes: [UInt8], underrun: BGPError = .header(.badMessageLength)) {
        storage = bytes
        readerIndex = 0
        endIndex = bytes.count
        self.underrun = underrun
    }

    init(storage: [UInt8], start: Int, end: Int, underrun: BGPError) {
        self.storage = storage
        readerIndex = start
        endIndex = end
        self.underrun = underrun
    }

    /// Bytes left to read.
    @inlinable public var readableBytes: Int { endIndex - readerIndex }
    public var isEmpty: Bool { readerIndex >= endIndex }

    @inline(__always)
    mutating func require(_ count: Int) throws(BGPError) {
        guard count >= 0, count <= endIndex - readerIndex else { throw underrun }
    }

    public mutating func readUInt8() throws(BGPError) -> UInt8 {
        try require(1)
        defer { readerIndex += 1 }
        return storage[readerIndex]
    }

    public mutating func readUInt16() throws(BGPError) -> UInt16 { try readBigEndian() }

    public mutating func readUInt32() throws(BGPError) -> UInt32 { try readBigEndian() }

    public mutating func readUInt64() throws(BGPError) -> UInt64 { try readBigEndian() }

    public mutating func readIPv4() throws(BGPError) -> IPv4Address {
        IPv4Address(try readUInt32())
    }

    public mutating func readIPv6() throws(BGPError) -> IPv6Address {
        IPv6Address(try readBigEndian(as: UInt128.self))
    }

    /// The next `bitWidth / 8` bytes as one unsigned number, most significant first (network
    /// order, RFC 4271 §4).
    @inline(__always)
    private mutating func readBigEndian<T: FixedWidthInteger & UnsignedInteger>(as: T.Type = T.self) throws(BGPError) -> T {
        let size = T.bitWidth / 8
        try require(size)
        defer { readerIndex += size }
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(storage[readerIndex + i]) }
        return value
    }

    /// Reads `count` bytes as a new array.
    public mutating func readBytes(_ count: Int) throws(BGPError) -> [UInt8] {
        try require(count)
        defer { readerIndex += count }
        return Array(storage[readerIndex..<readerIndex + count])
    }

    /// Reads everything that is left.
    public mutating func readRemainingBytes() -> [UInt8] {
        defer { readerIndex = endIndex }
        return readerIndex < endIndex ? Array(storage[readerIndex..<endIndex]) : []
    }

    /// Splits off the next `count` bytes as a reader of their own (no copy), which throws
    /// `underrun` when its own content ends early. The outer reader moves past them.
    public mutating func readSlice(_ count: Int, underrun: BGPError? = nil) throws(BGPError) -> ByteReader {
        try require(count)
        defer { readerIndex += count }
        return ByteReader(storage: storage, start: readerIndex, end: readerIndex + count, underrun: underrun ?? self.underrun)
    }

    public func peekUInt8(at offset: Int = 0) -> UInt8? {
        let index = readerIndex + offset
        guard offset >= 0, index < endIndex else { return nil }
        return storage[index]
    }

    /// The bytes between two reader indices (for the Data field of a NOTIFICATION).
    func bytes(from start: Int, to end: Int) -> [UInt8] {
        let lower = max(0, min(start, storage.count)), upper = max(lower, min(end, storage.count))
        return Array(storage[lower..<upper])
    }

    public mutating func skip(_ count: Int) throws(BGPError) {
        try require(count)
        readerIndex += count
    }
}

/// An append-only byte buffer with length fields patched after their body is written.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inline(__always) public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    @inline(__always) public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always) public mutating func writeUInt32(_ value: UInt32) {
        bytes.append(UInt8(value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeUInt64(_ value: UInt64) {
        writeUInt32(UInt32(value >> 32))
        writeUInt32(UInt32(truncatingIfNeeded: value))
    }

    public mutating func writeIPv4(_ address: IPv4Address) { writeUInt32(address.value) }

    public mutating func writeIPv6(_ address: IPv6Address) {
        for shift in stride(from: 120, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: address.value >> UInt128(shift)))
        }
    }

    public mutating func writeBytes(_ other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// Reserves a one-octet length field and returns its position for `patchLength8`.
    public mutating func reserveLength8() -> Int {
        bytes.append(0)
        return bytes.count - 1
    }

    /// Reserves a two-octet length field and returns its position for `patchLength16`.
    public mutating func reserveLength16() -> Int {
        bytes.append(0)
        bytes.append(0)
        return bytes.count - 2
    }

    /// Writes the number of bytes written after `position + 1` into the reserved octet.
    public mutating func patchLength8(at position: Int) {
        bytes[position] = UInt8(truncatingIfNeeded: bytes.count - position - 1)
    }

    /// Writes the number of bytes written after `position + 2` (or `value`) into the reserved field.
    /// The encoders bound what they write (messages by the negotiated maximum, attributes by
    /// theirs); a length over 65,535 here is a bug, and a wrapped length would put a corrupt
    /// message on the wire, so it stops the process instead.
    public mutating func patchLength16(at position: Int, value: Int? = nil) {
        let length = value ?? (bytes.count - position - 2)
        precondition((0...0xFFFF).contains(length), "a two-octet length field cannot hold \(length)")
        bytes[position] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[position + 1] = UInt8(truncatingIfNeeded: length)
    }

    public mutating func removeLast(_ count: Int) { bytes.removeLast(count) }
    public mutating func truncate(to count: Int) { bytes.removeSubrange(count...) }
}
