import Foundation

/// Bearer tokens that may use the API.
public enum APITokens {
    /// Tokens shorter than this are refused: they could be guessed.
    public static let minimumLength = 16

    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads `file` (one token per line; blank lines and lines starting with `#` are skipped)
    /// and adds `environmentToken` (from HERALD_TOKEN) if set. An unreadable file, a file with
    /// no token, or a token that is too short stops the start: running without the intended
    /// protection would be worse than not running. Tokens are never logged.
    public static func load(file: String?, environmentToken: String?) throws(LoadError) -> [String] {
        var tokens: [String] = []
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw LoadError(description: "cannot read token file \(file): \(error.localizedDescription)")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let token = line.trimmingCharacters(in: .whitespaces)
                if token.isEmpty || token.hasPrefix("#") { continue }
                guard token.count >= minimumLength else {
                    throw LoadError(description: "token on line \(number + 1) of \(file) is shorter than \(minimumLength) characters")
                }
                tokens.append(token)
            }
            if tokens.isEmpty { throw LoadError(description: "token file \(file) holds no token") }
        }
        if let token = environmentToken?.trimmingCharacters(in: .whitespaces), !token.isEmpty {
            guard token.count >= minimumLength else {
                throw LoadError(description: "HERALD_TOKEN is shorter than \(minimumLength) characters")
            }
            tokens.append(token)
        }
        return tokens
    }
}
