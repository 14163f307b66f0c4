public import Sockets

/// A complete request as handlers see it: head, whole body, decoded query.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path, still percent-encoded (route patterns match decoded segments).
    public var path: String
    public var query: QueryParameters
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    public var remoteAddress: SocketAddress?

    public init(
        method: HTTPMethod, path: String, query: QueryParameters = QueryParameters(), version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], remoteAddress: SocketAddress? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Builds a request from a target such as `/v1/peers?limit=10` (for in-process tests).
    public init(_ method: HTTPMethod, _ target: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) throws(HTTPError) {
        var path = target
        var query = QueryParameters()
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            query = try QueryParameters(parsing: String(target[target.index(after: q)...]))
        }
        self.init(method: method, path: path, query: query, headers: headers, body: body)
    }

    /// The `Last-Event-ID` a reconnecting SSE client sent.
    public var lastEventID: String? { headers["Last-Event-ID"] }
}

/// Query parameters in order, percent-decoded (`+` means space).
public struct QueryParameters: Sendable, Sequence {
    public private(set) var items: [(name: String, value: String)] = []

    public init() {}

    /// Parses `a=1&b=two%20words&flag`; throws 400 on a malformed percent escape.
    public init(parsing query: String) throws(HTTPError) {
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try PercentDecoding.decode(pair[0], plusIsSpace: true)
            let value = pair.count > 1 ? try PercentDecoding.decode(pair[1], plusIsSpace: true) : ""
            items.append((name, value))
        }
    }

    public subscript(name: String) -> String? { items.first { $0.name == name }?.value }
    public func values(_ name: String) -> [String] { items.filter { $0.name == name }.map(\.value) }
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { items.makeIterator() }
    public var isEmpty: Bool { items.isEmpty }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; the result must be valid UTF-8.
    static func decode(_ text: some StringProtocol, plusIsSpace: Bool) throws(HTTPError) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.contains(UInt8(ascii: "%")) || (plusIsSpace && utf8.contains(UInt8(ascii: "+"))) else { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let b = utf8[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < utf8.count, let h = HTTPSyntax.hexValue(utf8[i + 1]), let l = HTTPSyntax.hexValue(utf8[i + 2]) else {
                    throw HTTPError(.badRequest, detail: "malformed percent-encoding in \"\(text)\"")
                }
                out.append(UInt8(h * 16 + l))
                i += 3
            } else {
                out.append(plusIsSpace && b == UInt8(ascii: "+") ? 0x20 : b)
                i += 1
            }
        }
        guard let decoded = String(validating: out, as: UTF8.self) else {
            throw HTTPError(.badRequest, detail: "percent-encoding of \"\(text)\" is not UTF-8")
        }
        return decoded
    }
}
