import Foundation
internal import Store

/// JSON stored in TEXT columns (labels, selectors, announce attributes): written with sorted keys
/// so that equal values are equal text.
enum JSONColumn {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain value types (strings, numbers, dictionaries of them) cannot fail.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String, column: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw DatabaseError.typeMismatch("column \(column) holds JSON that is not a \(T.self): \(text.prefix(80))")
        }
    }
}

/// Decodes each distinct JSON text once. Reading a million static routes decodes the same few
/// texts (`["self"]`, `{}`) over and over; Foundation's decoder costs microseconds per call.
struct JSONColumnCache<T: Decodable> {
    private var values: [String: T] = [:]

    mutating func decode(_ text: String, column: String) throws -> T {
        if let known = values[text] { return known }
        let value = try JSONColumn.decode(T.self, from: text, column: column)
        if values.count < 4096 { values[text] = value }
        return value
    }
}

/// Encodes each distinct value once (the write side of `JSONColumnCache`).
struct JSONColumnEncodeCache<T: Encodable & Hashable> {
    private var texts: [T: String] = [:]

    mutating func encode(_ value: T) -> String {
        if let known = texts[value] { return known }
        let text = JSONColumn.encode(value)
        if texts.count < 4096 { texts[value] = text }
        return text
    }
}

extension Row {
    func labels(_ column: String) throws -> [String: String] {
        try JSONColumn.decode([String: String].self, from: get(column, as: String.self), column: column)
    }
}
