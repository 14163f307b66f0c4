import Testing
@testable import HeraldCore
import HTTPServer
import IPAM
import Store

@Suite struct EventPublisherTests {
    /// A test event: a `change` whose reason and time are `n`.
    static func event(_ n: Int) -> HeraldEvent { .change(HeraldEvent.Change(reason: "n\(n)", requestId: nil, at: Int64(n))) }

    /// Regression (found by scripts/reliability/soak.sh): publishing while a subscriber's task is
    /// cancelled deadlocked — `publish` yielded while holding the bus lock (the yield needs the
    /// consumer task's status lock), and cancellation, holding that task lock, ran the stream's
    /// termination handler, which takes the bus lock. Thousands of subscribe/cancel rounds
    /// against a busy publisher must all finish.
    @Test(.heavy, .timeLimit(.minutes(1))) func cancellingSubscribersWhilePublishingNeverDeadlocks() async throws {
        let bus = EventPublisher(epoch: 1)
        let publishing = Task.detached {
            var n = 0
            while !Task.isCancelled {
                n += 1
                bus.publish(Self.event(n))
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
        let bus = EventPublisher(epoch: 7)
        let (resume, stream) = bus.subscribe(after: nil)
        #expect(resume == .replay([]))
        for n in 1...3 { bus.publish(Self.event(n)) }
        var iterator = stream.makeAsyncIterator()
        var seen: [EventPublisher.Event] = []
        for _ in 1...3 { if let event = await iterator.next() { seen.append(event) } }
        #expect(seen.map(\.id) == ["7.1", "7.2", "7.3"])
        #expect(seen.map(\.json) == [#"{"at":1,"reason":"n1"}"#, #"{"at":2,"reason":"n2"}"#, #"{"at":3,"reason":"n3"}"#])

        let (replay, _) = bus.subscribe(after: "7.1")
        #expect(replay == .replay(Array(seen.dropFirst())))
        #expect(bus.subscribe(after: "6.99").resume == .gap, "an id from an earlier process is a gap")
    }

    @Test func theReplayRingIsBounded() {
        let bus = EventPublisher(epoch: 1, replayCapacity: 3)
        for n in 1...10 { bus.publish(Self.event(n)) }
        #expect(bus.subscribe(after: "1.2").resume == .gap)
        guard case .replay(let events) = bus.subscribe(after: "1.8").resume else { Issue.record("expected a replay"); return }
        #expect(events.map(\.id) == ["1.9", "1.10"])
    }

    @Test func aSlowSubscriberIsDroppedNotBuffered() async {
        let bus = EventPublisher(epoch: 1, subscriberBuffer: 5)
        let (_, stream) = bus.subscribe(after: nil)
        for n in 1...20 { bus.publish(Self.event(n)) }
        var count = 0
        for await _ in stream { count += 1 }  // ends: the subscription was closed
        #expect(count == 5)
        #expect(bus.subscriberCount == 0)
    }

    @Test func commitsArePublishedAsChangeAndRouteEvents() async throws {
        let directory = ScratchDirectory()
        let bus = EventPublisher(epoch: 1)
        let committer = try Committer(store: try Store(path: directory.file("herald.db")), events: bus)
        let (_, stream) = bus.subscribe(after: nil)
        let spec = PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")])
        try await committer.mutate(requestID: "r1", now: 5, reason: "allocation web created") { db in
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
        EventsAPI(publisher: EventPublisher(epoch: 1)).register(on: router)
        let response = await router.respond(to: try HTTPRequest(.GET, "/v1/events"))
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"] == "text/event-stream")
    }
}
