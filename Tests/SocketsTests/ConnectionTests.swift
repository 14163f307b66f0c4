import Testing
import Synchronization
import Foundation
import Glibc
@testable import Sockets
import IP

@Suite("Listener and Connection")
struct ConnectionTests {
    static let v4Loopback = IPAddress.v4(IPv4Address(127, 0, 0, 1))
    static let v6Loopback = IPAddress.v6(.loopback)

    /// Starts an echo listener and an outgoing connection to it; sends `message`, expects it back.
    func echoRoundTrip(_ address: IPAddress, options: SocketOptions = SocketOptions(), listenerOptions: SocketOptions = SocketOptions(), bindLocal: Bool = false) async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let serverSide = Recorder(echo: true)
        let listenerBox = Box<Listener?>(nil)
        let listenAddress = try await loop.submit {
            let listener = try Listener(bindingTo: SocketAddress(address, port: 0), options: listenerOptions, on: loop) { _ in serverSide }
            if let key = options.md5Key { try listener.setMD5Key(key, for: address) }
            listenerBox.value = listener
            return listener.localAddress
        }
        #expect(listenAddress.port != 0)
        let client = Recorder()
        let message = Array("hello over \(address)".utf8)
        let connection = try await loop.submit {
            let c = try Connection.connect(
                to: listenAddress, from: bindLocal ? SocketAddress(address, port: 0) : nil,
                options: options, on: loop, delegate: client)
            c.write(message)
            return c
        }
        #expect(await eventually { client.received == message })
        #expect(client.connected)
        let local = try await loop.submit { connection.localAddress }
        #expect(local?.address == address)
        try await loop.submit {
            connection.close()
            listenerBox.value?.close()
        }
        #expect(await eventually { serverSide.closed })
        #expect(client.closed)
        #expect(client.state.withLock { $0.closeError } == nil)
        #expect(try await loop.submit { loop.registeredCount } == 0)
    }

    @Test func echoOverIPv4() async throws {
        try await echoRoundTrip(Self.v4Loopback)
    }

    @Test func echoOverIPv6() async throws {
        try await echoRoundTrip(Self.v6Loopback)
    }

    @Test func connectFromAGivenLocalAddressWithTTLOptions() async throws {
        // GTSM (RFC 5082) on both sides: send with TTL 255, accept only 254 and above.
        let gtsm = SocketOptions(ttl: 255, minimumTTL: 254)
        try await echoRoundTrip(Self.v4Loopback, options: gtsm, listenerOptions: gtsm, bindLocal: true)
        try await echoRoundTrip(Self.v6Loopback, options: gtsm, listenerOptions: gtsm, bindLocal: true)
    }

    @Test func connectWithMD5SignatureOnBothSides() async throws {
        try await echoRoundTrip(Self.v4Loopback, options: SocketOptions(md5Key: Array("s3cret".utf8)))
    }

    @Test func connectionRefusedIsReportedAsAnError() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        // Find a port nobody listens on: bind, read the port, close.
        let port = try await loop.submit {
            let l = try Listener(bindingTo: SocketAddress(Self.v4Loopback, port: 0), on: loop) { _ in nil }
            defer { l.close() }
            return l.localAddress.port
        }
        let client = Recorder()
        _ = try await loop.submit {
            try Connection.connect(to: SocketAddress(Self.v4Loopback, port: port), on: loop, delegate: client)
        }
        #expect(await eventually { client.closed })
        #expect(client.state.withLock { $0.closeError?.errno } == ECONNREFUSED)
        #expect(!client.connected)
    }

    @Test func writeBackpressureReportsWritableAfterThePeerDrains() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let serverSide = Recorder()
        let serverConnection = Box<Connection?>(nil)
        let address = try await loop.submit {
            let listener = try Listener(bindingTo: SocketAddress(Self.v4Loopback, port: 0), on: loop) { c in
                serverConnection.value = c
                c.pauseReading()  // a stalled reader
                return serverSide
            }
            return listener.localAddress
        }
        let client = Recorder()
        let chunk = [UInt8](repeating: 0x61, count: 64 * 1024)
        let connection = try await loop.submit {
            try Connection.connect(to: address, on: loop, delegate: client)
        }
        #expect(await eventually { client.connected && serverConnection.value != nil })
        // Write until the buffer is above the high watermark (the kernel buffers fill first).
        let total = try await loop.submit { () -> Int in
            var written = 0
            while connection.isWritable && written < 256 * 1024 * 1024 {
                connection.write(chunk)
                written += chunk.count
            }
            return written
        }
        #expect(try await loop.submit { !connection.isWritable && connection.bufferedBytes >= connection.highWatermark })
        #expect(client.state.withLock { $0.writableCount } == 0)
        try await loop.submit { serverConnection.value?.resumeReading() }
        #expect(await eventually { client.state.withLock { $0.writableCount } >= 1 })
        #expect(await eventually { serverSide.state.withLock { $0.received.count } == total })
        try await loop.submit { connection.close() }
        #expect(await eventually { serverSide.closed })
    }

    @Test func halfCloseDeliversEOFAndPendingDataStillArrives() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let serverSide = Recorder(echo: true)
        let address = try await loop.submit {
            try Listener(bindingTo: SocketAddress(Self.v4Loopback, port: 0), on: loop) { _ in serverSide }.localAddress
        }
        let client = Recorder()
        let message = Array("last words".utf8)
        _ = try await loop.submit {
            let c = try Connection.connect(to: address, on: loop, delegate: client)
            c.write(message)
            c.shutdownWriteAfterFlush()
            return c
        }
        // The server sees the data then EOF, echoes, and closes after flushing; the client reads
        // the echo and then EOF.
        #expect(await eventually { serverSide.state.withLock { $0.eof } && serverSide.closed })
        #expect(await eventually { client.received == message && client.closed })
    }

    @Test func resetIsReportedToThePeerAsAnError() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let serverConnection = Box<Connection?>(nil)
        let serverSide = Recorder()
        let address = try await loop.submit {
            try Listener(bindingTo: SocketAddress(Self.v4Loopback, port: 0), on: loop) { c in
                serverConnection.value = c
                return serverSide
            }.localAddress
        }
        let client = Recorder()
        _ = try await loop.submit { try Connection.connect(to: address, on: loop, delegate: client) }
        #expect(await eventually { client.connected && serverConnection.value != nil })
        try await loop.submit { serverConnection.value?.close(reset: true) }
        #expect(await eventually { client.closed })
        #expect(client.state.withLock { $0.closeError?.errno } == ECONNRESET)
        #expect(serverSide.closed)
        #expect(try await loop.submit { loop.registeredCount } == 1)  // the listener
    }

    @Test func timersAndWritesFromATaskHopBackToTheLoop() async throws {
        // The bridge a session driver uses: work in a task, result applied on the loop.
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let serverSide = Recorder()
        let address = try await loop.submit {
            try Listener(bindingTo: SocketAddress(Self.v6Loopback, port: 0), on: loop) { _ in serverSide }.localAddress
        }
        let client = Recorder()
        let connection = try await loop.submit { try Connection.connect(to: address, on: loop, delegate: client) }
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<10 {
                group.addTask {
                    let message = Array("m\(i);".utf8)
                    loop.execute { connection.write(message) }
                }
            }
        }
        #expect(await eventually { serverSide.received.count == 30 })
        let text = String(decoding: serverSide.received, as: UTF8.self)
        #expect(Set(text.split(separator: ";")) == Set((0..<10).map { "m\($0)" }))
        try await loop.submit { connection.close() }
    }
}

