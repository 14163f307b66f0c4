import BGP
import Foundation
import Glibc
import IP
import Synchronization
import Testing
import TestSupport

// HTTP abuse against the real `herald serve` binary on loopback, from raw sockets: framing
// attacks (RFC 9112 §3.2, §5, §6, §7.1), smuggling, oversized input, slowloris, idle keep-alive
// floods and half-closed connections. Every case checks the documented status, that the server
// keeps answering other clients, and that its descriptors return to where they were.

/// `herald serve` on 127.0.0.1 with a scratch database; no root needed.
final class LiveHerald: @unchecked Sendable {
    let child: ChildProcess
    let port: UInt16
    let directory: String

    /// `environment` is added to the child's (e.g. `HERALD_TOKEN` to require a bearer token);
    /// `ulimit` sets its RLIMIT_NOFILE first (`ulimit ULIMIT`, e.g. "-n 400" for soft and hard).
    init(environment: [String: String] = [:], ulimit: String? = nil, bgpListen: String = "127.0.0.1:0") async throws {
        raiseOwnDescriptorLimit(to: 8192)  // the child inherits it
        directory = NSTemporaryDirectory() + "hrld-abuse-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = UInt16.random(in: 20_000...29_999)
        var command = [HeraldProcess.binary, "serve", "--db", directory + "/herald.db", "--api-listen", "127.0.0.1:\(port)", "--bgp-listen", bgpListen]
        if let ulimit { command = ["/bin/sh", "-c", "ulimit \(ulimit) && exec \"$0\" \"$@\""] + command }
        child = try ChildProcess(command, logPath: directory + "/herald.log", environment: environment)
        let child = self.child, port = self.port
        _ = try await eventually("herald up", timeout: .seconds(30)) { () throws -> Bool? in
            if let status = child.exitStatus { throw HarnessError("herald exited with \(status):\n\(child.logTail())") }
            guard let client = try? RawHTTP(port: port, timeout: 2) else { return nil }
            return (try? client.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"))?.hasPrefix("HTTP/1.1 200") == true ? true : nil
        }
    }

    deinit {
        child.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Open descriptors of the server process.
    var descriptors: Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd")) ?? []).count }

    /// Resident set size in KiB.
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// One request with a JSON body (or none) on a fresh connection: the status and the body.
    func call(_ method: String, _ path: String, _ json: String? = nil) throws -> (status: Int, body: String) {
        let client = try RawHTTP(port: port)
        let body = json ?? ""
        let head = "\(method) \(path) HTTP/1.1\r\nHost: h\r\n" + (json == nil ? "" : "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n")
        let answer = try client.exchange(head + "\r\n" + body)
        let text = answer.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (RawHTTP.statuses(in: answer).first ?? 0, text)
    }

    /// One request on a fresh connection; the status code (0 if none came).
    func status(_ request: String) throws -> Int {
        let client = try RawHTTP(port: port)
        return RawHTTP.statuses(in: try client.exchange(request)).first ?? 0
    }

    /// The descriptor count comes back to `baseline` (connections being closed take a moment).
    func descriptorsReturn(to baseline: Int) async throws {
        _ = try await eventually("descriptors back to \(baseline) (now \(descriptors))", timeout: .seconds(20)) {
            self.descriptors <= baseline ? true : nil
        }
    }
}

func raiseOwnDescriptorLimit(to wanted: UInt) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// A blocking TCP client that sends exact bytes: nothing is normalised, so malformed requests
/// reach the server as written.
final class RawHTTP: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16, source: String? = nil, timeout: Int = 20, nonBlocking: Bool = false) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw HarnessError("connect: errno \(e)")
        }
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit { Glibc.close(fd) }

    /// Sends everything it can; false once the server has closed or reset (a refused upload).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until the server closes (or resets, or the receive timeout passes).
    func readUntilClosed() -> String {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            all += chunk[0..<n]
        }
        return String(decoding: all, as: UTF8.self)
    }

    /// Reads until `count` complete responses with Content-Length bodies have arrived.
    func readResponses(_ count: Int) -> String {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Self.completeResponses(in: all) < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            all += chunk[0..<n]
        }
        return String(decoding: all, as: UTF8.self)
    }

    /// Sends `request` and reads one response (keep-alive) or everything until close.
    func exchange(_ request: String) throws -> String {
        send(request)
        return readResponses(1)
    }

    /// True once the server has closed the connection (EOF or reset), without blocking.
    var closedByServer: Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if n == 0 { return true }
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        return false  // data waiting (e.g. a 408) — the close follows it
    }

    /// The status codes of the responses in `text`, in order (bodies skipped by Content-Length,
    /// so a status line right after a body is found too).
    static func statuses(in text: String) -> [Int] {
        walk(Array(text.utf8)).statuses
    }

    private static func walk(_ bytes: [UInt8]) -> (statuses: [Int], complete: Int) {
        var statuses: [Int] = [], complete = 0
        var index = 0
        let separator: [UInt8] = [13, 10, 13, 10]
        while index + 12 <= bytes.count, Array(bytes[index..<index + 9]) == Array("HTTP/1.1 ".utf8) {
            guard let status = Int(String(decoding: bytes[index + 9..<index + 12], as: UTF8.self)) else { break }
            statuses.append(status)
            guard let headEnd = (index...max(index, bytes.count - 4)).first(where: { bytes.count >= $0 + 4 && Array(bytes[$0..<$0 + 4]) == separator }) else { break }
            let head = String(decoding: bytes[index..<headEnd], as: UTF8.self)
            let length = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
            guard bytes.count >= headEnd + 4 + length else { break }
            complete += 1
            index = headEnd + 4 + length
        }
        return (statuses, complete)
    }

    private static func completeResponses(in bytes: [UInt8]) -> Int { walk(bytes).complete }
}

@Suite(.serialized, .timeLimit(.minutes(3)), .heavy)
struct HTTPAbuseTests {
    /// RFC 9112 framing faults: each gets 400 (501 for a coding the server does not know) and the
    /// connection closes; none is taken for a request.
    @Test func malformedFramingGets400AndClose() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        let cases: [(String, String, Int)] = [
            ("CL+TE", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("duplicate Content-Length", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400),
            ("conflicting Content-Length", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
            ("Content-Length list", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\n{}", 400),
            ("negative Content-Length", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
            // RFC 9112 §6.3 (4): chunked not the final coding → 400, then close.
            ("chunked, identity", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
            ("gzip alone", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            ("chunked twice", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            // RFC 9112 §6.1: a coding the server does not understand → 501.
            ("gzip, chunked", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
            ("bad chunk size (hex)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("bad chunk size (negative)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
            ("bad chunk size (empty)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400),
            ("chunk size overflow", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
            ("chunk size 0x prefix", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", 400),
            ("chunk data too long", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n", 400),
            ("whitespace before colon", "GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length : 0\r\n\r\n", 400),
            ("whitespace before colon (TE)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
            ("obs-fold", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", 400),
            ("whitespace before first field", "GET /healthz HTTP/1.1\r\n Host: h\r\n\r\n", 400),
            ("bare LF", "GET /healthz HTTP/1.1\nHost: h\n\n", 400),
            ("bare LF in headers", "GET /healthz HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400),
            ("bare CR in value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n", 400),
            ("NUL in value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: b\u{0}c\r\n\r\n", 400),
            ("missing Host", "GET /healthz HTTP/1.1\r\n\r\n", 400),
            ("duplicate Host", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("space in target", "GET /heal thz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            ("TE in HTTP/1.0", "POST /v1/pools/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ]
        for (name, request, expected) in cases {
            let client = try RawHTTP(port: herald.port)
            client.send(request)
            let answer = client.readUntilClosed()  // returns only once the server closes
            let statuses = RawHTTP.statuses(in: answer)
            #expect(statuses == [expected], "\(name): \(answer.prefix(300))")
            #expect(answer.contains("application/problem+json"), "\(name): problem body")
        }
        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n") == 200)
        #expect(herald.child.isRunning, "\(herald.child.logTail())")
        try await herald.descriptorsReturn(to: baseline)
    }

    /// Request smuggling: a second request hidden in the body of a malformed one is never
    /// executed: exactly one (error) response, then the connection closes, and the smuggled
    /// PUT left no pool behind.
    @Test func smuggledRequestsAreNeverExecuted() async throws {
        let herald = try await LiveHerald()
        let smuggled = "PUT /v1/pools/smuggled HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"blocks\":[\"10.9.0.0/24\"]}"
        let attacks: [(String, String)] = [
            ("CL.TE", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("TE.CL", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n"),
            ("TE obfuscated (space before colon)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled),
            ("TE obfuscated (xchunked)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("TE obfuscated (chunked, identity)", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled),
            ("TE in obs-fold", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nX-A: b\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled),
            ("duplicate CL", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 140\r\n\r\n" + smuggled),
            ("bare LF headers", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: b\nContent-Length: 140\r\n\r\n" + smuggled),
            ("chunk extension with LF", "POST /v1/pools/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nb\r\n{}\r\n0\r\n\r\n" + smuggled),
        ]
        for (name, payload) in attacks {
            let client = try RawHTTP(port: herald.port)
            client.send(payload)
            let answer = client.readUntilClosed()
            let statuses = RawHTTP.statuses(in: answer)
            #expect(statuses.count == 1 && statuses[0] >= 400, "\(name): exactly one error response, got \(statuses): \(answer.prefix(300))")
        }
        let check = try RawHTTP(port: herald.port)
        let pool = try check.exchange("GET /v1/pools/smuggled HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(RawHTTP.statuses(in: pool) == [404], "the smuggled PUT never ran: \(pool.prefix(300))")
        // A well-formed pipelined pair is still served in order (the control case).
        let pipelined = try RawHTTP(port: herald.port)
        pipelined.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/pools/smuggled HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(RawHTTP.statuses(in: pipelined.readResponses(2)) == [200, 404])
    }

    /// Oversized and hostile input gets the RFC 9110 status for it, and memory comes back.
    @Test func oversizedAndHostileInputGetsItsStatus() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        let rssBefore = herald.residentKiB
        let big = String(repeating: "a", count: 100 * 1024)
        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: \(big)\r\n\r\n") == 431, "100 KiB header")
        #expect(try herald.status("GET /\(big) HTTP/1.1\r\nHost: h\r\n\r\n") == 414, "100 KiB URI")
        // 100,000 tiny headers: refused after the field-count limit, long before the last arrives.
        let tiny = String(repeating: "a: b\r\n", count: 100_000)
        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\n" + tiny + "\r\n") == 431, "100,000 tiny headers")
        // 3 MiB body: refused on its declared length (the server need not read it).
        let body = String(repeating: "x", count: 3 * 1024 * 1024)
        #expect(try herald.status("PUT /v1/pools/big HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body) == 413)
        // The same, chunked: refused when the running total passes the limit.
        let chunk = String(repeating: "x", count: 0x10000)
        let chunked = String(repeating: "10000\r\n\(chunk)\r\n", count: 48) + "0\r\n\r\n"
        #expect(try herald.status("PUT /v1/pools/big HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked) == 413)

        func put(_ path: String, _ body: String, contentType: String = "application/json") throws -> (Int, String) {
            let client = try RawHTTP(port: herald.port)
            let answer = try client.exchange("PUT \(path) HTTP/1.1\r\nHost: h\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return (RawHTTP.statuses(in: answer).first ?? 0, answer)
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(try put("/v1/pools/deep", #"{"blocks":"# + deep + "}").0 == 400, "JSON nested 10,000 deep")
        let duplicate = try put("/v1/pools/dup", #"{"blocks":["10.1.0.0/24"],"blocks":["10.2.0.0/24"]}"#)
        #expect(duplicate.0 == 400 && duplicate.1.contains("blocks"), "duplicate JSON key named: \(duplicate.1.suffix(300))")
        do {
            let invalidUTF8 = try RawHTTP(port: herald.port)
            invalidUTF8.send(Array("PUT /v1/pools/utf HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"blocks\":[\"".utf8) + [0xC3, 0x28, 0xFF] + Array("\"]}".utf8))
            #expect(RawHTTP.statuses(in: invalidUTF8.readResponses(1)) == [400], "invalid UTF-8")
        }
        #expect(try put("/v1/pools/ct", #"{"blocks":["10.3.0.0/24"]}"#, contentType: "text/plain").0 == 415, "wrong Content-Type")
        // CR/LF smuggled (percent-encoded) into a name that is echoed into a Location header.
        let injected = try put("/v1/pools/a%0d%0aSet-Cookie:%20x=1", #"{"blocks":["10.4.0.0/24"]}"#)
        #expect((injected.0 == 400 || injected.0 == 422) && !injected.1.lowercased().contains("\r\nset-cookie"), "no header injection: \(injected.1.prefix(400))")
        // A client request id with CR/LF never reaches the response: the request itself is refused.
        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\nX-Request-Id: a\rSet-Cookie: x=1\r\n\r\n") == 400)

        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n") == 200)
        try await herald.descriptorsReturn(to: baseline)
        let rssAfter = herald.residentKiB
        #expect(rssAfter < rssBefore + 64 * 1024, "RSS \(rssBefore) KiB → \(rssAfter) KiB")
    }

    /// Authentication before the body: with a token required, 8 clients without one each
    /// announce a 256 MiB `POST /v1/routes:batch` (half of them with `Expect: 100-continue`) and
    /// push the body as fast as the server takes it. Each gets its 401 at the head — never a
    /// `100 Continue` — and the connection is cut after a bounded discard, so the server's RSS
    /// grows by less than 16 MiB. (Before, each body was buffered in full before the 401.)
    @Test func unauthenticatedUploadsAreRefusedAtTheHead() async throws {
        let herald = try await LiveHerald(environment: ["HERALD_TOKEN": "abuse-test-token-0123456789"])
        let port = herald.port
        let rssBefore = herald.residentKiB
        let size = 256 * 1024 * 1024
        let peak = Mutex(rssBefore)
        let outcomes: [(answer: String, sent: Int)] = try await blocking {
            let clients = try (0..<8).map { _ in try RawHTTP(port: port) }
            for (index, client) in clients.enumerated() {
                let expect = index.isMultiple(of: 2) ? "Expect: 100-continue\r\n" : ""
                client.send("POST /v1/routes:batch HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-ndjson\r\n\(expect)Content-Length: \(size)\r\n\r\n")
            }
            let chunk = [UInt8](repeating: 0x7B, count: 64 * 1024)
            var sent = [Int](repeating: 0, count: clients.count)
            var answers = [[UInt8]](repeating: [], count: clients.count)
            var open = Set(clients.indices)
            var buffer = [UInt8](repeating: 0, count: 65536)
            let started = Date()
            while !open.isEmpty && Date().timeIntervalSince(started) < 30 {
                for index in open.sorted() {
                    let fd = clients[index].fd
                    let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if got > 0 { answers[index] += buffer[0..<got] }
                    if got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { open.remove(index); continue }
                    guard sent[index] < size else { continue }
                    let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, min($0.count, size - sent[index]), Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                    if n > 0 { sent[index] += n } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { open.remove(index) }
                }
                peak.withLock { $0 = max($0, herald.residentKiB) }
                Thread.sleep(forTimeInterval: 0.001)
            }
            return clients.indices.map { (String(decoding: answers[$0], as: UTF8.self), sent[$0]) }
        }
        let rssPeak = peak.withLock { $0 }
        print("unauthenticated uploads: sent \(outcomes.map { $0.sent / 1024 }) KiB before the cut; RSS \(rssBefore) KiB, peak \(rssPeak) KiB")
        for (index, outcome) in outcomes.enumerated() {
            #expect(outcome.answer.hasPrefix("HTTP/1.1 401"), "client \(index) answered at the head with 401: \(outcome.answer.prefix(200))")
            #expect(!outcome.answer.contains("100 Continue"), "client \(index) was never invited to send its body")
            #expect(outcome.sent < 64 * 1024 * 1024, "client \(index) was cut off after \(outcome.sent) bytes, not left to send 256 MiB")
        }
        #expect(rssPeak < rssBefore + 16 * 1024, "RSS \(rssBefore) KiB → peak \(rssPeak) KiB over 8 unauthenticated uploads")
        // With the token, the same path still reads its body (an empty batch is a 4xx about the body, not 401).
        let client = try RawHTTP(port: port)
        let answer = try client.exchange("POST /v1/routes:batch HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abuse-test-token-0123456789\r\nContent-Type: application/x-ndjson\r\nContent-Length: 2\r\n\r\n{}")
        let status = RawHTTP.statuses(in: answer).first ?? 0
        #expect(status != 401 && status != 0, "an authenticated upload is read and judged on its body: \(answer.prefix(300))")
    }

    /// The descriptor budget: `herald serve` with 400 descriptors (soft = hard) faces 1,000 HTTP
    /// connections that each send half a request head. HTTP may hold at most 400 − 256 of them;
    /// a TCP health check every 200 ms and a BGP session (hold time 9 s) run meanwhile: the node
    /// never changes state and the session never drops. (Before, HTTP took every descriptor, the
    /// checks failed with EMFILE and the node went down.)
    @Test func httpAtItsLimitLeavesHealthChecksAndBGPAlone() async throws {
        let bgpPort = UInt16.random(in: 30_000...39_999)
        let herald = try await LiveHerald(ulimit: "-n 400", bgpListen: "127.0.0.1:\(bgpPort)")
        let target = try LoopbackAcceptor(address: "127.0.0.14")
        defer { target.stop() }
        let check = #"{"kind":"tcp","address":"127.0.0.14","port":\#(target.port),"interval":200,"timeout":150,"rise":1,"fall":2}"#
        #expect(try herald.call("PUT", "/v1/nodes/n1", #"{"addresses":["100.64.0.21"],"health_check":\#(check)}"#).status == 201)
        #expect(try herald.call("POST", "/v1/peers", #"{"name":"r1","address":"127.0.0.13","asn":65002,"passive":true,"hold_time":9}"#).status == 201)

        // The router: a raw BGP speaker from 127.0.0.13 that sends a KEEPALIVE every 2 s.
        let router = try RawHTTP(port: bgpPort, source: "127.0.0.13", timeout: 1)
        let open = BGPMessage.open(OpenMessage(asn: 65002, holdTime: 9, bgpIdentifier: IPv4Address(10, 0, 0, 13),
                                               capabilities: [.multiprotocol(.ipv4Unicast), .fourOctetASN(65002)])).encoded()
        let keepalive = BGPMessage.keepalive.encoded()
        router.send(open + keepalive)
        let stop = StopFlag()
        let keeper = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            var last = Date.distantPast
            while !stop.isSet {
                _ = buffer.withUnsafeMutableBytes { recv(router.fd, $0.baseAddress, $0.count, 0) }  // drain, 1 s timeout
                if Date().timeIntervalSince(last) >= 2 {
                    router.send(keepalive)
                    last = Date()
                }
            }
        }
        keeper.start()
        defer { stop.set() }

        _ = try await eventually("the session Established and the node up", timeout: .seconds(20)) { () throws -> Bool? in
            let seen = try BudgetObservation(herald)
            return seen.peerState == "established" && seen.nodeState == "up" ? true : nil
        }
        let before = try BudgetObservation(herald)

        let port = herald.port
        let flood: (opened: Int, refused: Int) = try await blocking {
            var clients: [RawHTTP] = [], refused = 0
            for _ in 0..<1_000 {
                guard let client = try? RawHTTP(port: port, timeout: 2, nonBlocking: true) else { refused += 1; continue }
                client.send("GET /healthz HTTP/1.1\r\nHost: h\r\nX-Half: ")
                clients.append(client)
            }
            Thread.sleep(forTimeInterval: 6)  // 30 health checks and 3 KEEPALIVEs meanwhile
            let opened = clients.count
            clients.removeAll()
            return (opened, refused)
        }
        let after = try await eventually("answers again after the flood", timeout: .seconds(20)) { () -> BudgetObservation? in
            try? BudgetObservation(herald)
        }
        print("descriptor budget: \(flood.opened) connections opened (\(flood.refused) refused at connect); before \(before); after \(after)")
        #expect(after.nodeState == "up" && after.transitions == before.transitions, "the node never changed state: \(after)")
        #expect(after.failedChecks == 0, "no check failed: \(after)")
        #expect(after.peerState == "established" && after.flaps == 0, "the BGP session never dropped: \(after)")
        #expect(herald.child.logTail().contains("HTTP connections at most 144"), "the start line says the budget")
    }

    /// systemd starts services with a soft limit of 1,024 descriptors under a hard limit of
    /// 524,288: `herald serve` raises the soft limit to the hard one before it opens anything.
    @Test func theSoftDescriptorLimitIsRaisedToTheHardOne() async throws {
        let herald = try await LiveHerald(ulimit: "-S -n 512")
        let limits = try String(contentsOfFile: "/proc/\(herald.child.pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] == numbers[1] && numbers[0] > 512, "\(line)")
    }

    /// Slowloris: 300 connections trickle a header byte at a time. The header timeout (10 s in
    /// `herald serve`) closes every one of them with 408, while a normal client is answered
    /// promptly all along; afterwards the descriptors are back to baseline.
    @Test func slowlorisIsCutOffWhileOthersAreServed() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        let port = herald.port
        let started = Date()
        async let slowRun: (closed: Int, total: Int, seconds: Double) = blocking {
            var clients = try (0..<300).map { _ in try RawHTTP(port: port, nonBlocking: true) }
            let text = Array("GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: " + String(repeating: "z", count: 200))
            var closed = 0
            var index = 0
            while !clients.isEmpty && Date().timeIntervalSince(started) < 40 {
                clients.removeAll { client in
                    if client.closedByServer { closed += 1; return true }
                    if index < text.count, !client.send(String(text[index])) { closed += 1; return true }
                    return false
                }
                index += 1
                Thread.sleep(forTimeInterval: 0.5)
            }
            return (closed, 300, Date().timeIntervalSince(started))
        }
        // Meanwhile a normal client asks every 200 ms on fresh connections.
        let normal: (worst: Double, answered: Int, asked: Int) = try await blocking {
            var worst = 0.0, answered = 0, asked = 0
            while Date().timeIntervalSince(started) < 12 {
                let t = Date()
                asked += 1
                if let client = try? RawHTTP(port: port, timeout: 5),
                   let answer = try? client.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"), answer.hasPrefix("HTTP/1.1 200") {
                    answered += 1
                }
                worst = max(worst, Date().timeIntervalSince(t))
                Thread.sleep(forTimeInterval: 0.2)
            }
            return (worst, answered, asked)
        }
        let slow = try await slowRun
        print("slowloris: \(slow.closed)/\(slow.total) cut off after \(String(format: "%.1f", slow.seconds)) s; normal client \(normal.answered)/\(normal.asked) answered, worst \(String(format: "%.3f", normal.worst)) s")
        #expect(normal.answered == normal.asked, "every normal request answered during the attack: \(normal)")
        #expect(normal.worst < 1, "worst normal latency \(normal.worst) s")
        #expect(slow.closed == slow.total, "all slow connections cut off: \(slow)")
        #expect(slow.seconds > 9 && slow.seconds < 25, "cut off by the 10 s header timeout, took \(slow.seconds) s")
        try await herald.descriptorsReturn(to: baseline)
    }

    /// 2,000 idle keep-alive connections: the server holds at most its connection limit (1,024),
    /// closing the longest-idle ones to admit new clients (as nginx reuses keep-alive
    /// connections), so a normal client is still answered and descriptors stay bounded.
    @Test func idleKeepAliveFloodIsBounded() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        let port = herald.port
        let flood: (served: Int, peak: Int) = try await blocking {
            var clients: [RawHTTP] = []
            var served = 0, peak = 0
            for index in 0..<2_000 {
                let client = try RawHTTP(port: port, timeout: 10)
                if RawHTTP.statuses(in: try client.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")) == [200] { served += 1 }
                clients.append(client)  // stays open, idle, keep-alive
                if index % 100 == 99 { peak = max(peak, herald.descriptors) }
            }
            peak = max(peak, herald.descriptors)
            // With all 2,000 still open on this side, a new client is answered.
            let late = try RawHTTP(port: port, timeout: 10)
            if RawHTTP.statuses(in: try late.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")) == [200] { served += 1 }
            withExtendedLifetime(clients) {}
            return (served, peak)
        }
        print("idle keep-alive flood: \(flood.served)/2001 answered, server descriptors peak \(flood.peak) (baseline \(baseline))")
        #expect(flood.served == 2_001, "every client answered: \(flood)")
        #expect(flood.peak <= baseline + 1_024 + 8, "descriptors bounded by the connection limit: peak \(flood.peak), baseline \(baseline)")
        try await herald.descriptorsReturn(to: baseline)
    }

    /// A client that sends its request and shuts down its sending side still gets the answer
    /// (RFC 9112 §9.6), then the server closes; pipelined requests before the FIN are all answered.
    @Test func halfClosedClientsGetTheirAnswers() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        for _ in 0..<50 {
            let client = try RawHTTP(port: herald.port)
            client.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/pools HTTP/1.1\r\nHost: h\r\n\r\n")
            shutdown(client.fd, Int32(SHUT_WR))
            let answer = client.readUntilClosed()
            #expect(RawHTTP.statuses(in: answer) == [200, 200], "\(answer.prefix(300))")
        }
        // Half-closed before the request is complete: nothing to answer, the server just closes.
        for _ in 0..<50 {
            let client = try RawHTTP(port: herald.port)
            client.send("GET /healthz HTTP/1.1\r\nHo")
            shutdown(client.fd, Int32(SHUT_WR))
            let answer = client.readUntilClosed()
            #expect(RawHTTP.statuses(in: answer).allSatisfy { $0 == 400 }, "\(answer.prefix(300))")
        }
        // Reset mid-request.
        for _ in 0..<50 {
            let client = try RawHTTP(port: herald.port)
            client.send("PUT /v1/pools/r HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            var hard = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &hard, socklen_t(MemoryLayout<linger>.size))
        }
        #expect(try herald.status("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n") == 200)
        try await herald.descriptorsReturn(to: baseline)
    }

    /// Slow body ("R-U-Dead-Yet"): 200 connections send a complete head and then one body byte
    /// every 2 s — always inside the 10 s body timeout. The minimum body rate cuts every one off
    /// (408) soon after the 10 s head start, while a normal client is answered all along.
    @Test func slowBodyIsCutOffWhileOthersAreServed() async throws {
        let herald = try await LiveHerald()
        let baseline = herald.descriptors
        let port = herald.port
        let started = Date()
        async let slowRun: (cut: Int, total: Int, seconds: Double) = blocking {
            var clients = try (0..<200).map { _ -> RawHTTP in
                let client = try RawHTTP(port: port, nonBlocking: true)
                client.send("PUT /v1/pools/slow HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
                return client
            }
            var cut = 0
            while !clients.isEmpty && Date().timeIntervalSince(started) < 40 {
                clients.removeAll { client in
                    if client.closedByServer { cut += 1; return true }
                    var probe: UInt8 = 0
                    if recv(client.fd, &probe, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) > 0 { cut += 1; return true }  // the 408
                    if !client.send(" ") { cut += 1; return true }
                    return false
                }
                Thread.sleep(forTimeInterval: 2)
            }
            return (cut, 200, Date().timeIntervalSince(started))
        }
        let normal: (worst: Double, answered: Int, asked: Int) = try await blocking {
            var worst = 0.0, answered = 0, asked = 0
            while Date().timeIntervalSince(started) < 12 {
                let t = Date()
                asked += 1
                if let client = try? RawHTTP(port: port, timeout: 5),
                   let answer = try? client.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"), answer.hasPrefix("HTTP/1.1 200") {
                    answered += 1
                }
                worst = max(worst, Date().timeIntervalSince(t))
                Thread.sleep(forTimeInterval: 0.2)
            }
            return (worst, answered, asked)
        }
        let slow = try await slowRun
        print("slow body: \(slow.cut)/\(slow.total) cut off after \(String(format: "%.1f", slow.seconds)) s; normal client \(normal.answered)/\(normal.asked) answered, worst \(String(format: "%.3f", normal.worst)) s")
        #expect(slow.cut == slow.total, "every slow body cut off: \(slow)")
        #expect(slow.seconds > 9 && slow.seconds < 25, "cut off soon after the 10 s head start, took \(slow.seconds) s")
        #expect(normal.answered == normal.asked && normal.worst < 1, "\(normal)")
        #expect(try herald.status("GET /v1/pools/slow HTTP/1.1\r\nHost: h\r\n\r\n") == 404, "no slow body was taken for a request")
        try await herald.descriptorsReturn(to: baseline)
    }
}

/// A TCP listener on a loopback address that accepts and closes every connection (a health
/// check's target), on its own thread until `stop()`.
final class LoopbackAcceptor: @unchecked Sendable {
    let port: UInt16
    private let stopped = StopFlag()

    init(address: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr(address)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 1024) == 0 else { throw HarnessError("listen on \(address): errno \(errno)") }
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = UInt16(bigEndian: sin.sin_port)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let stopped = self.stopped
        Thread {
            while !stopped.isSet {
                let client = accept(fd, nil, nil)
                if client >= 0 { Glibc.close(client) }
            }
            Glibc.close(fd)
        }.start()
    }

    func stop() { stopped.set() }
}

/// A flag one thread sets and another polls.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// What the descriptor-budget test watches, read through the API.
struct BudgetObservation: Sendable, CustomStringConvertible {
    let nodeState: String?
    let transitions: Int?
    let failedChecks: Int?
    let peerState: String?
    let flaps: Int?

    init(_ herald: LiveHerald) throws {
        func object(_ path: String) throws -> [String: Any] {
            let answer = try herald.call("GET", path)
            guard answer.status == 200 else { throw HarnessError("GET \(path): \(answer.status)") }
            return ((try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any]) ?? [:]
        }
        let health = try object("/v1/nodes/n1")["health"] as? [String: Any]
        let peer = try object("/v1/peers/r1")
        nodeState = health?["state"] as? String
        transitions = health?["transitions"] as? Int
        failedChecks = health?["failed_checks"] as? Int
        peerState = peer["state"] as? String
        flaps = (peer["counters"] as? [String: Any])?["flaps"] as? Int
    }

    var description: String {
        "node \(nodeState ?? "?") (transitions \(transitions ?? -1), failed checks \(failedChecks ?? -1)), peer \(peerState ?? "?") (flaps \(flaps ?? -1))"
    }
}
