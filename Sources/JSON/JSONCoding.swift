import Foundation

/// The JSON every response body is written in: snake_case keys, sorted, slashes unescaped,
/// ISO 8601 dates. Public for handlers that keep encoded parts of a body (`GET /v1/status`).
public enum JSONCoding {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(value))
    }
}
