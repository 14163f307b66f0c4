import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small blocking HTTP/1.1 client for the CLI: one request per connection, `Connection: close`.
/// It speaks only to a Herald API (`http://host:port`), so it needs no TLS and no redirects.
struct APIClient {
    let host: String
    let port: UInt16
    let token: String?

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
        func json() -> Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
    }

    /// Why the CLI could not talk to Herald at all (exit status 69).
    struct Unreachable: Error, CustomStringConvertible {
        let description: String
        /// Nothing listened at the address (the connect was refused or timed out): no Herald
        /// there, as opposed to one that went away mid-answer.
        var nobodyListening = false
    }

    /// Parses `http://host:port` (IPv6 in brackets) or `host:port`.
    init(server: String, token: String?) throws {
        var rest = Substring(server)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        if rest.hasPrefix("https://") { throw Unreachable(description: "only http:// is supported (put a TLS proxy in front of Herald)") }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        let hostPart: Substring
        let portPart: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        } else {
            hostPart = rest
            portPart = nil
        }
        guard let port = UInt16(portPart ?? "8179"), !hostPart.isEmpty else {
            throw Unreachable(description: "--server \(server) is not http://HOST:PORT")
        }
        self.host = String(hostPart)
        self.port = port
        self.token = token
    }

    func get(_ path: String) throws -> Response { try send("GET", path) }

    func send(_ method: String, _ path: String, json: Any? = nil) throws -> Response {
        let fd = try connect()
        defer { close(fd) }
        var body: [UInt8] = []
        if let json { body = Array(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) }
        try write(fd, head(method, path, bodyLength: json == nil ? nil : body.count) + body)
        var reader = Reader(fd: fd)
        let (status, headers) = try reader.readHead()
        var content: [UInt8] = []
        try reader.readBody(headers) { content += $0 }
        return Response(status: status, headers: headers, body: content)
    }

    /// GETs `path` and hands its body over one line at a time as it arrives (NDJSON, such as
    /// `GET /v1/routes:export`), so that a body of any size is never held whole: memory stays
    /// that of one chunk. Returns nil when the body ended, or a non-2xx answer (with its whole
    /// body) for the caller to report.
    func lines(_ path: String, onLine: (ArraySlice<UInt8>) throws -> Void) throws -> Response? {
        try streamingGET(path) { reader, headers in try Self.splitLines(&reader, headers, onLine) }
    }

    /// GETs `path`: a non-2xx answer comes back whole, for the caller to report; a 2xx one's body
    /// is left to `body` to read as it arrives.
    private func streamingGET(_ path: String, body: (inout Reader, [String: String]) throws -> Void) throws -> Response? {
        let fd = try connect()
        defer { close(fd) }
        try write(fd, head("GET", path, bodyLength: nil))
        var reader = Reader(fd: fd)
        let (status, headers) = try reader.readHead()
        guard (200..<300).contains(status) else {
            var content: [UInt8] = []
            try reader.readBody(headers) { content += $0 }
            return Response(status: status, headers: headers, body: content)
        }
        try body(&reader, headers)
        return nil
    }

    private static func splitLines(_ reader: inout Reader, _ headers: [String: String], _ onLine: (ArraySlice<UInt8>) throws -> Void) throws {
        var pending: [UInt8] = []
        try reader.readBody(headers) { piece in
            pending += piece
            // Lines are cut by index and the consumed part dropped once per piece, not per line.
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start && pending[end - 1] == 0x0D { end -= 1 }
                if end > start { try onLine(pending[start..<end]) }
                start = newline + 1
            }
            pending.removeSubrange(..<start)
        }
        if !pending.isEmpty { try onLine(pending[...]) }  // a last line without its newline
    }

    /// GETs `path` and writes its body to `descriptor` as it arrives (a database copy, from
    /// `GET /v1/backup`), so that memory stays one chunk. Returns the number of bytes written,
    /// or a non-2xx answer (with its whole body) for the caller to report. A body cut short (the
    /// connection closed before the last chunk) throws.
    enum Download {
        case written(bytes: Int)
        case refused(Response)
    }

    func download(_ path: String, into descriptor: Int32) throws -> Download {
        var written = 0
        let refused = try streamingGET(path) { reader, headers in
            guard headers["transfer-encoding"]?.lowercased() == "chunked" || headers["content-length"] != nil else {
                throw Unreachable(description: "the answer has no length and no chunked coding: a cut copy could not be told from a whole one")
            }
            try reader.readBody(headers) { piece in
                var offset = 0
                while offset < piece.count {
                    let count = piece[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { throw Unreachable(description: "cannot write the copy: \(String(cString: strerror(errno)))") }
                    offset += count
                }
                written += piece.count
            }
        }
        return refused.map(Download.refused) ?? .written(bytes: written)
    }

    /// Follows a `text/event-stream`, calling `onEvent(event, id, data)` for each event until the
    /// server ends the stream. Returns the response head for a non-stream answer (an error).
    func follow(_ path: String, lastEventID: String? = nil, onEvent: (String, String?, String) -> Void) throws -> Response? {
        let fd = try connect()
        defer { close(fd) }
        var extra = "Accept: text/event-stream\r\n"
        if let lastEventID { extra += "Last-Event-ID: \(lastEventID)\r\n" }
        try write(fd, head("GET", path, bodyLength: nil, extra: extra))
        var reader = Reader(fd: fd)
        let (status, headers) = try reader.readHead()
        guard status == 200, headers["content-type"]?.hasPrefix("text/event-stream") == true else {
            let body = headers["content-length"].flatMap(Int.init).map { try? reader.read(count: $0) } ?? nil
            return Response(status: status, headers: headers, body: body ?? [])
        }
        var pending: [UInt8] = []
        var event = "message", id: String?, data: [String] = []
        try reader.readChunks { chunk in
            pending += chunk
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                pending.removeSubrange(...newline)
                if line.isEmpty {
                    if !data.isEmpty { onEvent(event, id, data.joined(separator: "\n")) }
                    event = "message"; id = nil; data = []
                } else if line.hasPrefix(":") {
                    continue  // heartbeat comment
                } else if let colon = line.firstIndex(of: ":") {
                    let field = String(line[..<colon])
                    var value = line[line.index(after: colon)...]
                    if value.hasPrefix(" ") { value = value.dropFirst() }
                    switch field {
                    case "event": event = String(value)
                    case "id": id = String(value)
                    case "data": data.append(String(value))
                    default: break
                    }
                }
            }
        }
        return nil
    }

    // MARK: - Plumbing

    private func head(_ method: String, _ path: String, bodyLength: Int?, extra: String = "") -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\nConnection: close\r\nUser-Agent: herald-cli\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        if let bodyLength { text += "Content-Type: application/json\r\nContent-Length: \(bodyLength)\r\n" }
        text += extra + "\r\n"
        return Array(text.utf8)
    }

    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Unreachable(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            let fd = socket(entry.pointee.ai_family, entry.pointee.ai_socktype, entry.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0 { return fd }
                lastError = errno
                close(fd)
            }
            cursor = entry.pointee.ai_next
        }
        throw Unreachable(description: "cannot reach Herald at \(host):\(port): \(String(cString: strerror(lastError))) (is `herald serve` running? set --server or HERALD_SERVER)",
                          nobodyListening: true)
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw Unreachable(description: "connection to \(host):\(port) failed while sending: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Buffered reads from the socket.
    struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []

        init(fd: Int32) { self.fd = fd }

        mutating func fill() throws -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16_384)
            while true {
                let count = recv(fd, &chunk, chunk.count, 0)
                if count < 0 && errno == EINTR { continue }
                if count < 0 { throw Unreachable(description: "connection failed while reading: \(String(cString: strerror(errno)))") }
                if count == 0 { return false }
                buffer += chunk[0..<count]
                return true
            }
        }

        mutating func readLine() throws -> String {
            while true {
                if let newline = buffer.firstIndex(of: 0x0A) {
                    var line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    if line.last == 0x0D { line.removeLast() }
                    return String(decoding: line, as: UTF8.self)
                }
                guard try fill() else { throw Unreachable(description: "the server closed the connection mid-response") }
            }
        }

        mutating func read(count: Int) throws -> [UInt8] {
            while buffer.count < count {
                guard try fill() else { throw Unreachable(description: "the server closed the connection mid-body") }
            }
            defer { buffer.removeFirst(count) }
            return Array(buffer[..<count])
        }

        mutating func readHead() throws -> (Int, [String: String]) {
            let statusLine = try readLine()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw Unreachable(description: "not an HTTP response: \(statusLine.prefix(80))")
            }
            var headers: [String: String] = [:]
            while true {
                let line = try readLine()
                if line.isEmpty { break }
                if let colon = line.firstIndex(of: ":") {
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            if status == 100 { return try readHead() }
            return (status, headers)
        }

        /// Reads the body `headers` announce (chunked, `Content-Length`, or up to the end of the
        /// connection), handing each piece over as it arrives.
        mutating func readBody(_ headers: [String: String], _ body: ([UInt8]) throws -> Void) throws {
            if headers["transfer-encoding"]?.lowercased() == "chunked" {
                try readChunks(body)
            } else if let length = headers["content-length"].flatMap(Int.init) {
                try body(try read(count: length))
            } else {
                while try fill() {
                    try body(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
                if !buffer.isEmpty { try body(buffer) }
                buffer.removeAll()
            }
        }

        /// Reads a chunked body, handing each chunk over as it arrives (RFC 9112 §7.1).
        mutating func readChunks(_ body: ([UInt8]) throws -> Void) throws {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";", omittingEmptySubsequences: false)[0].trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw Unreachable(description: "bad chunk size \(sizeLine.prefix(20))")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    return
                }
                try body(try read(count: size))
                _ = try readLine()
            }
        }
    }
}
