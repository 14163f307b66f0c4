public import HTTPServer

/// `GET /v1/events`: Server-Sent Events of every committed change ("change") and every route it
/// moved ("route"), resumable with `Last-Event-ID` while the replay buffer remembers it.
public struct EventsAPI: Sendable {
    let publisher: EventPublisher

    public init(publisher: EventPublisher) { self.publisher = publisher }

    public func register(on router: Router) {
        router.get("/v1/events") { request, _ in
            let (resume, events) = publisher.subscribe(after: request.lastEventID)
            return .eventStream { writer in
                switch resume {
                case .gap:
                    // The client's last event is no longer remembered: tell it to reload.
                    try await writer.send(ServerSentEvent(event: HeraldEvent.Kind.resync.rawValue, data: #"{"reason":"missed events; reload state"}"#))
                case .replay(let missed):
                    for event in missed { try await writer.send(ServerSentEvent(id: event.id, event: event.kind, data: event.json)) }
                }
                for await event in events {
                    try await writer.send(ServerSentEvent(id: event.id, event: event.kind, data: event.json))
                }
            }
        }
    }
}
