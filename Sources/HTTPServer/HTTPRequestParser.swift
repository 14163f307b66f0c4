// An incremental HTTP/1.1 request parser (RFC 9112). Pure: bytes in, events out, no I/O.
//
// Deliberately stricter than RFC 9112 in a few places, because Herald's clients are tools and
// a lenient parser behind another proxy is how request smuggling happens:
// - a bare LF is not accepted as a line terminator (RFC 9112 §2.2 allows it; we answer 400);
// - two Content-Length fields are rejected even when they agree (§6.3 allows identical ones);
// - Transfer-Encoding in an HTTP/1.0 request is rejected with 400 (§6.1: "MUST treat as faulty").

/// Size limits. Each one, when exceeded, gives the status RFC 9110 assigns.
public struct HTTPParserLimits: Sendable, Hashable {
    /// Longest request line (method, target, version) → 414.
    public var maxRequestLineBytes = 8 * 1024
    /// Total bytes of the header section after the request line → 431.
    public var maxHeaderBytes = 16 * 1024
    /// Number of header fields → 431.
    public var maxHeaderCount = 100
    /// Request body, declared or chunked → 413.
    public var maxBodyBytes = 1024 * 1024

    public init(maxRequestLineBytes: Int = 8 * 1024, maxHeaderBytes: Int = 16 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 1024 * 1024) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a request was refused, with the status to answer. The connection closes afterwards.
public struct HTTPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public let status: HTTPStatus
    public let reason: String

    public init(_ status: HTTPStatus, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code): \(reason)" }
}

/// How the body of a request is framed.
public enum HTTPBodyFraming: Sendable, Hashable {
    case none
    case length(Int)
    case chunked
}

/// Everything before the body.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod
    /// The request target as sent (origin-form `/path?query`, or `*`).
    public var target: String
    /// The path part of the target, still percent-encoded.
    public var path: String
    /// The query part after `?`, still percent-encoded; nil when there is no `?`.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var framing: HTTPBodyFraming
    /// The client sent `Expect: 100-continue` and waits for `100 Continue` before the body.
    public var expectsContinue: Bool
    /// Whether the connection may carry another request after this one.
    public var keepAlive: Bool
}

/// Feeds bytes in with `append`, then call `next()` until it returns nil (needs more bytes).
/// Each request yields `.head`, zero or more `.body`, then `.end`; the next request follows
/// (pipelining). After an error, every call throws the same error again.
public struct HTTPRequestParser: Sendable {
    public enum Event: Sendable {
        case head(HTTPRequestHead)
        case body([UInt8])
        case end
    }

    private enum State: Sendable {
        case requestLine
        case headers(Pending)
        case endPending
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    private struct Pending: Sendable {
        var method: HTTPMethod
        var target: String
        var version: HTTPVersion
        var headers = HTTPHeaders()
    }

    public let limits: HTTPParserLimits
    private var state = State.requestLine
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var scanIndex = 0
    private var headerBytes = 0
    private var bodyBytes = 0

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet consumed by `next()`.
    public var bufferedCount: Int { buffer.count - readIndex }

    /// True between requests with nothing buffered (an idle keep-alive connection).
    public var isIdle: Bool {
        if case .requestLine = state { return bufferedCount == 0 }
        return false
    }

    /// True while a request line or header section is partially received.
    public var isInHead: Bool {
        switch state {
        case .requestLine: bufferedCount > 0
        case .headers: true
        default: false
        }
    }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if readIndex > 0 && (readIndex == buffer.count || readIndex >= 4096) {
            buffer.removeFirst(readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func next() throws(HTTPParseError) -> Event? {
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    // MARK: - States

    private mutating func step() throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .requestLine:
                guard let line = try readLine(limit: limits.maxRequestLineBytes, tooLong: .uriTooLong, what: "request line") else { return nil }
                // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
                if line.isEmpty { continue }
                state = .headers(try parseRequestLine(line))
                headerBytes = 0
            case .headers(var pending):
                let available = limits.maxHeaderBytes - headerBytes
                guard let line = try readLine(limit: max(0, available - 2), tooLong: .requestHeaderFieldsTooLarge, what: "header section") else { return nil }
                headerBytes += line.count + 2
                if line.isEmpty {
                    let head = try finishHead(pending)
                    bodyBytes = 0
                    switch head.framing {
                    case .none: state = .endPending
                    case .length(let n): state = n == 0 ? .endPending : .fixedBody(remaining: n)
                    case .chunked: state = .chunkSize
                    }
                    return .head(head)
                }
                try parseField(line, into: &pending.headers)
                state = .headers(pending)
            case .endPending:
                state = .requestLine
                return .end
            case .fixedBody(let remaining):
                guard let chunk = readBody(upTo: remaining) else { return nil }
                state = remaining == chunk.count ? .endPending : .fixedBody(remaining: remaining - chunk.count)
                return .body(chunk)
            case .chunkSize:
                guard let line = try readLine(limit: 1024, tooLong: .badRequest, what: "chunk size line") else { return nil }
                let size = try parseChunkSize(line)
                if size == 0 {
                    state = .trailers
                    headerBytes = 0
                } else {
                    bodyBytes += size
                    // RFC 9112 §7.1: the total is bounded before a byte of the chunk is read.
                    guard bodyBytes <= limits.maxBodyBytes else {
                        throw HTTPParseError(.contentTooLarge, "chunked body exceeds \(limits.maxBodyBytes) bytes")
                    }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                guard let chunk = readBody(upTo: remaining) else { return nil }
                state = remaining == chunk.count ? .chunkDataEnd : .chunkData(remaining: remaining - chunk.count)
                return .body(chunk)
            case .chunkDataEnd:
                guard bufferedCount >= 2 else { return nil }
                guard buffer[readIndex] == cr && buffer[readIndex + 1] == lf else {
                    throw HTTPParseError(.badRequest, "chunk data not followed by CRLF")
                }
                readIndex += 2
                scanIndex = readIndex
                state = .chunkSize
            case .trailers:
                let available = limits.maxHeaderBytes - headerBytes
                guard let line = try readLine(limit: max(0, available - 2), tooLong: .requestHeaderFieldsTooLarge, what: "trailer section") else { return nil }
                headerBytes += line.count + 2
                if line.isEmpty {
                    state = .requestLine
                    return .end
                }
                // Trailer fields are checked for syntax and then discarded (RFC 9110 §6.5.1).
                var ignored = HTTPHeaders()
                try parseField(line, into: &ignored)
            }
        }
    }

    /// Up to `remaining` body bytes from the buffer, or nil when none has arrived.
    private mutating func readBody(upTo remaining: Int) -> [UInt8]? {
        guard bufferedCount > 0 else { return nil }
        let n = min(remaining, bufferedCount)
        let chunk = Array(buffer[readIndex..<readIndex + n])
        readIndex += n
        scanIndex = readIndex
        return chunk
    }

    // MARK: - Lines

    private let cr: UInt8 = 13
    private let lf: UInt8 = 10

    /// Returns the next line without its CRLF, or nil when it has not fully arrived.
    private mutating func readLine(limit: Int, tooLong status: HTTPStatus, what: String) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        var i = max(scanIndex, readIndex)
        let end = buffer.count
        while i < end && buffer[i] != lf { i += 1 }
        guard i < end else {
            scanIndex = end
            // Line not complete yet; refuse once it can no longer fit (CR may still come).
            if end - readIndex > limit + 1 {
                throw HTTPParseError(status, "\(what) longer than \(limit) bytes")
            }
            return nil
        }
        // RFC 9112 §2.2: lines end in CRLF; a bare LF is refused (see the top of the file).
        guard i > readIndex, buffer[i - 1] == cr else {
            throw HTTPParseError(.badRequest, "line terminated by a bare LF")
        }
        let line = buffer[readIndex..<(i - 1)]
        guard line.count <= limit else {
            throw HTTPParseError(status, "\(what) longer than \(limit) bytes")
        }
        readIndex = i + 1
        scanIndex = readIndex
        return line
    }

    // MARK: - Request line (RFC 9112 §3)

    private func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Pending {
        // request-line = method SP request-target SP HTTP-version
        let parts = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty,
              !parts[2].contains(0x20) else {
            throw HTTPParseError(.badRequest, "malformed request line")
        }
        let methodBytes = parts[0], targetBytes = parts[1], versionBytes = parts[2]
        guard methodBytes.allSatisfy(HTTPSyntax.isTokenByte) else {
            throw HTTPParseError(.badRequest, "invalid method")
        }
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        let v = Array(versionBytes)
        guard v.count == 8, Array(v[0..<5]) == Array("HTTP/".utf8), HTTPSyntax.isDigit(v[5]), v[6] == UInt8(ascii: "."), HTTPSyntax.isDigit(v[7]) else {
            throw HTTPParseError(.badRequest, "malformed HTTP version")
        }
        let version: HTTPVersion
        switch (v[5], v[7]) {
        case (UInt8(ascii: "1"), UInt8(ascii: "1")): version = .http1_1
        case (UInt8(ascii: "1"), UInt8(ascii: "0")): version = .http1_0
        default: throw HTTPParseError(.httpVersionNotSupported, "HTTP version \(String(decoding: v, as: UTF8.self)) is not supported")
        }
        guard let method = HTTPMethod(rawValue: String(decoding: methodBytes, as: UTF8.self)) else {
            throw HTTPParseError(.notImplemented, "method \(String(decoding: methodBytes, as: UTF8.self)) is not implemented")
        }
        // request-target: visible ASCII only (RFC 3986 characters; no spaces or controls).
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPParseError(.badRequest, "invalid byte in request target")
        }
        var target = String(decoding: targetBytes, as: UTF8.self)
        if target.hasPrefix("/") {
            // origin-form
        } else if target == "*" {
            guard method == .OPTIONS else { throw HTTPParseError(.badRequest, "asterisk-form is only for OPTIONS") }
        } else if let authority = Self.afterHTTPScheme(target) {
            // absolute-form (RFC 9112 §3.2.2): a server MUST accept it; keep path and query.
            guard !authority.isEmpty, !authority.hasPrefix("/") else {
                throw HTTPParseError(.badRequest, "absolute-form target without authority")
            }
            if let slash = authority.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                let rest = String(authority[slash...])
                target = rest.hasPrefix("?") ? "/" + rest : rest
            } else {
                target = "/"
            }
        } else {
            throw HTTPParseError(.badRequest, "request target must be origin-form")
        }
        return Pending(method: method, target: target, version: version)
    }

    private static func afterHTTPScheme(_ target: String) -> Substring? {
        let lower = target.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            return target.dropFirst(scheme.count)
        }
        return nil
    }

    // MARK: - Fields (RFC 9112 §5, RFC 9110 §5)

    private func parseField(_ line: ArraySlice<UInt8>, into headers: inout HTTPHeaders) throws(HTTPParseError) {
        guard let first = line.first else { throw HTTPParseError(.badRequest, "empty field line") }
        // RFC 9112 §5.2: obs-fold is rejected with 400.
        if first == 0x20 || first == 0x09 {
            throw HTTPParseError(.badRequest, "obsolete line folding (or whitespace before a field)")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw HTTPParseError(.badRequest, "field line without a colon")
        }
        let name = line[line.startIndex..<colon]
        // RFC 9112 §5.1: no whitespace between the field name and the colon — 400.
        guard !name.isEmpty, name.allSatisfy(HTTPSyntax.isTokenByte) else {
            if let last = name.last, last == 0x20 || last == 0x09 {
                throw HTTPParseError(.badRequest, "whitespace before the colon in a field line")
            }
            throw HTTPParseError(.badRequest, "invalid field name")
        }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 0x20 || f == 0x09 { value.removeFirst() }
        while let l = value.last, l == 0x20 || l == 0x09 { value.removeLast() }
        // field-value = *field-content: VCHAR, obs-text, SP, HTAB; no CR, LF, NUL or other CTLs.
        guard value.allSatisfy(HTTPSyntax.isFieldValueByte) else {
            throw HTTPParseError(.badRequest, "invalid byte in the value of \(String(decoding: name, as: UTF8.self))")
        }
        guard headers.count < limits.maxHeaderCount else {
            throw HTTPParseError(.requestHeaderFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
        }
        headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    // MARK: - Head semantics (RFC 9112 §3.2, §6, §9; RFC 9110 §10.1.1)

    private func finishHead(_ pending: Pending) throws(HTTPParseError) -> HTTPRequestHead {
        let headers = pending.headers
        let version = pending.version
        // RFC 9112 §3.2: a 1.1 request without Host, or with more than one, gets 400.
        let hosts = headers.values("Host")
        if version == .http1_1 && hosts.count != 1 { throw HTTPParseError(.badRequest, "exactly one Host field is required") }
        if hosts.count > 1 { throw HTTPParseError(.badRequest, "more than one Host field") }

        let lengths = headers.values("Content-Length")
        let transferEncoding = headers.values("Transfer-Encoding")
        var framing = HTTPBodyFraming.none
        if !transferEncoding.isEmpty {
            // RFC 9112 §6.1: Transfer-Encoding with Content-Length is a smuggling attempt.
            guard lengths.isEmpty else { throw HTTPParseError(.badRequest, "both Transfer-Encoding and Content-Length") }
            guard version == .http1_1 else { throw HTTPParseError(.badRequest, "Transfer-Encoding in an HTTP/1.0 request") }
            let codings = transferEncoding.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingOWS().lowercased() }
            // RFC 9112 §6.3 (4): chunked not the final coding (`chunked, identity`, `gzip`, a
            // misspelt `xchunked`) leaves the body length unknowable: MUST answer 400 and close.
            // This comes before the 501 below, which is only a SHOULD (§6.1).
            guard codings.last == "chunked" else {
                throw HTTPParseError(.badRequest, "chunked is not the final transfer coding")
            }
            if let unknown = codings.first(where: { $0 != "chunked" }) {
                // RFC 9112 §6.1: a transfer coding the server does not understand → 501.
                throw HTTPParseError(.notImplemented, unknown.isEmpty ? "empty transfer coding" : "transfer coding \"\(unknown)\" is not supported")
            }
            guard codings.count == 1 else { throw HTTPParseError(.badRequest, "chunked applied more than once") }
            framing = .chunked
        } else if !lengths.isEmpty {
            // RFC 9112 §6.3: duplicate or invalid Content-Length is unrecoverable — 400.
            guard lengths.count == 1 else { throw HTTPParseError(.badRequest, "more than one Content-Length") }
            let text = lengths[0]
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy(HTTPSyntax.isDigit), let n = Int(text) else {
                throw HTTPParseError(.badRequest, "invalid Content-Length \"\(text)\"")
            }
            guard n <= limits.maxBodyBytes else {
                throw HTTPParseError(.contentTooLarge, "body of \(n) bytes exceeds \(limits.maxBodyBytes)")
            }
            framing = .length(n)
        }

        var expectsContinue = false
        if let expect = headers["Expect"] {
            // RFC 9110 §10.1.1: only 100-continue is defined; anything else → 417.
            guard expect.lowercased() == "100-continue", headers.values("Expect").count == 1 else {
                throw HTTPParseError(.expectationFailed, "unsupported expectation \"\(expect)\"")
            }
            expectsContinue = version == .http1_1
        }

        let connection = headers.tokens("Connection")
        let keepAlive: Bool
        if connection.contains("close") {
            keepAlive = false
        } else {
            keepAlive = version == .http1_1 || connection.contains("keep-alive")
        }

        var path = pending.target
        var query: String?
        if let q = path.firstIndex(of: "?") {
            query = String(path[path.index(after: q)...])
            path = String(path[..<q])
        }
        return HTTPRequestHead(
            method: pending.method, target: pending.target, path: path, query: query, version: version,
            headers: headers, framing: framing, expectsContinue: expectsContinue, keepAlive: keepAlive)
    }

    // MARK: - Chunked coding (RFC 9112 §7.1)

    private func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        // chunk = chunk-size [ chunk-ext ] CRLF; chunk-size = 1*HEXDIG
        var size = 0
        var digits = 0
        var i = line.startIndex
        while i < line.endIndex, let d = HTTPSyntax.hexValue(line[i]) {
            digits += 1
            guard digits <= 15 else { throw HTTPParseError(.badRequest, "chunk size too long") }
            size = size * 16 + d
            i += 1
        }
        guard digits > 0 else { throw HTTPParseError(.badRequest, "invalid chunk size") }
        if i < line.endIndex {
            // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ); ignored.
            var rest = line[i...]
            while let f = rest.first, f == 0x20 || f == 0x09 { rest.removeFirst() }
            guard rest.first == UInt8(ascii: ";"), rest.allSatisfy(HTTPSyntax.isFieldValueByte) else {
                throw HTTPParseError(.badRequest, "invalid chunk extension")
            }
        }
        return size
    }
}

/// Byte classes from RFC 9110 §5.6.
enum HTTPSyntax {
    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static let tokenTable: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(b)] = true }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(b)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { table[Int(c)] = true }
        return table
    }()

    static func isTokenByte(_ b: UInt8) -> Bool { tokenTable[Int(b)] }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    /// VCHAR, obs-text, SP, HTAB.
    static func isFieldValueByte(_ b: UInt8) -> Bool { b == 0x09 || (b >= 0x20 && b != 0x7F) }

    static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: Int(b - 0x30)
        case 0x41...0x46: Int(b - 0x41 + 10)
        case 0x61...0x66: Int(b - 0x61 + 10)
        default: nil
        }
    }
}
