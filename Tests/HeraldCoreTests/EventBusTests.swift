import Testing
@testable import HeraldCore
import HTTPServer
import IPAM
import Store

@Suite struct EventBusTests {
    struct Payload: Encodable { let n: Int }

    /// Regression (found by scripts/reliability/soak.sh): publishing while a subscriber's task is
    /// cancelled deadlocked — `publish` yielded while holding the bus lock (the yield needs the
    /// consumer task's status lock), and cancellation, holding that task lock, ran the stream's
    /// termination handler, which takes the bus lock. Thousands of subscribe/cancel rounds
    /// against a busy publisher must all finish.
    @Test(.heavy, .timeLimit(.minutes(1))) func cancellingSubscribersWhilePublishingNeverDeadlocks() async throws {
        let bus = EventBus(epoch: 1)
        let publishing = Task.detached {
            var n = 0
            while !Task.isCancelled {
                n += 1
                bus.publish(kind: "test", payload: Payload(n: n))
            }
        }
        // Eight subscribers at a time, each cancelled while it waits for the next event.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<1_500 {
                        let (_, stream) = bus.subscribe(after: nil)
                        let consumer = Task.detached {
                            var iterator = stream.makeAsyncIterator()
                            _ = await iterator.next()
                            while await iterator.next() != nil {}
                        }
                        await Task.yield()
                        consumer.cancel()
                        await consumer.value
                    }
                }
            }
        }
        publishing.cancel()
        await publishing.value
        #expect(bus.subscriberCount == 0)
    }

    @Test func subscribersGetEventsInOrderAndCanResume() async throws {
        let bus = EventBus(epoch: 7)
        let (resume, stream) = bus.subscribe(after: nil)
        #expect(resume == .replay([]))
        for n in 1...3 { bus.publish(kind: "test", payload: Payload(n: n)) }
        var iterator = stream.makeAsyncIterator()
        var seen: [EventBus.Event] = []
        for _ in 1...3 { if let event = await iterator.next() { seen.append(event) } }
        #expect(seen.map(\.id) == ["7.1", "7.2", "7.3"])
        #expect(seen.map(\.json) == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])

        let (replay, _) = bus.subscribe(after: "7.1")
        #expect(replay == .replay(Array(seen.dropFirst())))
        #expect(bus.subscribe(after: "6.99").resume == .gap, "an id from an earlier process is a gap")
    }

    @Test func theReplayRingIsBounded() {
        let bus = EventBus(epoch: 1, replayCapacity: 3)
        for n in 1...10 { bus.publish(kind: "test", payload: Payload(n: n)) }
        #expect(bus.subscribe(after: "1.2").resume == .gap)
        guard case .replay(let events) = bus.subscribe(after: "1.8").resume else { Issue.record("expected a replay"); return }
        #expect(events.map(\.id) == ["1.9", "1.10"])
    }

    @Test func aSlowSubscriberIsDroppedNotBuffered() async {
        let bus = EventBus(epoch: 1, subscriberBuffer: 5)
        let (_, stream) = bus.subscribe(after: nil)
        for n in 1...20 { bus.publish(kind: "test", payload: Payload(n: n)) }
        var count = 0
        for await _ in stream { count += 1 }  // ends: the subscription was closed
        #expect(count == 5)
        #expect(bus.subscriberCount == 0)
    }

    @Test func commitsArePublishedAsChangeAndRouteEvents() async throws {
        let directory = ScratchDirectory()
        let bus = EventBus(epoch: 1)
        let reconciler = try Reconciler(store: try Store(path: directory.file("herald.db")), events: bus)
        let (_, stream) = bus.subscribe(after: nil)
        let spec = PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")])
        try await reconciler.mutate(requestID: "r1", now: 5, reason: { (_: AllocationChange) in "allocation web created" }) { db in
            _ = try Pools.put(db, name: "lb", spec: spec, now: 5)
            return try Allocations.put(db, name: "web", spec: AllocationSpec(pool: "lb"), now: 5)
        }
        var iterator = stream.makeAsyncIterator()
        let change = await iterator.next()
        let route = await iterator.next()
        #expect(change?.kind == "change" && change?.json == #"{"at":5,"reason":"allocation web created","request_id":"r1"}"#)
        #expect(route?.kind == "route" && route?.json.contains(#""action":"announce""#) == true && route?.json.contains(#""prefix":"192.0.2.1/32""#) == true)
    }

    @Test func theEndpointIsAnEventStream() async throws {
        let router = Router()
        EventsAPI(bus: EventBus(epoch: 1)).register(on: router)
        let response = await router.respond(to: try HTTPRequest(.GET, "/v1/events"))
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"] == "text/event-stream")
    }
}
