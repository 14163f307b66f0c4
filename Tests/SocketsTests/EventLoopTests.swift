import Testing
import Synchronization
import Foundation
@testable import Sockets

@Suite("EventLoop")
struct EventLoopTests {
    @Test func executeFromManyThreadsRunsEverythingOnTheLoop() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let count = Mutex(0)
        let offLoop = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 {
                loop.execute {
                    if !loop.inEventLoop { offLoop.withLock { $0 += 1 } }
                    count.withLock { $0 += 1 }
                }
            }
        }
        #expect(await eventually { count.withLock { $0 } == 8000 })
        #expect(offLoop.withLock { $0 } == 0)
        #expect(!loop.inEventLoop)
    }

    @Test func submitReturnsResultsAndErrors() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let value = try await loop.submit { loop.inEventLoop ? 42 : 0 }
        #expect(value == 42)
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await loop.submit { throw Boom() } }
    }

    /// Loop confinement is checked in release builds too (`precondition`, one comparison of
    /// thread identities): the check passes on the loop thread and traps anywhere else, also
    /// when a loop-confined socket is used from a task instead of inside `submit`.
    @Test func loopConfinementIsCheckedNotAssumed() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        #expect(try await loop.submit { loop.preconditionInEventLoop(); return loop.inEventLoop })
        #expect(!loop.inEventLoop)

        let offLoop = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try! EventLoop(name: "confinement")
            loop.preconditionInEventLoop()
        }
        let socketOffLoop = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try! EventLoop(name: "confinement")
            let listener = try! await loop.submit { try Listener(bindingTo: SocketAddress(.v4(.init(127, 0, 0, 1)), port: 0), on: loop) { _ in nil } }
            listener.close()
        }
        #if DEBUG
        // Release builds trap without the message.
        for result in [offLoop, socketOffLoop] {
            let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
            #expect(stderr.contains("must be called on the event loop thread"), "\(stderr)")
        }
        #endif
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesDoNot() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let fired = Mutex<[Int]>([])
        let started = EventLoop.now()
        try await loop.submit {
            loop.scheduleTimer(after: .milliseconds(300)) { fired.withLock { $0.append(3) } }
            loop.scheduleTimer(after: .milliseconds(100)) { fired.withLock { $0.append(1) } }
            let cancelled = loop.scheduleTimer(after: .milliseconds(150)) { fired.withLock { $0.append(99) } }
            loop.scheduleTimer(after: .milliseconds(200)) { fired.withLock { $0.append(2) } }
            loop.cancelTimer(cancelled)
        }
        #expect(await eventually { fired.withLock { $0.count } == 3 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(fired.withLock { $0 } == [1, 2, 3])
        #expect(EventLoop.now() - started >= 300_000_000)
    }

    @Test func manyCancelledTimersDoNotAccumulate() async throws {
        let loop = try EventLoop()
        defer { loop.shutdown() }
        let fired = Mutex(0)
        try await loop.submit {
            for _ in 0..<10_000 {
                let t = loop.scheduleTimer(after: .seconds(60)) { fired.withLock { $0 += 1 } }
                loop.cancelTimer(t)
            }
            loop.scheduleTimer(after: .milliseconds(10)) { fired.withLock { $0 += 1 } }
        }
        #expect(await eventually { fired.withLock { $0 } == 1 })
    }

    @Test func timerHeapOrdersEntries() {
        var heap = TimerHeap()
        for (i, d) in [50, 10, 40, 10, 30, 20].enumerated() {
            heap.push(.init(deadline: UInt64(d), id: UInt64(i)))
        }
        var out: [UInt64] = []
        while let e = heap.pop() { out.append(e.id) }
        #expect(out == [1, 3, 5, 4, 2, 0])
    }

    @Test func shutdownClosesRegisteredSockets() async throws {
        let loop = try EventLoop()
        let port = try await loop.submit {
            let listener = try Listener(bindingTo: SocketAddress(.v4(.init(127, 0, 0, 1)), port: 0), on: loop) { _ in nil }
            return listener.localAddress.port
        }
        #expect(port != 0)
        loop.shutdown()
        loop.shutdown()  // idempotent
        await #expect(throws: SocketError.self) { try await loop.submit { 1 } }
    }
}
