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

extension Row {
    func labels(_ column: String) throws -> [String: String] {
        try JSONColumn.decode([String: String].self, from: get(column, as: String.self), column: column)
    }
}
