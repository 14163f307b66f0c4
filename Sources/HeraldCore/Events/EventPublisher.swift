internal import Synchronization

/// The one publisher of `/v1/events`: every event (`HeraldEvent`, the closed list of kinds) goes
/// out through here, to subscribers, with a bounded replay buffer so a client
/// that reconnects with `Last-Event-ID` misses nothing that is still remembered.
///
/// Bounded everywhere: the replay ring holds `replayCapacity` events; each subscriber may lag
/// `subscriberBuffer` events behind, and one that falls further is disconnected (its stream
/// ends); it reconnects and resumes from the ring, or is told to resynchronise.
public final class EventPublisher: Sendable {
    public struct Event: Sendable, Equatable {
        /// "<process start ms>.<sequence>": unique across restarts, ordered within one.
        public let id: String
        public let kind: String
        /// The event's data, already JSON.
        public let json: String
    }

    public enum Resume: Sendable, Equatable {
        /// Events after the given id (possibly none).
        case replay([Event])
        /// The id is unknown or too old: the client should reload state, then follow the stream.
        case gap
    }

    private struct State {
        var sequence: UInt64 = 0
        var ring: [Event] = []
        var subscribers: [UInt64: AsyncStream<Event>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let epoch: Int64
    private let replayCapacity: Int
    private let subscriberBuffer: Int
    private let state = Mutex(State())
    /// Serialises publishers while they yield (see `publish`).
    private let delivery = Mutex(())

    public init(epoch: Int64, replayCapacity: Int = 10_000, subscriberBuffer: Int = 1_000) {
        self.epoch = epoch
        self.replayCapacity = replayCapacity
        self.subscriberBuffer = subscriberBuffer
    }

    /// Publishes events, in order, to every subscriber and the replay ring.
    public func publish(_ events: [HeraldEvent]) {
        for event in events { publish(event) }
    }

    /// Publishes one event to every subscriber and the replay ring.
    public func publish(_ event: HeraldEvent) {
        // Payloads are plain values: encoding cannot fail.
        guard let json = try? event.json() else { return }
        publish(kind: event.kind.rawValue, json: json)
    }

    private func publish(kind: String, json: String) {
        // Lock order: `delivery`, then `state`; never the reverse. Yielding must happen outside
        // `state`: a yield resumes the consumer task and takes that task's status lock, while a
        // task being cancelled holds its status lock and runs the stream's termination handler,
        // which takes `state` — yielding under `state` deadlocked the two (found by the soak).
        // `delivery` keeps concurrent publishers' events in sequence order for every subscriber.
        delivery.withLock { _ in
            let (event, targets) = state.withLock { state -> (Event, [(UInt64, AsyncStream<Event>.Continuation)]) in
                state.sequence += 1
                let event = Event(id: "\(epoch).\(state.sequence)", kind: kind, json: json)
                state.ring.append(event)
                // Trim in steps of a quarter of the capacity: removing one element per publish moves
                // the whole ring each time, which a bulk change of a million routes would feel.
                if state.ring.count > replayCapacity + replayCapacity / 4 { state.ring.removeFirst(state.ring.count - replayCapacity) }
                return (event, Array(state.subscribers))
            }
            var tooSlow: [(UInt64, AsyncStream<Event>.Continuation)] = []
            for (key, continuation) in targets {
                if case .dropped = continuation.yield(event) { tooSlow.append((key, continuation)) }
            }
            guard !tooSlow.isEmpty else { return }
            state.withLock { state in for (key, _) in tooSlow { state.subscribers[key] = nil } }
            // Too slow: end its stream rather than buffer without bound (the termination handler
            // takes `state`, which is not held here).
            for (_, continuation) in tooSlow { continuation.finish() }
        }
    }

    /// Subscribes, atomically with computing what to replay after `lastEventID`.
    public func subscribe(after lastEventID: String?) -> (resume: Resume, events: AsyncStream<Event>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(subscriberBuffer))
        let resume: Resume = state.withLock { state in
            let key = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[key] = continuation
            continuation.onTermination = { [weak self] _ in self?.state.withLock { $0.subscribers[key] = nil } }
            guard let lastEventID else { return .replay([]) }
            guard let index = state.ring.firstIndex(where: { $0.id == lastEventID }) else { return .gap }
            return .replay(Array(state.ring[(index + 1)...]))
        }
        return (resume, stream)
    }

    /// Ends every subscription (at shutdown).
    public func finish() {
        let all = state.withLock { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for continuation in all { continuation.finish() }
    }

    var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}
