import Testing
@testable import HTTPServer

/// A parsed request: the head and its whole body.
struct Parsed {
    var head: HTTPRequestHead
    var body: [UInt8]
}

/// Feeds `text` to a parser `step` bytes at a time; returns complete requests, and the error
/// status if parsing failed.
func parse(_ text: String, step: Int = 1, limits: HTTPParserLimits = HTTPParserLimits()) -> (requests: [Parsed], error: HTTPParseError?) {
    parse(Array(text.utf8), step: step, limits: limits)
}

func parse(_ bytes: [UInt8], step: Int = 1, limits: HTTPParserLimits = HTTPParserLimits()) -> (requests: [Parsed], error: HTTPParseError?) {
    var parser = HTTPRequestParser(limits: limits)
    var requests: [Parsed] = []
    var current: Parsed?
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + step)
        parser.append(bytes[index..<end])
        index = end
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let head): current = Parsed(head: head, body: [])
                case .body(let chunk): current!.body += chunk
                case .end:
                    requests.append(current!)
                    current = nil
                }
            }
        } catch {
            return (requests, error)
        }
    }
    return (requests, nil)
}

/// Asserts that `text` is refused with `status`, whether fed byte by byte or all at once.
func expectRejected(_ text: String, _ status: Int, limits: HTTPParserLimits = HTTPParserLimits(), sourceLocation: SourceLocation = #_sourceLocation) {
    for step in [1, 7, Int.max / 2] {
        let result = parse(text, step: step, limits: limits)
        #expect(result.error?.status.code == status, "step \(step): \(result.error.map(\.description) ?? "accepted")", sourceLocation: sourceLocation)
    }
}

@Suite("HTTP/1.1 request parser")
struct ParserTests {
    @Test func simpleGetByteByByte() {
        let (requests, error) = parse("GET /v1/status?verbose=1 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: abc\r\n\r\n")
        #expect(error == nil)
        #expect(requests.count == 1)
        let head = requests[0].head
        #expect(head.method == .GET)
        #expect(head.path == "/v1/status")
        #expect(head.query == "verbose=1")
        #expect(head.version == .http1_1)
        #expect(head.headers["host"] == "localhost")
        #expect(head.headers["X-REQUEST-ID"] == "abc")
        #expect(head.keepAlive)
        #expect(head.framing == .none)
    }

    @Test func contentLengthBodyByteByByte() {
        let (requests, error) = parse("POST /v1/peers HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(error == nil)
        #expect(requests.count == 1)
        #expect(String(decoding: requests[0].body, as: UTF8.self) == "hello world")
    }

    @Test func chunkedBodyWithExtensionsAndTrailersByteByByte() {
        let text = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6\r\n world\r\nA ;ext=\"q\"\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n"
        let (requests, error) = parse(text)
        #expect(error == nil)
        #expect(requests.count == 1)
        #expect(String(decoding: requests[0].body, as: UTF8.self) == "hello world0123456789")
        #expect(requests[0].head.framing == .chunked)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        var text = ""
        for i in 0..<10 { text += "GET /r/\(i) HTTP/1.1\r\nHost: h\r\n\r\n" }
        text += "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /last HTTP/1.1\r\nHost: h\r\n\r\n"
        for step in [1, 5, 1000] {
            let (requests, error) = parse(text, step: step)
            #expect(error == nil)
            #expect(requests.map(\.head.path) == (0..<10).map { "/r/\($0)" } + ["/p", "/last"])
            #expect(requests[10].body == Array("abc".utf8))
        }
    }

    @Test func http10DefaultsToCloseAndKeepAliveIsHonoured() {
        let (a, _) = parse("GET / HTTP/1.0\r\n\r\n")
        #expect(a.first?.head.version == .http1_0)
        #expect(a.first?.head.keepAlive == false)
        let (b, _) = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(b.first?.head.keepAlive == true)
        let (c, _) = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n")
        #expect(c.first?.head.keepAlive == false)
    }

    @Test func expectContinueIsReported() {
        let (r, e) = parse("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok")
        #expect(e == nil)
        #expect(r.first?.head.expectsContinue == true)
        expectRejected("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n", 417)
    }

    @Test func leadingEmptyLineIsIgnoredAndOWSIsTrimmed() {
        let (r, e) = parse("\r\nGET / HTTP/1.1\r\nHost:   h \t\r\nX-Empty:\r\n\r\n")
        #expect(e == nil)
        #expect(r.first?.head.headers["Host"] == "h")
        #expect(r.first?.head.headers["X-Empty"] == "")
    }

    @Test func absoluteFormAndAsteriskForm() {
        let (r, e) = parse("GET http://example.test:8179/v1/x?y=1 HTTP/1.1\r\nHost: example.test:8179\r\n\r\n")
        #expect(e == nil)
        #expect(r.first?.head.path == "/v1/x")
        #expect(r.first?.head.query == "y=1")
        let (o, oe) = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(oe == nil)
        #expect(o.first?.head.path == "*")
        expectRejected("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400)
    }

    // MARK: - Rejections, each with its exact status

    @Test func malformedRequestLines() {
        expectRejected("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400)          // two spaces
        expectRejected("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400)          // trailing space
        expectRejected("GET /\r\nHost: h\r\n\r\n", 400)                   // HTTP/0.9 style
        expectRejected("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400)
        expectRejected("GET / http/1.1\r\nHost: h\r\n\r\n", 400)
        expectRejected("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400)          // not a token
        expectRejected("GET relative HTTP/1.1\r\nHost: h\r\n\r\n", 400)
        expectRejected("GET /a\u{7F}b HTTP/1.1\r\nHost: h\r\n\r\n", 400)
        expectRejected("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\nHost: h\n\n", 400)                // bare LF
        expectRejected("GET http:///path HTTP/1.1\r\nHost: h\r\n\r\n", 400)
    }

    @Test func unknownMethodIs501AndOtherVersionsAre505() {
        expectRejected("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 501)
        expectRejected("get / HTTP/1.1\r\nHost: h\r\n\r\n", 501)          // methods are case-sensitive
        expectRejected("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 501)
        expectRejected("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505)
        expectRejected("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505)
        expectRejected("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505)
    }

    @Test func obsFoldAndWhitespaceBeforeColon() {
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400)
    }

    @Test func invalidFieldNamesAndValues() {
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{0}b\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{7F}\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{1B}b\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", 400)
        // obs-text (bytes ≥ 0x80) is allowed in values.
        var bytes = Array("GET / HTTP/1.1\r\nHost: h\r\nX-A: ".utf8)
        bytes += [0xC3, 0xA9, 0xFF]
        bytes += Array("\r\n\r\n".utf8)
        #expect(parse(bytes).error == nil)
    }

    @Test func hostIsRequiredOnceIn11() {
        expectRejected("GET / HTTP/1.1\r\n\r\n", 400)
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
        #expect(parse("GET / HTTP/1.0\r\n\r\n").error == nil)
    }

    @Test func contentLengthSmugglingAndSyntax() {
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400)
    }

    @Test func transferEncodingSmuggling() {
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
    }

    @Test func unknownTransferCodingsAre501() {
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x-custom, chunked\r\n\r\n", 501)
    }

    /// RFC 9112 §6.3 (4): chunked missing or not last → the length is unknowable → 400 (a MUST,
    /// taking precedence over the 501 for an unknown coding).
    @Test func chunkedNotFinalIs400() {
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", 400)
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400)
    }

    @Test func malformedChunks() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        expectRejected(head + "g\r\n", 400)
        expectRejected(head + "\r\n", 400)
        expectRejected(head + "-1\r\n", 400)
        expectRejected(head + "3\r\nabcX\r\n", 400)                // data longer than its size
        expectRejected(head + "3 x\r\nabc\r\n", 400)               // junk after size
        expectRejected(head + "3;a\u{0}\r\nabc\r\n", 400)
        expectRejected(head + "ffffffffffffffffff\r\n", 400)       // size overflows
        expectRejected(head + "0\r\nBad Trailer: x\r\n\r\n", 400)
        expectRejected(head + "3\nabc\r\n", 400)                   // bare LF after size
    }

    @Test func requestLineLimitIs414() {
        let long = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        expectRejected(long, 414)
        // Refused before the line ends: the buffer never grows past the limit.
        let (_, error) = parse("GET /" + String(repeating: "a", count: 9000))
        #expect(error?.status.code == 414)
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        expectRejected("GET /" + String(repeating: "b", count: 64) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, limits: limits)
        #expect(parse("GET /" + String(repeating: "b", count: 50) + " HTTP/1.1\r\nHost: h\r\n\r\n", limits: limits).error == nil)
    }

    @Test func headerLimitsAre431() {
        let big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "v", count: 17 * 1024) + "\r\n\r\n"
        expectRejected(big, 431)
        var many = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 0..<100 { many += "X-\(i): v\r\n" }
        expectRejected(many + "\r\n", 431)
        var ok = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 0..<99 { ok += "X-\(i): v\r\n" }
        #expect(parse(ok + "\r\n").error == nil)
        // Many small fields that together pass the byte limit.
        var bytes = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 0..<90 { bytes += "X-\(i): " + String(repeating: "z", count: 200) + "\r\n" }
        expectRejected(bytes + "\r\n", 431)
        // Trailers count against the same limit.
        let trailer = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + String(repeating: "t", count: 17 * 1024) + "\r\n\r\n"
        expectRejected(trailer, 431)
    }

    @Test func bodyLimitIs413() {
        expectRejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413)
        #expect(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n", step: 1000).error == nil)
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        expectRejected(head + "6\r\nabcdef\r\n5\r\n", 413, limits: limits)
        #expect(parse(head + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", limits: limits).requests.first?.body.count == 10)
    }

    @Test func errorsAreSticky() {
        var parser = HTTPRequestParser()
        parser.append(Array("GET / HTTP/3.0\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try parser.next() }
        parser.append(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try parser.next() }
    }

    @Test func idleAndInHeadStates() throws {
        var parser = HTTPRequestParser()
        #expect(parser.isIdle)
        parser.append(Array("GET / HT".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.isInHead)
        parser.append(Array("TP/1.1\r\nHost: h\r\n\r\n".utf8))
        guard case .head = try parser.next() else { Issue.record("no head"); return }
        guard case .end = try parser.next() else { Issue.record("no end"); return }
        #expect(parser.isIdle)
    }
}
