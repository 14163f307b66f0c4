/// Why a string is not a valid address, prefix or range. `description` is written for the
/// operator who typed it: it quotes the input and, where one exists, suggests the fix.
public struct IPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text that failed to parse, as given.
    public let input: String
    /// What is wrong with it, in words.
    public let reason: String

    public init(input: String, reason: String) {
        self.input = input
        self.reason = reason
    }

    public var description: String { "\"\(input)\" \(reason)" }
}
