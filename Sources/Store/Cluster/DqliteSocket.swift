internal import DqliteWire
internal import IP
internal import Sockets
#if canImport(Glibc)
internal import Glibc
#endif

/// One TCP connection to a dqlite node, speaking its wire protocol: blocking, with a deadline on
/// every call. It runs on the thread of whoever uses the store (the committer's, a request's),
/// never on Herald's event loop.
final class DqliteSocket {
    let address: String
    private var descriptor: Int32
    private var received: [UInt8] = []
    /// How long one request may take, answer included.
    let timeoutMilliseconds: Int32

    /// Connects and sends the handshake (the protocol version word).
    init(address: String, timeoutMilliseconds: Int32) throws(DatabaseError) {
        self.address = address
        self.timeoutMilliseconds = timeoutMilliseconds
        guard let endpoint = Self.endpoint(address) else {
            throw DatabaseError.unavailable("\(address) is not an IP address and port (host:port or [v6]:port)")
        }
        descriptor = try Self.connect(endpoint, timeoutMilliseconds: timeoutMilliseconds, address: address)
        do {
            try write(DqliteProtocol.handshake)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    var isOpen: Bool { descriptor >= 0 }

    /// Sends `request` and waits for one answer (a FAILURE answer is returned, not thrown).
    func call(_ request: DqliteRequest) throws(DatabaseError) -> DqliteResponse {
        try send(request)
        return try receive()
    }

    /// Sends `request` without waiting for the answer.
    func send(_ request: DqliteRequest) throws(DatabaseError) {
        let bytes: [UInt8]
        do { bytes = try request.encoded() } catch {
            throw DatabaseError(extendedCode: DatabaseError.misuseCode, message: "cannot encode a dqlite \(request.type): \(error)")
        }
        try write(bytes)
    }

    /// The next message: the rest of a ROWS answer that said more is coming, or an answer.
    func receive(maximumBodyLength: Int = DqliteFraming.defaultMaximumBodyLength) throws(DatabaseError) -> DqliteResponse {
        let deadline = Self.now() + Int64(timeoutMilliseconds)
        while true {
            let frame: DqliteFrame
            do { frame = try DqliteFraming.nextMessage(in: received, maximumBodyLength: maximumBodyLength) } catch {
                close()
                throw DatabaseError.unavailable("dqlite node \(address) sent a malformed message: \(error)")
            }
            switch frame {
            case .message(_, let length):
                let message = received[0..<length]
                defer { received.removeFirst(length) }
                do { return try DqliteResponse.decode(message) } catch {
                    close()
                    throw DatabaseError.unavailable("dqlite node \(address) sent a malformed message: \(error)")
                }
            case .needMoreBytes(let total):
                try fill(upTo: total, deadline: deadline)
            }
        }
    }

    // MARK: - Bytes

    private func write(_ bytes: [UInt8]) throws(DatabaseError) {
        let deadline = Self.now() + Int64(timeoutMilliseconds)
        var offset = 0
        while offset < bytes.count {
            guard isOpen else { throw lost("the connection is closed") }
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                offset += sent
            } else if sent < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(for: Int16(POLLOUT), deadline: deadline)
            } else {
                throw lost("send: \(String(cString: strerror(errno)))")
            }
        }
    }

    private func fill(upTo total: Int, deadline: Int64) throws(DatabaseError) {
        var chunk = [UInt8](repeating: 0, count: max(4096, min(total - received.count, 1 << 20)))
        while received.count < total {
            guard isOpen else { throw lost("the connection is closed") }
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += chunk[0..<count]
            } else if count == 0 {
                throw lost("the node closed the connection")
            } else if errno == EAGAIN || errno == EINTR {
                try wait(for: Int16(POLLIN), deadline: deadline)
            } else {
                throw lost("recv: \(String(cString: strerror(errno)))")
            }
        }
    }

    private func wait(for events: Int16, deadline: Int64) throws(DatabaseError) {
        let left = deadline - Self.now()
        guard left > 0 else { throw lost("no answer within \(timeoutMilliseconds) ms") }
        var descriptor = pollfd(fd: self.descriptor, events: events, revents: 0)
        let ready = poll(&descriptor, 1, Int32(clamping: left))
        if ready == 0 { throw lost("no answer within \(timeoutMilliseconds) ms") }
        if ready < 0 && errno != EINTR { throw lost("poll: \(String(cString: strerror(errno)))") }
    }

    private func lost(_ why: String) -> DatabaseError {
        close()
        return DatabaseError.unavailable("lost the dqlite node \(address): \(why)")
    }

    // MARK: - Connecting

    /// "192.0.2.1:9001" or "[2001:db8::1]:9001".
    static func endpoint(_ address: String) -> (IPAddress, UInt16)? {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else { return nil }
        var host = address[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return IPAddress(String(host)).map { ($0, port) }
    }

    private static func connect(_ endpoint: (IPAddress, UInt16), timeoutMilliseconds: Int32, address: String) throws(DatabaseError) -> Int32 {
        let (host, port) = endpoint
        let target = SocketAddress(host, port: port)
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DatabaseError.unavailable("cannot reach the dqlite node \(address): socket: \(String(cString: strerror(errno)))") }
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        let started = target.connect(socket: fd)
        if started != 0 && errno != EINPROGRESS {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw DatabaseError.unavailable("cannot reach the dqlite node \(address): \(why)")
        }
        if started != 0 {
            var pending = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pending, 1, timeoutMilliseconds)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if ready <= 0 || error != 0 {
                Glibc.close(fd)
                let why = ready == 0 ? "no answer within \(timeoutMilliseconds) ms" : String(cString: strerror(error != 0 ? error : errno))
                throw DatabaseError.unavailable("cannot reach the dqlite node \(address): \(why)")
            }
        }
        return fd
    }

    /// Monotonic milliseconds.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
