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
}

/// The limits BGP puts on the speaker's and the peers' settings, with what to tell the operator.
enum BGPLimits {
    /// RFC 6793: 23456 is AS_TRANS, never a real ASN.
    static func isValidASN(_ asn: Int64) -> Bool { (1...4_294_967_295).contains(asn) && asn != 23456 }
    static let asnRule = "must be 1–4294967295 and not 23456 (AS_TRANS)"
    /// RFC 4271 §4.2: a hold time is 0 (no keepalives) or at least 3 seconds.
    static func isValidHoldTime(_ seconds: Int) -> Bool { seconds == 0 || (3...65535).contains(seconds) }
    static let holdTimeRule = "must be 0 or 3–65535 seconds"
    static let keepaliveTimes = 0...21845
    static let keepaliveRule = "must be 0–21845 seconds"
    static let connectRetryTimes = 1...65535
    static let connectRetryRule = "must be 1–65535 seconds"
}

/// Names of peers, nodes, pools, allocations and routes: `[a-z0-9][a-z0-9._-]{0,62}`, so they are
/// safe in URLs, logs and shell scripts. Allocations by convention use `namespace.service`.
public enum ObjectName {
    public static func validate(_ name: String) -> String? {
        // Reads the UTF-8 view in place (no array per name: a bulk load checks a million).
        let bytes = name.utf8
        guard !bytes.isEmpty else { return "must not be empty" }
        guard bytes.count <= 63 else { return "must be at most 63 characters (has \(bytes.count))" }
        func alphanumeric(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard alphanumeric(bytes.first!) else { return "must start with a lowercase letter or digit" }
        guard bytes.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
            return "may contain only lowercase letters, digits, '.', '_' and '-'"
        }
        return nil
    }
}

/// Key/value labels, as in Kubernetes: keys up to 253 characters of `[A-Za-z0-9._/-]`, values up
/// to 63 characters.
public enum Labels {
    public static func validate(_ labels: [String: String], field: String, into validator: inout Validator) {
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let keyOK = !key.isEmpty && key.utf8.count <= 253 && key.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "/")
            }
            if !keyOK { validator.add("\(field).\(key)", "label keys are 1–253 characters of letters, digits, '.', '_', '-' and '/'") }
            if value.utf8.count > 63 || value.contains(where: { $0.isNewline }) {
                validator.add("\(field).\(key)", "label values are at most 63 characters on one line")
            }
        }
    }

    /// True when every pair of `selector` is in `labels` (an empty selector matches everything).
    public static func matches(_ selector: [String: String], _ labels: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }
}
