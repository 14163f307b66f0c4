/// Why bytes could not be decoded (or a value could not be encoded): which message, which field,
/// where, and what was wrong.
///
/// On the receiving side every such error means the stream is out of step with the server:
/// close the connection. On the sending side nothing was written. It is never a FAILURE
/// response from the server (that decodes to `DqliteResponse.failure`).
public struct DqliteWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The part of the conversation the error is about.
    public enum Message: Hashable, Sendable {
        /// The 8-byte header (framing, an unknown type code, a length that does not match).
        case header
        case request(DqliteRequestType)
        case response(DqliteResponseType)
    }

    /// What was wrong with the field.
    public enum Problem: Hashable, Sendable {
        /// The field needs `needed` bytes where the body has `available` left.
        case truncated(needed: Int, available: Int)
        /// A string has no NUL terminator before the end of the body.
        case missingTerminator
        /// A string's or blob's padding to the next word runs past the end of the body.
        case paddingPastEnd(needed: Int, available: Int)
        /// A string is not valid UTF-8.
        case invalidUTF8
        /// A count is larger than what is left of the body could hold (`limit` items at most).
        case countTooLarge(count: UInt64, limit: Int)
        /// A tuple's type code is none of 1–5, 9–11.
        case unknownValueType(UInt8)
        /// The header's type code is no message this side understands.
        case unknownMessageType(UInt8)
        /// The header's schema byte is not one this message type has.
        case unsupportedSchema(UInt8)
        /// The header announces a body longer than the configured maximum.
        case bodyTooLong(bytes: UInt64, limit: Int)
        /// The bytes given to a decoder are not one whole message as its header describes.
        case lengthMismatch(declared: Int, actual: Int)
        /// The message is decoded but `count` bytes of its body are left over.
        case trailingBytes(count: Int)
        /// A field holds a number that means nothing there (a role of 7, a cluster format of 0).
        case invalidValue(UInt64)
        /// A ROWS message with no columns carries something other than its end marker.
        case rowWithoutColumns
        /// Encoding: a row has `actual` values where the result set has `expected` columns.
        case columnCountMismatch(expected: Int, actual: Int)
        /// Encoding: a string holds a NUL byte, which the wire cannot carry (it ends strings).
        case nulInText
        /// Encoding: more parameters than the chosen schema's count field can say.
        case tooManyParameters(count: Int, limit: Int)
    }

    public var message: Message
    /// The field, in words: "column count", "row 2 column 1 (text)", "sql".
    public var field: String
    public var problem: Problem
    /// Byte offset of the field from the start of the message body (0 for header problems).
    public var offset: Int

    public init(_ message: Message, field: String, _ problem: Problem, offset: Int = 0) {
        self.message = message
        self.field = field
        self.problem = problem
        self.offset = offset
    }

    public var description: String {
        let what: String = switch message {
        case .header: "message header"
        case .request(let type): "\(type) request"
        case .response(let type): "\(type) response"
        }
        return "\(what), \(field) at body offset \(offset): \(problem)"
    }
}

extension DqliteWireError.Problem: CustomStringConvertible {
    public var description: String {
        switch self {
        case .truncated(let needed, let available): "needs \(needed) bytes, \(available) left"
        case .missingTerminator: "no NUL terminator before the end of the body"
        case .paddingPastEnd(let needed, let available): "padded to \(needed) bytes, \(available) left"
        case .invalidUTF8: "not valid UTF-8"
        case .countTooLarge(let count, let limit): "count \(count) exceeds the \(limit) the rest of the body can hold"
        case .unknownValueType(let code): "unknown value type \(code)"
        case .unknownMessageType(let code): "unknown message type \(code)"
        case .unsupportedSchema(let schema): "unsupported schema version \(schema)"
        case .bodyTooLong(let bytes, let limit): "body of \(bytes) bytes exceeds the maximum of \(limit)"
        case .lengthMismatch(let declared, let actual): "header says \(declared) bytes, \(actual) given"
        case .trailingBytes(let count): "\(count) bytes left over after the last field"
        case .invalidValue(let value): "invalid value \(value)"
        case .rowWithoutColumns: "a row in a result set without columns"
        case .columnCountMismatch(let expected, let actual): "\(actual) values for \(expected) columns"
        case .nulInText: "text holds a NUL byte"
        case .tooManyParameters(let count, let limit): "\(count) parameters, at most \(limit) fit"
        }
    }
}
