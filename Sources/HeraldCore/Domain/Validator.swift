/// Collects field errors so that one response lists every problem, not only the first.
public struct Validator: Sendable {
    public private(set) var errors: [InvalidField] = []

    public init() {}

    public mutating func add(_ field: String, _ message: String) {
        errors.append(InvalidField(field, message))
    }

    /// Runs `parse`, recording its error under `field`; returns nil on failure.
    public mutating func check<T>(_ field: String, _ parse: () throws -> T) -> T? {
        do { return try parse() } catch {
            add(field, "\(error)")
            return nil
        }
    }

    /// The most Unicode scalars in an operator's `description` (peer, pool): a note, not a
    /// document. Every list page carries it, so a 900 KB one makes each page slow. Counted in
    /// scalars because JSON Schema's maxLength in openapi.yaml counts code points.
    public static let descriptionLimit = 1024

    public mutating func checkDescription(_ text: String, field: String = "description") {
        let length = text.unicodeScalars.count
        if length > Self.descriptionLimit {
            add(field, "is \(length) characters; at most \(Self.descriptionLimit): keep longer notes elsewhere and link to them")
        }
    }

    /// Throws `DomainError.invalid` when anything was recorded.
    public func finish() throws(DomainError) {
        if !errors.isEmpty { throw .invalid(errors) }
    }

    /// One error per field and message, in first-seen order.
    static func unique(_ errors: [InvalidField]) -> [InvalidField] {
        var seen: Set<InvalidField> = []
        return errors.filter { seen.insert($0).inserted }
    }
}

