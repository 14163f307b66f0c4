/// One invalid field of a request: which one (JSON path, snake_case) and what is allowed.
public struct InvalidField: Error, Hashable, Sendable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Why a domain operation was refused. Each case says which object is involved, so the API can
/// answer 404/409/422 with a body an operator can act on.
public enum DomainError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The request itself is invalid (the API answers 422, naming every field).
    case invalid([InvalidField])
    /// The named object does not exist (404).
    case notFound(kind: String, name: String)
    /// The change conflicts with existing state (409), e.g. an overlapping pool block.
    case conflict(String)
    /// The request is valid but cannot be satisfied (422), e.g. an ambiguous pool choice.
    case unprocessable(String)
    /// The pool has no free address of the family (409: the state, not the request, is the problem).
    case exhausted(pool: String, family: String)

    public var description: String {
        switch self {
        case .invalid(let errors): "invalid request: " + errors.map(\.description).joined(separator: "; ")
        case let .notFound(kind, name): "\(kind) \"\(name)\" does not exist"
        case .conflict(let text): text
        case .unprocessable(let text): text
        case let .exhausted(pool, family): "pool \"\(pool)\" has no free \(family) address"
        }
    }
}
