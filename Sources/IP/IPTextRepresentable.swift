/// A value with one strict text form: `init(parsing:)` reads it (refusing anything else with an
/// `IPParseError` that suggests the fix), `description` writes it. The lossless string
/// conversion and, for the types that are `Codable`, the JSON form — a string, refused with the
/// parse error's words — follow from those two, here, once for every type.
public protocol IPTextRepresentable: LosslessStringConvertible {
    init(parsing text: some StringProtocol) throws(IPParseError)
}

extension IPTextRepresentable {
    public init?(_ description: String) {
        guard let value = try? Self(parsing: description) else { return nil }
        self = value
    }
}

extension IPTextRepresentable where Self: Decodable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }
}

extension IPTextRepresentable where Self: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
