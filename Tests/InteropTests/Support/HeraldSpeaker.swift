import BGPSpeaker
import Foundation
import IP
import Logging
import Sockets

// Herald's speaker inside a test namespace, in-process: the speaker gets its own EventLoop whose
// thread joins the namespace with setns(2) before any socket is created, so its listener and
// connections live in the namespace while the test process (its main thread, and with it
// `ip netns pids`) stays in the root namespace. Nothing of 100.64/10 is ever in the root namespace.

/// setns(2) through the C library (Swift's Glibc module does not export it).
private func setNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "setns") else { return -1 }
    let setns = unsafeBitCast(symbol, to: SetNS.self)
    let CLONE_NEWNET: Int32 = 0x4000_0000
    return setns(fd, CLONE_NEWNET)
}

/// Moves the calling thread into `/run/netns/NAME`.
func enterNetworkNamespace(_ name: String) throws {
    let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw HarnessError("open /run/netns/\(name): errno \(errno)") }
    defer { close(fd) }
    guard setNetworkNamespace(fd) == 0 else { throw HarnessError("setns(\(name)): errno \(errno)") }
}

/// A Herald `Speaker` running on its own event loop inside `namespace`.
final class HeraldUnderTest: @unchecked Sendable {
    let loop: EventLoop
    let speaker: Speaker
    let namespace: NetworkNamespace

    static func start(in namespace: NetworkNamespace, settings: SpeakerSettings) async throws -> HeraldUnderTest {
        let loop = try EventLoop(name: "herald-\(namespace.name)")
        let name = namespace.name
        do {
            try await loop.submit { try enterNetworkNamespace(name) }
        } catch {
            loop.shutdown()
            throw error
        }
        var logger = Logger(label: "herald.bgp.\(namespace.name)")
        logger.logLevel = ProcessInfo.processInfo.environment["HERALD_INTEROP_LOG"] == "1" ? .debug : .error
        let speaker = Speaker(settings: settings, loop: loop, logger: logger)
        try await speaker.start()
        return HeraldUnderTest(loop: loop, speaker: speaker, namespace: namespace)
    }

    private init(loop: EventLoop, speaker: Speaker, namespace: NetworkNamespace) {
        self.loop = loop
        self.speaker = speaker
        self.namespace = namespace
    }

    /// Cease to every peer, then stop the loop (its sockets close with it).
    func stop() async {
        await speaker.shutdown(mode: .withdraw(message: "test finished"))
        loop.shutdown()
    }

    /// Waits until Herald's peer `name` is Established.
    @discardableResult
    func waitEstablished(_ name: String, timeout: Duration = .seconds(30)) async throws -> PeerSnapshot {
        try await waitPeer(name, "\(name) Established", timeout: timeout) { $0.state == .established }
    }

    /// Waits until `accept` holds for Herald's view of peer `name`.
    @discardableResult
    func waitPeer(_ name: String, _ what: String, timeout: Duration = .seconds(30),
                  _ accept: @escaping @Sendable (PeerSnapshot) -> Bool) async throws -> PeerSnapshot {
        let deadline = ContinuousClock.now + timeout
        var last: PeerSnapshot?
        while ContinuousClock.now < deadline {
            last = await speaker.peer(named: name)
            if let last, accept(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("timed out after \(timeout) waiting for Herald: \(what); peer is \(last.map { "\($0.state), last error: \($0.lastError?.reason ?? "-"), hint: \($0.hint ?? "-")" } ?? "missing")")
    }
}

/// Waits for an async probe (Herald's state) with a deadline; no fixed sleeps.
func eventuallyAsync<T>(_ what: String, timeout: Duration = .seconds(30), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if let value = try await probe() { return value }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw HarnessError("timed out after \(timeout) waiting for \(what)" + (lastError.map { ": \($0)" } ?? ""))
}

extension IPAddress {
    var v4: IPv4Address {
        guard case .v4(let a) = self else { preconditionFailure("not IPv4: \(self)") }
        return a
    }
}
