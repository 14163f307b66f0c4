import Foundation
internal import Glibc
internal import IP
public import Logging
public import Sockets
internal import Store
internal import Synchronization

/// One checked node as the API and metrics see it.
public struct NodeHealthStatus: Sendable, Equatable {
    public let node: String
    public let check: HealthCheck
    /// "tcp 192.0.2.12:443": what is checked.
    public let target: String
    public let health: NodeHealth
}

/// Runs the nodes' health checks on the shared event loop and turns rise/fall transitions into
/// route changes through the `Committer` (so they are derived, recorded in the history with
/// their reason, committed and announced like any other change).
///
/// No thread per check: each check is a non-blocking connect (and, for http, one request) on the
/// `Sockets` event loop, with a loop timer for its timeout and one per node for its interval. At
/// most `maxInFlight` checks run at once; a check that comes due while all slots are busy waits
/// in a FIFO queue, so a thousand nodes cost a thousand timers, not a thousand sockets. A node
/// whose previous check has not finished skips that round rather than pile up.
///
/// Transitions leave the loop through one pending list that one task commits, every change
/// waiting in one commit, in the order they happened (see `pending`).
public final class NodeHealthMonitor: @unchecked Sendable {
    public let loop: EventLoop
    let committer: Committer
    let logger: Logger
    public let maxInFlight: Int

    private let statuses = Mutex<[String: NodeHealthStatus]>([:])
    /// Transitions not committed yet, oldest first. None is ever dropped (a lost transition would
    /// leave a node in or out of routes for good); the list stays short because the consumer
    /// takes all of it into one commit, so it holds only what came during the last commit. A
    /// node's transitions are at least rise or fall checks apart, each check at least 100 ms
    /// after the last (`HealthCheck` validation), so that is about one change per node at most,
    /// however many nodes flip together; a node change puts a down node back once per commit.
    private let pending = Mutex<[Change]>([])
    /// Wakes the consumer; a wake-up while one is waiting adds nothing (a buffer of one).
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let consumer = Mutex<Task<Void, Never>?>(nil)
    /// Follows the committed node changes.
    private let follower = Mutex<Task<Void, Never>?>(nil)

    /// A route change to make after a transition (or a reset of a down node).
    struct Change: Sendable {
        let node: String
        let down: Bool
        let reason: String
        let from: NodeHealth.State
        let to: NodeHealth.State
        let transitions: Int
        let at: Int64
    }

    /// One checked node. Loop-confined.
    private final class Target {
        let name: String
        let check: HealthCheck
        let address: IPAddress
        var health: NodeHealth
        var timer: TimerHandle?
        /// Queued or in flight: the next round is skipped until it finishes.
        var busy = false
        var cancelled = false

        init(name: String, check: HealthCheck, address: IPAddress) {
            self.name = name
            self.check = check
            self.address = address
            health = NodeHealth(rise: check.rise, fall: check.fall)
        }
    }

    // Loop-confined state.
    private var targets: [String: Target] = [:]
    private var waiting: [Target] = []
    private var waitingHead = 0
    private var inFlight = 0
    /// Checks not run because this host was short of descriptors or buffers (not counted
    /// against any node).
    private var localShortages = 0
    private var stopped = false

    public init(loop: EventLoop, committer: Committer, logger: Logger = Logger(label: "herald.health"),
                maxInFlight: Int = 64) {
        self.loop = loop
        self.committer = committer
        self.logger = logger
        self.maxInFlight = max(1, maxInFlight)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: - Public face

    /// Starts checking the committed nodes that have a health check, and follows every node
    /// change the committer commits: new checks start, changed ones start over as unknown,
    /// removed ones stop; a node that was down and whose check changed or went away is put back
    /// into its routes.
    public func start() async throws {
        let task = Task { [self] in
            for await _ in wakeups { await commitPending() }
            // What came after the last wake-up, before `stop()` ended them.
            await commitPending()
        }
        consumer.withLock { $0 = task }
        let started = Reply<Void>()
        let nodeChanges = committer.subscribe()
        let following = Task { [self] in
            for await change in nodeChanges {
                switch change {
                case let .snapshot(_, _, nodes):
                    _ = try? await loop.submit { [self] in apply(nodes) }
                    started.fulfil(())
                case let .nodes(nodes, reply):
                    _ = try? await loop.submit { [self] in apply(nodes) }
                    reply?.fulfil(())
                default:
                    continue
                }
            }
            started.fulfil(())
        }
        follower.withLock { $0 = following }
        await started.value
    }

    /// Stops every check and waits until the pending route changes are handed over.
    public func stop() async {
        _ = try? await loop.submit { [self] in
            stopped = true
            for target in targets.values { cancel(target) }
            targets.removeAll()
            waiting.removeAll()
            waitingHead = 0
        }
        wake.finish()
        await consumer.withLock { $0 }?.value
        follower.withLock { $0 }?.cancel()
    }

    /// Every checked node, by name.
    public var status: [String: NodeHealthStatus] { statuses.withLock { $0 } }

    public func status(of node: String) -> NodeHealthStatus? { statuses.withLock { $0[node] } }


    // MARK: - Committing transitions

    private func enqueue(_ change: Change) {
        pending.withLock { $0.append(change) }
        wake.yield()
    }

    /// Commits every pending change in one commit, each applied in order (its route changes and
    /// history rows, then its node event). The history rows carry the newest change's time: by
    /// then every change of the batch had happened.
    private func commitPending() async {
        let batch = pending.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        guard let newest = batch.map(\.at).max() else { return }
        do {
            try await committer.commit(now: newest) { context in
                for change in batch {
                    try context.setHealth(of: change.node, down: change.down, reason: change.reason)
                    context.publish(.node(HeraldEvent.Node(node: change.node, from: change.from.rawValue, to: change.to.rawValue,
                                                           reason: change.reason, transitions: change.transitions, at: change.at)))
                }
            }
        } catch {
            logger.error("cannot apply node health changes", metadata: ["nodes": "\(batch.map(\.node).joined(separator: ","))", "error": "\(error)"])
        }
    }

    // MARK: - Scheduling (loop thread)

    private func apply(_ nodes: [Node]) {
        loop.preconditionInEventLoop()
        guard !stopped else { return }
        var seen: Set<String> = []
        for node in nodes {
            guard let check = node.healthCheck, let address = node.healthCheckAddress else { continue }
            seen.insert(node.name)
            if let current = targets[node.name] {
                if current.check == check && current.address == address { continue }
                cancel(current)
                if current.health.state == .down { putBack(current, because: "health check changed") }
            }
            let target = Target(name: node.name, check: check, address: address)
            targets[node.name] = target
            publish(target)
            // The first check at a random point of the interval, so that nodes created together
            // do not all connect in the same millisecond.
            schedule(target, after: .milliseconds(Int.random(in: 0..<max(1, min(check.interval, 1000)))))
        }
        for (name, target) in targets where !seen.contains(name) {
            cancel(target)
            targets[name] = nil
            statuses.withLock { $0[name] = nil }
            if target.health.state == .down {
                putBack(target, because: nodes.contains { $0.name == name } ? "health check removed" : "deleted")
            }
        }
    }

    /// A down node whose check no longer applies serves again: routes must take it back.
    private func putBack(_ target: Target, because why: String) {
        enqueue(Change(node: target.name, down: false, reason: "node \(target.name) \(why): back in service",
                       from: .down, to: .unknown, transitions: target.health.transitions, at: Clock.nowMilliseconds()))
    }

    private func cancel(_ target: Target) {
        target.cancelled = true
        if let timer = target.timer { loop.cancelTimer(timer) }
        target.timer = nil
    }

    private func schedule(_ target: Target, after delay: Duration) {
        target.timer = loop.scheduleTimer(after: delay) { [self] in
            guard !target.cancelled else { return }
            schedule(target, after: .milliseconds(target.check.interval))
            guard !target.busy else { return }  // the last round is still queued or running
            target.busy = true
            waiting.append(target)
            pump()
        }
    }

    /// Starts waiting checks while slots are free.
    private func pump() {
        while inFlight < maxInFlight, waitingHead < waiting.count {
            let target = waiting[waitingHead]
            waitingHead += 1
            if waitingHead > 1024 && waitingHead * 2 > waiting.count {
                waiting.removeFirst(waitingHead)
                waitingHead = 0
            }
            guard !target.cancelled else { continue }
            run(target)
        }
    }

    private func run(_ target: Target) {
        inFlight += 1
        let started = EventLoop.now()
        let probe = HealthProbe(loop: loop, check: target.check, address: target.address) { [self] ok, detail in
            inFlight -= 1
            target.busy = false
            defer { pump() }
            guard !target.cancelled else { return }
            guard let ok else {
                // This host ran short (descriptors, buffers): nothing was learned about the node,
                // so nothing is recorded; the next interval checks again.
                localShortages += 1
                if localShortages == 1 || localShortages.isMultiple(of: 100) {
                    logger.warning("health check not run: this host is short of resources; the node's state is unchanged",
                                   metadata: ["node": "\(target.name)", "error": "\(detail)", "times": "\(localShortages)"])
                }
                return
            }
            let elapsed = Double(EventLoop.now() - started) / 1e6
            let result = HealthCheckResult(ok: ok, detail: detail, at: Clock.nowMilliseconds(), milliseconds: elapsed)
            if let transition = target.health.record(result) {
                let reason = NodeHealth.reason(node: target.name, target: target.check.target(target.address), transition)
                logger.notice("node health changed", metadata: ["node": "\(target.name)", "state": "\(transition.to.rawValue)", "reason": "\(reason)"])
                enqueue(Change(node: target.name, down: transition.to == .down, reason: reason, from: transition.from,
                               to: transition.to, transitions: target.health.transitions, at: result.at))
            }
            publish(target)
        }
        probe.start()
    }

    private func publish(_ target: Target) {
        let status = NodeHealthStatus(node: target.name, check: target.check, target: target.check.target(target.address), health: target.health)
        statuses.withLock { $0[target.name] = status }
    }
}

/// One check: a non-blocking connect (tcp), plus one HTTP/1.1 request whose status line must be
/// 2xx (http), bounded by the check's timeout. Loop-confined; reports exactly once: true or
/// false about the node, or nil when this host could not run the check (no descriptor left).
final class HealthProbe: ConnectionDelegate {
    let loop: EventLoop
    let check: HealthCheck
    let address: IPAddress
    private let completion: (Bool?, String) -> Void
    private var connection: Connection?
    private var timer: TimerHandle?
    private var done = false
    private var response: [UInt8] = []

    init(loop: EventLoop, check: HealthCheck, address: IPAddress, completion: @escaping (Bool?, String) -> Void) {
        self.loop = loop
        self.check = check
        self.address = address
        self.completion = completion
    }

    func start() {
        timer = loop.scheduleTimer(after: .milliseconds(check.timeout)) { [self] in
            timer = nil
            finish(false, "timed out after \(check.timeout) ms")
        }
        do {
            // Validation keeps the port in range; a hand-edited row must not trap the loop.
            connection = try Connection.connect(to: SocketAddress(address, port: UInt16(exactly: check.port) ?? 0), on: loop, delegate: self)
        } catch {
            finish(DescriptorBudget.isLocalShortage(error.errno) ? nil : false, Self.words(error.errno))
        }
    }

    /// "connection refused", "no route to host": strerror in lower case, as in a log line.
    static func words(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }

    func connectionDidConnect(_ connection: Connection) {
        switch check.kind {
        case .tcp:
            finish(true, "connected")
        case .http:
            let host = address.family == .ipv6 ? "[\(address)]:\(check.port)" : "\(address):\(check.port)"
            connection.write(Array("GET \(check.requestPath) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: herald-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8))
        }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        guard check.kind == .http else { return }
        response.append(contentsOf: bytes)
        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF.
        guard let end = response.firstIndex(of: 0x0A) else {
            if response.count > 4096 { finish(false, "no HTTP status line in 4096 bytes") }
            return
        }
        let line = String(decoding: response[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let code = Int(parts[1]) else {
            finish(false, "not an HTTP response")
            return
        }
        finish((200...299).contains(code), "HTTP \(code)")
    }

    func connectionDidReadEOF(_ connection: Connection) {
        finish(false, response.isEmpty ? "closed without an HTTP response" : "not an HTTP response")
    }

    func connection(_ connection: Connection, didCloseWith error: SocketError?) {
        self.connection = nil
        finish(false, error.map { Self.words($0.errno) } ?? "connection closed")
    }

    private func finish(_ ok: Bool?, _ detail: String) {
        guard !done else { return }
        done = true
        if let timer { loop.cancelTimer(timer) }
        timer = nil
        // Reset rather than FIN, as HAProxy does for its checks: the check's side would
        // otherwise hold a TIME_WAIT socket per check (200 nodes at 1 s: 12,000 of them).
        let open = connection
        connection = nil
        open?.close(reset: true)
        completion(ok, detail)
    }
}
