import Sockets

/// One HTTP connection: feeds the parser, runs one request at a time (pipelined requests wait in
/// the parser's buffer, so responses leave in order), enforces the timeouts. Loop-confined: what
/// a request task or the server hands back to it checks it (`preconditionInEventLoop`).
final class HTTPConnectionHandler: ConnectionDelegate, @unchecked Sendable {
    private enum Deadline {
        case none, header, body, idle, linger
    }
    private enum StreamWriteOutcome: Sendable {
        case written, closed, slow
        /// The client is behind and the stream waits for it (`ResponseStream.waitsForClient`).
        case full
    }

    /// Strong: a request task or timer may still run after the `HTTPServer` value is gone, and an
    /// unowned reference would then trap. The cycle (core.handlers → handler → core) ends when the
    /// connection closes and the core removes the handler.
    let core: ServerCore
    let connection: Connection
    private var parser: HTTPRequestParser
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// The body limit of the current request's path.
    private var bodyLimit = 0
    /// When the current body started (after its head), for the minimum body rate.
    private var bodyStartedAt: UInt64 = 0
    private var inFlight = false
    /// Close once the current response is out (Connection: close, drain, error).
    private var closeAfterResponse = false
    /// Response sent with close; reading and discarding until EOF or the linger timer.
    private var lingering = false
    private var lingerBytes = 0
    /// The client half-closed (FIN received).
    private var peerClosed = false
    private var task: Task<Void, Never>?
    private var streamGeneration = 0
    private var streamActive = false
    /// A stream's producer waiting for the client to take what was sent.
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []

    private var deadlineKind = Deadline.none
    private var deadline: UInt64 = 0
    private var timer: TimerHandle?
    private var timerDeadline: UInt64 = 0

    /// Bytes the parser may hold while a request is being handled before reading pauses.
    private static let maxBufferedWhileBusy = 64 * 1024

    init(core: ServerCore, connection: Connection) {
        core.loop.preconditionInEventLoop()
        self.core = core
        self.connection = connection
        self.parser = HTTPRequestParser(limits: core.configuration.parserLimits)
        setDeadline(.header, after: core.configuration.headerTimeout)
    }

    /// When this connection became an idle keep-alive connection (a request answered, nothing
    /// of the next one received), or nil when it is doing anything else.
    var idleKeepAliveSince: UInt64? {
        guard deadlineKind == .idle, !inFlight, !lingering, !streamActive, parser.isIdle, connection.state == .open,
              connection.bufferedBytes == 0 else { return nil }
        return idleSince
    }
    private var idleSince: UInt64 = 0

    // MARK: - ConnectionDelegate

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        if lingering {
            lingerBytes += bytes.count
            if lingerBytes > 8 * 1024 * 1024 { connection.close() }
            return
        }
        parser.append(bytes)
        if inFlight {
            if parser.bufferedCount > Self.maxBufferedWhileBusy { connection.pauseReading() }
            return
        }
        process()
    }

    func connectionDidReadEOF(_ connection: Connection) {
        peerClosed = true
        // Half-close: a request in flight still gets its response, and so does every complete
        // request pipelined behind it (RFC 9112 §9.3.2: answered in order; a client may close its
        // sending side early, §9.6). `complete(keepAlive:)` closes once none is left.
        if streamActive {
            // A stream client that stops sending has gone away: end the stream now.
            connection.close()
        } else if inFlight && !lingering {
            // Closes after the last buffered request is answered (see `complete`).
        } else {
            connection.closeAfterFlush()
        }
    }

    func connectionBecameWritable(_ connection: Connection) {
        resumeDrainWaiters()
        guard !inFlight, !lingering, connection.state == .open else { return }
        connection.resumeReading()
        clearDeadline()
        process()
    }

    func connection(_ connection: Connection, didCloseWith error: SocketError?) {
        resumeDrainWaiters()
        task?.cancel()
        task = nil
        if let timer { core.loop.cancelTimer(timer) }
        timer = nil
        core.remove(self)
    }

    // MARK: - Requests

    private func process() {
        // A client that pipelines requests but does not read the responses stops being read
        // once its unsent responses pass the high watermark; the idle timeout ends it if it never
        // reads again.
        if !connection.isWritable && !inFlight && connection.state == .open {
            connection.pauseReading()
            setDeadline(.idle, after: core.configuration.idleTimeout)
            return
        }
        while !inFlight && !closeAfterResponse && !lingering && connection.state == .open {
            let event: HTTPRequestParser.Event?
            do {
                event = try parser.next()
            } catch {
                fail(ProblemDetails.response(for: error), head: nil)
                return
            }
            guard let event else { break }
            switch event {
            case .head(let h):
                head = h
                body = []
                // Authentication before the body: an unauthenticated request with a body gets its
                // 401 now, without a 100 Continue and without a byte of the body buffered (the
                // lingering close discards what the client still sends), so a client without a
                // token cannot make the server hold uploads. Bodiless requests take the usual
                // path (the responder answers 401 and the connection stays open).
                if h.framing != .none, h.framing != .length(0), let denied = core.responder.authenticate(path: h.path, headers: h.headers) {
                    fail(denied, head: h)
                    return
                }
                // The parser allowed the largest limit of any path; this path may allow less.
                bodyLimit = core.configuration.bodyLimit(for: h.path)
                if case .length(let n) = h.framing, n > bodyLimit {
                    fail(ProblemDetails.response(for: HTTPParseError(.contentTooLarge, "body of \(n) bytes exceeds \(bodyLimit)")), head: h)
                    return
                }
                if h.expectsContinue, h.framing != .none, h.framing != .length(0) {
                    // RFC 9110 §10.1.1: the client waits for this before sending the body.
                    connection.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
                if h.framing == .none || h.framing == .length(0) {
                    clearDeadline()
                } else {
                    bodyStartedAt = EventLoop.now()
                    setDeadline(.body, after: core.configuration.bodyTimeout)
                }
            case .body(let chunk):
                guard body.count + chunk.count <= bodyLimit else {
                    fail(ProblemDetails.response(for: HTTPParseError(.contentTooLarge, "chunked body exceeds \(bodyLimit) bytes")), head: head)
                    return
                }
                if body.isEmpty, case .length(let n)? = head?.framing { body.reserveCapacity(n) }
                body += chunk
                if bodyTooSlow() {
                    fail(ProblemDetails.response(for: HTTPError(.requestTimeout, detail: "request body arrives too slowly")), head: head)
                    return
                }
                setDeadline(.body, after: core.configuration.bodyTimeout)
            case .end:
                dispatch()
            }
        }
        guard !inFlight, !lingering, connection.state == .open else { return }
        if parser.isInHead {
            if deadlineKind != .header { setDeadline(.header, after: core.configuration.headerTimeout) }
        } else if parser.isIdle, deadlineKind != .idle, deadlineKind != .header {
            setDeadline(.idle, after: core.configuration.idleTimeout)
        }
    }

    /// Slower on average than `minimumBodyRate` once past the `bodyTimeout` head start.
    private func bodyTooSlow() -> Bool {
        let rate = core.configuration.minimumBodyRate
        guard rate > 0 else { return false }
        let timeout = core.configuration.bodyTimeout
        let headStart = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let elapsed = Double(EventLoop.now() &- bodyStartedAt) / 1e9
        return elapsed > headStart + Double(body.count) / Double(rate)
    }

    private func dispatch() {
        guard let head else { return }
        inFlight = true
        clearDeadline()
        let query: QueryParameters
        do {
            query = try head.query.map { q throws(HTTPError) in try QueryParameters(parsing: q) } ?? QueryParameters()
        } catch {
            respond(ProblemDetails.response(for: error))
            return
        }
        let request = HTTPRequest(
            method: head.method, path: head.path, query: query, version: head.version, headers: head.headers,
            body: body, remoteAddress: connection.remoteAddress)
        body = []
        let responder = core.responder
        let loop = core.loop
        task = Task { [self] in
            let response = await responder.respond(to: request)
            loop.execute { self.respond(response) }
        }
    }

    /// Writes the response to the current request (loop thread).
    private func respond(_ response: HTTPResponse) {
        core.loop.preconditionInEventLoop()
        guard connection.state == .open, !lingering, let head else { return }
        task = nil
        // A half-closed client with nothing more buffered gets its last answer with `close`.
        let keepAlive = head.keepAlive && !closeAfterResponse && !core.draining && !(peerClosed && parser.bufferedCount == 0)
            && !(response.headers["Connection"]?.lowercased().contains("close") ?? false)
        let isHead = head.method == .HEAD
        switch response.body {
        case .bytes:
            connection.write(core.serialize(response, headRequest: isHead, keepAlive: keepAlive, streaming: false, http10: head.version == .http1_0))
            complete(keepAlive: keepAlive)
        case .stream(let stream):
            let http10 = head.version == .http1_0
            let streamKeepAlive = keepAlive && !http10  // HTTP/1.0 bodies end with the connection
            connection.write(core.serialize(response, headRequest: isHead, keepAlive: streamKeepAlive, streaming: true, http10: http10))
            if isHead {
                connection.write(http10 ? [] : Array("0\r\n\r\n".utf8))
                complete(keepAlive: streamKeepAlive)
                return
            }
            startStream(stream, chunked: !http10, keepAlive: streamKeepAlive)
        }
    }

    private func complete(keepAlive: Bool) {
        inFlight = false
        head = nil
        guard keepAlive else {
            lingeringClose()
            return
        }
        connection.resumeReading()
        if parser.isIdle { setDeadline(.idle, after: core.configuration.idleTimeout) } else { clearDeadline() }
        process()
        // Half-closed: every complete request has been answered; a partial one never will be.
        if peerClosed, !inFlight, !lingering, connection.state == .open { connection.closeAfterFlush() }
    }

    /// Answers an unparseable or timed-out request and closes.
    private func fail(_ response: HTTPResponse, head failedHead: HTTPRequestHead?) {
        var response = response
        response.headers.set("X-Request-Id", RequestID.generate())
        connection.write(core.serialize(response, headRequest: false, keepAlive: false, streaming: false))
        if core.responder.accessLog {
            core.responder.logger.info("rejected \(response.status.code)", metadata: [
                "status": "\(response.status.code)", "remote": "\(connection.remoteAddress.map(\.description) ?? "?")",
            ])
        }
        inFlight = false
        lingeringClose()
    }

    /// Sends FIN after the response, then reads and discards what the client still sends
    /// (so the kernel does not answer it with RST and lose the response), for a short while.
    private func lingeringClose() {
        lingering = true
        closeAfterResponse = true
        if peerClosed {
            connection.closeAfterFlush()  // nothing more can arrive
            return
        }
        connection.resumeReading()
        connection.shutdownWriteAfterFlush()
        setDeadline(.linger, after: .seconds(2))
    }

    // MARK: - Streams

    private func startStream(_ stream: ResponseStream, chunked: Bool, keepAlive: Bool) {
        streamGeneration += 1
        streamActive = true
        let generation = streamGeneration
        let loop = core.loop
        let limit = stream.bufferLimit
        let waits = stream.waitsForClient
        let writer = ResponseBodyWriter { [self] bytes throws(ResponseStreamError) in
            while true {
                let outcome = (try? await loop.submit {
                    self.streamWrite(bytes, generation: generation, chunked: chunked, limit: limit, waits: waits)
                }) ?? .closed
                switch outcome {
                case .written: return
                case .closed: throw .connectionClosed
                case .slow: throw .slowConsumer
                case .full: await waitForDrain()
                }
            }
        }
        task = Task { [self] in
            var failed = false
            do { try await stream.produce(writer) } catch { failed = !(error is CancellationError) }
            let outcome = failed
            loop.execute { self.endStream(generation: generation, chunked: chunked, keepAlive: keepAlive, failed: outcome) }
        }
    }

    private func streamWrite(_ bytes: [UInt8], generation: Int, chunked: Bool, limit: Int, waits: Bool) -> StreamWriteOutcome {
        core.loop.preconditionInEventLoop()
        guard connection.state == .open, generation == streamGeneration, inFlight, !lingering else { return .closed }
        // Waiting: write only into a buffer below the high watermark, so the unsent bytes stay
        // under the watermark plus one chunk.
        if waits, !connection.isWritable { return .full }
        if connection.bufferedBytes + bytes.count > limit {
            core.responder.logger.notice("dropping slow stream consumer", metadata: [
                "remote": "\(connection.remoteAddress.map(\.description) ?? "?")", "buffered": "\(connection.bufferedBytes)",
            ])
            connection.close()
            return .slow
        }
        if chunked {
            connection.write(Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [13, 10])
        } else {
            connection.write(bytes)
        }
        return .written
    }

    /// Returns once the connection took its buffered bytes below the low watermark, or closed.
    private func waitForDrain() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            core.loop.execute { [self] in
                if connection.state != .open || connection.isWritable { waiter.resume() } else { drainWaiters.append(waiter) }
            }
        }
    }

    private func resumeDrainWaiters() {
        let waiters = drainWaiters
        drainWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    private func endStream(generation: Int, chunked: Bool, keepAlive: Bool, failed: Bool) {
        core.loop.preconditionInEventLoop()
        guard connection.state == .open, generation == streamGeneration, inFlight else { return }
        task = nil
        streamActive = false
        if failed || !chunked {
            // No way to signal an error inside chunked coding but to cut the connection.
            if failed { connection.close() } else { inFlight = false; head = nil; lingeringClose() }
            return
        }
        connection.write(Array("0\r\n\r\n".utf8))
        complete(keepAlive: keepAlive)
    }

    // MARK: - Shutdown

    /// Server shutdown: idle connections close now; a request in flight finishes with
    /// `Connection: close`; a stream is cancelled (its producer ends it).
    func drain() {
        core.loop.preconditionInEventLoop()
        if inFlight {
            closeAfterResponse = true
            if streamActive { task?.cancel() }
        } else if !lingering {
            connection.close()
        }
    }


    // MARK: - Deadlines (one loop timer, re-armed lazily)

    private func setDeadline(_ kind: Deadline, after delay: Duration) {
        let ns = UInt64(delay.components.seconds) * 1_000_000_000 + UInt64(delay.components.attoseconds / 1_000_000_000)
        let now = EventLoop.now()
        if kind == .idle && deadlineKind != .idle { idleSince = now }
        deadlineKind = kind
        deadline = now + ns
        if timer == nil || deadline < timerDeadline { arm(at: deadline) }
    }

    private func clearDeadline() {
        deadlineKind = .none
        deadline = 0
    }

    private func arm(at when: UInt64) {
        if let timer { core.loop.cancelTimer(timer) }
        timerDeadline = when
        let now = EventLoop.now()
        timer = core.loop.scheduleTimer(after: .nanoseconds(Int64(when > now ? when - now : 0))) { [weak self] in
            self?.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard connection.state == .open, deadlineKind != .none else { return }
        let now = EventLoop.now()
        guard now >= deadline else {
            arm(at: deadline)
            return
        }
        switch deadlineKind {
        case .none:
            return
        case .idle, .linger:
            connection.close()
        case .header, .body:
            clearDeadline()
            let what = deadlineKind == .header ? "headers" : "body"
            fail(ProblemDetails.response(for: HTTPError(.requestTimeout, detail: "request \(what) did not arrive in time")), head: head)
        }
    }
}
