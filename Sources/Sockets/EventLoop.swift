import Glibc
import CSystem
import Foundation
import Synchronization

/// Something registered with the loop's epoll set. Called on the loop thread only.
protocol Selectable: AnyObject {
    func handleEvents(_ events: UInt32)
}

/// A handle to a scheduled timer; pass it to `EventLoop.cancelTimer(_:)`.
public struct TimerHandle: Hashable, Sendable {
    let id: UInt64
}

/// One thread, one epoll set: the event loop that HTTP connections and BGP sessions share.
///
/// Threading model:
/// - The loop runs on its own thread, started by `init`. Sockets (`Listener`, `Connection`),
///   timers and registrations are *loop-confined*: create and use them on the loop thread only,
///   i.e. inside callbacks or closures given to `execute`/`submit`.
/// - Any thread or task may call `execute(_:)` (fire and forget) or `await submit(_:)`
///   (run on the loop, get the result back); both wake the loop through an eventfd.
/// - Swift concurrency bridge: delegates start `Task`s for slow work (a request handler); the task
///   hands its result back with `loop.execute { … }`, so the loop never blocks on it.
/// - Timers live in a binary heap inside the loop; `epoll_wait`'s timeout is the next deadline.
public final class EventLoop: @unchecked Sendable {
    let epfd: Int32
    private let wakeFD: Int32

    private struct Shared {
        var pending: [@Sendable () -> Void] = []
        var wakePending = false
        var stopping = false
    }
    private let shared = Mutex(Shared())
    private let stopped = DispatchSemaphore(value: 0)
    private var threadID = pthread_t()
    private var isRunning = true

    // Loop-confined state.
    private var selectables: [UInt64: any Selectable] = [:]
    private var nextRegistration: UInt64 = 1
    private var timerHeap = TimerHeap()
    private var timerActions: [UInt64: () -> Void] = [:]
    private var nextTimer: UInt64 = 1
    /// A scratch buffer for reads; only one read runs at a time on the loop thread.
    let readBuffer: UnsafeMutableRawBufferPointer

    /// Starts the loop on a new thread named `name`.
    public init(name: String = "herald-loop") throws {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else { throw SocketError.current("epoll_create1") }
        let ev = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard ev >= 0 else {
            let error = SocketError.current("eventfd")
            Glibc.close(ep)
            throw error
        }
        guard csystem_epoll_ctl(ep, EPOLL_CTL_ADD, ev, csystem_EPOLLIN, 0) == 0 else {
            let error = SocketError.current("epoll_ctl(eventfd)")
            Glibc.close(ep)
            Glibc.close(ev)
            throw error
        }
        epfd = ep
        wakeFD = ev
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        let started = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            self.threadID = pthread_self()
            started.signal()
            self.run()
            self.stopped.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        started.wait()
    }

    deinit {
        readBuffer.deallocate()
    }

    /// True when called on the loop's thread: one comparison of thread identities.
    public var inEventLoop: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    /// Traps, in release builds too, when not called on the loop thread. The loop's sockets and
    /// the sessions and connection handlers built on them are `@unchecked Sendable` on the
    /// promise that only this thread touches them; their entry points check that promise here
    /// (one comparison) instead of trusting it, so a caller that breaks it stops at once rather
    /// than racing on their state.
    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inEventLoop, "must be called on the event loop thread", file: file, line: line)
    }

    /// Traps in debug builds only when not on the loop thread: for paths too hot to check in a
    /// release build. Entry points use `preconditionInEventLoop()`.
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "must be called on the event loop thread", file: file, line: line)
    }

    // MARK: - Cross-thread entry points

    /// Runs `work` on the loop thread soon. Safe from any thread; never blocks.
    /// After `shutdown()` the work is dropped.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        _ = enqueue(work)
    }

    /// Queues `work`; false when the loop is stopping and the work was dropped.
    private func enqueue(_ work: @escaping @Sendable () -> Void) -> Bool {
        shared.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.pending.append(work)
            if !state.wakePending {
                state.wakePending = true
                // Written under the lock: `shutdown()` closes `wakeFD` only after it has set
                // `stopping` under this lock, so no write can land on a closed descriptor
                // number, which by then may belong to someone else's socket.
                var one: UInt64 = 1
                _ = Glibc.write(wakeFD, &one, 8)
            }
            return true
        }
    }

    /// Runs `work` on the loop and returns its result to the calling task.
    public func submit<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = enqueue { continuation.resume(with: Result { try work() }) }
            if !accepted {
                continuation.resume(throwing: SocketError("event loop stopped", errno: ECANCELED))
            }
        }
    }

    /// Stops the loop and waits for its thread to end, then closes the epoll and eventfd
    /// descriptors. Sockets still registered are closed too. Call from outside the loop thread.
    public func shutdown() {
        precondition(!inEventLoop, "shutdown() would wait for itself on the loop thread")
        let first = shared.withLock { state -> Bool in
            if state.stopping { return false }
            state.pending.append { [self] in self.isRunning = false }
            state.stopping = true
            return true
        }
        guard first else { return }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
        stopped.wait()
        Glibc.close(epfd)
        Glibc.close(wakeFD)
    }

    // MARK: - Timers (loop thread only)

    /// Calls `action` on the loop thread once `delay` has passed.
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ action: @escaping () -> Void) -> TimerHandle {
        preconditionInEventLoop()
        let id = nextTimer
        nextTimer += 1
        let ns = max(0, delay.components.seconds) * 1_000_000_000 + max(0, delay.components.attoseconds / 1_000_000_000)
        timerHeap.push(TimerHeap.Entry(deadline: Self.now() &+ UInt64(ns), id: id))
        timerActions[id] = action
        return TimerHandle(id: id)
    }

    /// Cancels a timer that has not fired yet; harmless if it has.
    public func cancelTimer(_ handle: TimerHandle) {
        preconditionInEventLoop()
        timerActions[handle.id] = nil
        // Cancelled entries stay in the heap until they surface; rebuild when they dominate.
        if timerHeap.count > 2 * timerActions.count + 1024 {
            timerHeap.removeAll { timerActions[$0.id] == nil }
        }
    }

    /// Monotonic nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    // MARK: - Registration (loop thread only)

    func register(fd: Int32, events: UInt32, _ selectable: any Selectable) throws(SocketError) -> UInt64 {
        preconditionInEventLoop()
        let id = nextRegistration
        nextRegistration += 1
        guard csystem_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events, id) == 0 else {
            throw SocketError.current("epoll_ctl(ADD)")
        }
        selectables[id] = selectable
        return id
    }

    func modify(fd: Int32, registration: UInt64, events: UInt32) {
        preconditionInEventLoop()
        _ = csystem_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, events, registration)
    }

    func deregister(fd: Int32, registration: UInt64) {
        preconditionInEventLoop()
        _ = csystem_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0, 0)
        selectables[registration] = nil
    }

    /// Number of registered sockets (listeners and connections); for tests and metrics.
    public var registeredCount: Int {
        preconditionInEventLoop()
        return selectables.count
    }

    // MARK: - The loop

    private func run() {
        let maxEvents = 256
        let eventSize = csystem_epoll_event_size()
        let events = UnsafeMutableRawPointer.allocate(byteCount: eventSize * maxEvents, alignment: 16)
        defer { events.deallocate() }
        while isRunning {
            let timeout = nextTimeout()
            let n = epoll_wait(epfd, events.assumingMemoryBound(to: epoll_event.self), Int32(maxEvents), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait: \(SocketError.current("epoll_wait"))")
            }
            for i in 0..<Int(n) {
                let event = UnsafePointer<epoll_event>(OpaquePointer(events + i * eventSize))
                let data = csystem_epoll_event_data(event)
                let flags = csystem_epoll_event_events(event)
                if data == 0 {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                } else if let selectable = selectables[data] {
                    selectable.handleEvents(flags)
                }
            }
            runTimers()
            runPending()
        }
        // Close whatever is still registered so no descriptor outlives the loop.
        for (_, selectable) in selectables {
            (selectable as? any LoopClosable)?.closeForLoopShutdown()
        }
        selectables.removeAll()
        timerActions.removeAll()
    }

    private func nextTimeout() -> Int32 {
        let hasPending = shared.withLock { !$0.pending.isEmpty }
        if hasPending { return 0 }
        while let top = timerHeap.peek(), timerActions[top.id] == nil { _ = timerHeap.pop() }
        guard let top = timerHeap.peek() else { return -1 }
        let now = Self.now()
        if top.deadline <= now { return 0 }
        let ms = (top.deadline - now + 999_999) / 1_000_000
        return Int32(min(ms, 60_000))
    }

    private func runTimers() {
        let now = Self.now()
        while let top = timerHeap.peek(), top.deadline <= now {
            _ = timerHeap.pop()
            if let action = timerActions.removeValue(forKey: top.id) { action() }
        }
    }

    private func runPending() {
        let work = shared.withLock { state -> [@Sendable () -> Void] in
            state.wakePending = false
            let work = state.pending
            state.pending.removeAll(keepingCapacity: true)
            return work
        }
        for item in work { item() }
    }
}

/// Sockets that the loop closes when it shuts down.
protocol LoopClosable: AnyObject {
    func closeForLoopShutdown()
}

/// A min-heap of timer deadlines (ties broken by id, so equal deadlines fire in schedule order).
struct TimerHeap {
    struct Entry {
        var deadline: UInt64
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
    }
    private var items: [Entry] = []

    var count: Int { items.count }
    func peek() -> Entry? { items.first }

    mutating func removeAll(where shouldRemove: (Entry) -> Bool) {
        let kept = items.filter { !shouldRemove($0) }
        items.removeAll(keepingCapacity: true)
        for entry in kept { push(entry) }
    }

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, items[l] < items[smallest] { smallest = l }
            if r < items.count, items[r] < items[smallest] { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}
