import Foundation
import Glibc
import HTTPServer
import IP
import Sockets
import Testing

/// Runs blocking work on its own thread so it never occupies the cooperative pool that the
/// server's handler tasks need.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct TestResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

/// A blocking HTTP/1.1 client on a plain socket, for tests.
final class TestClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, host: IPAddress = .v4(IPv4Address(127, 0, 0, 1)), timeout: Int = 30) throws {
        let v6 = host.family == .ipv6
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError("socket: \(errno)") }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32
        if v6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            let bytes = host.bytes
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { for i in 0..<16 { $0[i] = bytes[i] } }
            rc = withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = UInt32(host.bits).bigEndian
            rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError("connect: \(e)")
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError("send: \(errno)") }
            offset += n
        }
    }

    /// Reads more bytes; false at EOF (or reset).
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            buffer += chunk[0..<n]
            return true
        }
        if n == 0 || errno == ECONNRESET { return false }
        throw ClientError("recv: errno \(errno)")
    }

    /// True once the server has closed (EOF or reset) with nothing more to read.
    func readUntilClosed() throws -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    func request(_ method: String = "GET", _ target: String, headers: [String: String] = [:], body: String? = nil) throws -> TestResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: test\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        try send(text)
        guard let response = try readResponse(head: method == "HEAD") else { throw ClientError("connection closed") }
        return response
    }

    /// Reads one response; nil if the connection closed first.
    func readResponse(head: Bool = false) throws -> TestResponse? {
        let separator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while true {
            if buffer.count >= 4, let i = (0...(buffer.count - 4)).first(where: { Array(buffer[$0..<$0 + 4]) == separator }) {
                end = i
                break
            }
            if try !fill() { return nil }
        }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError("bad status line \(headText)") }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = TestResponse(status: status, headers: headers, body: [])
        if head || status == 204 || status == 304 || status < 200 { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length { if try !fill() { throw ClientError("EOF in body") } }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let size = try readChunkLine()
                if size == 0 {
                    _ = try readChunkLine(expectEmpty: true)
                    break
                }
                while buffer.count < size + 2 { if try !fill() { throw ClientError("EOF in chunk") } }
                response.body += buffer[0..<size]
                buffer.removeFirst(size + 2)
            }
        } else {
            while try fill() {}
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    /// Reads a chunk-size line (or the final empty line).
    private func readChunkLine(expectEmpty: Bool = false) throws -> Int {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[0..<i], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                buffer.removeFirst(i + 1)
                return expectEmpty ? 0 : Int(line, radix: 16) ?? -1
            }
            if try !fill() { throw ClientError("EOF in chunk line") }
        }
    }

    /// Reads whatever arrives within the socket timeout, for streams (SSE).
    func readSome() throws -> [UInt8] {
        if buffer.isEmpty { _ = try fill() }
        defer { buffer.removeAll() }
        return buffer
    }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with RST instead of FIN.
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }
}

/// Starts a server on loopback port 0 with `router`, runs `body`, then shuts everything down.
func withServer(
    _ router: Router, host: IPAddress = .v4(IPv4Address(127, 0, 0, 1)),
    configure: (inout HTTPServer.Configuration) -> Void = { _ in },
    _ body: (HTTPServer, UInt16) async throws -> Void
) async throws {
    let loop = try EventLoop()
    var configuration = HTTPServer.Configuration(address: host, port: 0, accessLog: false)
    configure(&configuration)
    let server = HTTPServer(loop: loop, configuration: configuration, router: router)
    try await server.start()
    do {
        try await body(server, server.localAddress!.port)
    } catch {
        await server.shutdown(gracePeriod: .seconds(1))
        loop.shutdown()
        throw error
    }
    await server.shutdown(gracePeriod: .seconds(2))
    loop.shutdown()
}

/// Raises the soft descriptor limit to the hard limit (tests with many sockets).
func raiseDescriptorLimit(to wanted: UInt = 8192) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Sockets in this process whose local or remote port is `port` (from /proc/net/tcp{,6}),
/// excluding the listener: counts the server's (and test clients') connections precisely even
/// while other tests open sockets of their own.
func socketsOnPort(_ port: UInt16) -> Int {
    var inodes = Set<String>()
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = readProcFile(file)
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9 else { continue }
            let local = f[1].split(separator: ":"), remote = f[2].split(separator: ":")
            let lp = UInt16(local.last ?? "", radix: 16), rp = UInt16(remote.last ?? "", radix: 16)
            let listening = f[3] == "0A"
            if !listening && (lp == port || rp == port) { inodes.insert(String(f[9])) }
        }
    }
    var count = 0
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for fd in fds {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
              target.hasPrefix("socket:[") else { continue }
        let inode = String(target.dropFirst(8).dropLast())
        if inodes.contains(inode) { count += 1 }
    }
    return count
}

func eventually(timeout seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

/// Reads a /proc file to the end (their size reads as 0, so Foundation's readers see nothing).
func readProcFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        data += chunk[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}
