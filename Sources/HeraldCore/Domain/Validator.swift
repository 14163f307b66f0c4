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

