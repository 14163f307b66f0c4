public import BGPSpeaker
public import Logging
internal import Store

/// Turns the speaker's session events into history (`peer_events`, through the committer like
/// every write) and `peer` events on `/v1/events`.
public struct SessionRecorder: Sendable {
    let committer: Committer
    let logger: Logger

    public init(committer: Committer, logger: Logger) {
        self.committer = committer
        self.logger = logger
    }

    /// Records every event of `stream` until it ends (the speaker's shutdown ends it after the
    /// last session went down, so the final "down" events are written before the store closes).
    public func record(_ stream: AsyncStream<SpeakerEvent>) async {
        for await event in stream {
            switch event {
            case let .peerStateChanged(peer, from, to, reason, notification):
                // Every step goes out live; history keeps the ones that matter.
                committer.events?.publish(.peer(HeraldEvent.Peer(peer: peer, from: from.rawValue, to: to.rawValue, reason: reason)))
                let kind: PeerEvent.Kind
                if to == .established {
                    kind = .established
                } else if from == .established || (to == .idle && reason != nil) {
                    kind = .down
                } else {
                    continue  // Connect/Active/OpenSent steps are live state, not history
                }
                let recorded = notification.map {
                    RecordedNotification(code: $0.code, subcode: $0.subcode, text: $0.text ?? $0.name,
                                         direction: $0.direction == .sent ? .sent : .received)
                }
                let why = reason ?? (to == .established ? "session established" : "session closed")
                await append(peer) { db, now in
                    try PeerEvents.append(db, peer: peer, kind: kind, from: from.rawValue, to: to.rawValue, reason: why,
                                          notification: recorded, now: now)
                }
            case let .maxPrefixExceeded(peer, count, limit):
                await append(peer) { db, now in
                    try PeerEvents.append(db, peer: peer, kind: .maxPrefix, reason: "peer sent \(count) prefixes, over the limit of \(limit)", now: now)
                }
            case let .bfdStateChanged(peer, from, to, diagnostic):
                // BFD going up or down is history too ("BFD up", "BFD down: control detection time
                // expired"); Init is a step of the handshake, not an event.
                guard to != "init" else { continue }
                let reason = to == "up" ? "BFD up" : "BFD \(to == "admin_down" ? "admin down" : to): \(diagnostic)"
                await append(peer) { db, now in
                    try PeerEvents.append(db, peer: peer, kind: .state, from: "bfd \(from)", to: "bfd \(to)", reason: reason, now: now)
                }
            default:
                continue
            }
        }
    }

    private func append(_ peer: String, _ write: @escaping @Sendable (Database, Int64) throws -> Void) async {
        do {
            try await committer.commit { context in try write(context.db, context.now) }
        } catch {
            logger.error("cannot record a session event", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }
}
