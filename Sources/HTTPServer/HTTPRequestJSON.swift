public import JSON

// JSON request bodies: the media type is checked here (415); the JSON module reads the body, and
// what it refuses becomes a problem document: 413 over a size or item limit, 400 for syntax
// (the detail says where), for shape and for unknown fields (`errors` names each field).

extension HTTPRequest {
    /// The media type of the body, lower case, without parameters ("" when none is given).
    /// (Splitting keeps empty pieces: an empty or parameters-only header such as
    /// `Content-Type: ;x=y` has no first piece otherwise, and indexing it crashed the server.)
    var mediaType: String {
        headers["Content-Type"].map { $0.split(separator: ";", omittingEmptySubsequences: false)[0].trimmingOWS().lowercased() } ?? ""
    }

    /// Decodes the body as `T` (JSON, snake_case keys). Throws `HTTPError` (415, 413, 400) or
    /// `ValidationError` (400, with one `FieldError` per problem) — both become problem+json.
    public func decode<T: Decodable>(_ type: T.Type = T.self, maxBytes: Int = 1024 * 1024, maxDepth: Int = 32) throws -> T {
        let contentType = mediaType
        guard contentType == "application/json" || (contentType.hasPrefix("application/") && contentType.hasSuffix("+json")) else {
            throw HTTPError(.unsupportedMediaType, detail: "expected Content-Type: application/json")
        }
        return try JSONInputError.answering { try JSONBody.decode(T.self, from: body, maxBytes: maxBytes, maxDepth: maxDepth) }
    }

    /// Decodes a bulk body item by item, without building one tree for all of it: either a JSON
    /// array (`Content-Type: application/json`) or NDJSON (`application/x-ndjson`, one value per
    /// line, blank lines ignored). Each item is decoded strictly as `T` and handed to `each` with
    /// its index; field errors name the item, e.g. `[41].prefix`. More than `maxItems` → 413.
    public func decodeEach<T: Decodable>(_ type: T.Type = T.self, maxItems: Int, maxDepth: Int = 32,
                                         _ each: (Int, T) throws -> Void) throws {
        let framing = try bulkFraming()
        try JSONInputError.answering {
            try JSONBody.decodeEach(T.self, from: body, framing: framing, maxItems: maxItems, maxDepth: maxDepth, each)
        }
    }

    /// Reads a bulk body item by item like `decodeEach`, but hands each item to `each` as a
    /// scanner over its bytes, for a decoder written by hand (`JSONBody.scanEach`). More than
    /// `maxItems` → 413. With `part` (from `bulkParts`), only that part of an NDJSON body is read.
    public func scanEach(maxItems: Int, maxDepth: Int = 32, part: BulkBodyPart? = nil, _ each: (Int, inout JSONItemScanner) throws -> Void) throws {
        let framing = try bulkFraming()
        try JSONInputError.answering {
            try JSONBody.scanEach(body, framing: framing, maxItems: maxItems, maxDepth: maxDepth, part: part, each)
        }
    }

    /// Splits a large NDJSON body into `count` parts for scanning on several cores
    /// (`JSONBody.bulkParts`). One part (nil) for anything else: a JSON array, another media
    /// type, a small body. More than `maxItems` items → 413.
    public func bulkParts(_ count: Int, maxItems: Int, minimumBytes: Int = 1 << 20) throws -> [BulkBodyPart]? {
        guard Self.bulkFramings[mediaType] == .lines else { return nil }
        return try JSONInputError.answering { try JSONBody.bulkParts(body, count: count, maxItems: maxItems, minimumBytes: minimumBytes) }
    }

    /// Bulk bodies by media type: a JSON array, or one value per line (RFC 7464 JSON text
    /// sequences too).
    static let bulkFramings: [String: JSONBody.Framing] = [
        "application/json": .array,
        "application/x-ndjson": .lines, "application/jsonl": .lines, "application/json-seq": .lines,
    ]

    func bulkFraming() throws(HTTPError) -> JSONBody.Framing {
        guard let framing = Self.bulkFramings[mediaType] else {
            throw HTTPError(.unsupportedMediaType, detail: "expected Content-Type: application/json (an array) or application/x-ndjson")
        }
        return framing
    }
}

extension JSONInputError {
    /// The error a refused body is answered with: 413 over a limit, otherwise 400; shape and
    /// unknown-field problems name each field.
    var answer: any Error {
        switch kind {
        case .syntax: HTTPError(.badRequest, detail: message)
        case .tooLarge: HTTPError(.contentTooLarge, detail: message)
        case .shape, .unknownField:
            ValidationError(fields.map { FieldError(field: $0.path, message: $0.message) }, status: .badRequest, detail: message)
        }
    }

    /// Runs `body`, throwing the answer to any `JSONInputError` instead of it.
    static func answering<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as JSONInputError { throw error.answer }
    }
}
