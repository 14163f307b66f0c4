/// Why JSON input was refused, and where. HTTPServer answers it with a problem document: 413 for
/// `tooLarge`, 400 otherwise, with `fields` as its `errors`.
public struct JSONInputError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Not JSON (RFC 8259), nested deeper than allowed, or not framed as expected.
        case syntax
        /// More bytes or items than allowed.
        case tooLarge
        /// Well-formed, but a value is missing, null, of another type or out of range.
        case shape
        /// Members the expected shape does not have.
        case unknownField
    }

    /// One value at fault.
    public struct Field: Sendable, Hashable {
        /// Its JSON path, in snake_case as the document spells it: `[41].prefix`, `bfd.min_tx`,
        /// `$` for the document itself.
        public var path: String
        public var message: String
    }

    public var kind: Kind
    /// The problem in one sentence; for syntax errors with the place ("invalid JSON on line 2:
    /// expected ':' at byte 12 of the line").
    public var message: String
    /// The values at fault: one for `shape`, each unknown member for `unknownField` (sorted),
    /// none for `syntax` and `tooLarge`.
    public var fields: [Field]

    init(_ kind: Kind, message: String, fields: [Field] = []) {
        self.kind = kind
        self.message = message
        self.fields = fields
    }

    public static func syntax(_ message: String) -> JSONInputError { JSONInputError(.syntax, message: message) }

    public static func tooLarge(_ message: String) -> JSONInputError { JSONInputError(.tooLarge, message: message) }

    public static func shape(_ field: Field) -> JSONInputError {
        JSONInputError(.shape, message: "The JSON body does not match the expected shape.", fields: [field])
    }

    public static func shape(at path: String, _ message: String) -> JSONInputError { shape(Field(path: path, message: message)) }

    public static func unknownFields(_ paths: [String]) -> JSONInputError {
        JSONInputError(.unknownField, message: "The JSON body has unknown fields.", fields: paths.map { Field(path: $0, message: "unknown field") })
    }

    public var description: String {
        fields.isEmpty ? message : fields.map { "\($0.path): \($0.message)" }.joined(separator: "; ")
    }
}
