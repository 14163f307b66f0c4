public import BGPSpeaker
internal import IP
public import Logging

/// Makes the BGP speaker follow what the committer commits: at start the whole committed state
/// (every peer, then every route), then each committed change in commit order. Every peer and
/// settings change was checked against the same configuration rules before it committed
/// (`SpeakerConfiguration`), so the speaker applies it as it is.
public final class SpeakerBridge: Sendable {
    public let speaker: Speaker
    let committer: Committer
    let logger: Logger

    public init(speaker: Speaker, committer: Committer, logger: Logger) {
        self.speaker = speaker
        self.committer = committer
        self.logger = logger
    }

    /// Subscribes to the committer, gives the speaker every committed peer and route, starts
    /// listening, and returns the task that goes on following changes until the committer
    /// finishes.
    public func start() async throws -> Task<Void, Never> {
        let snapshotApplied = Reply<Void>()
        let changes = committer.subscribe()
        let following = Task { await follow(changes, snapshotApplied: snapshotApplied) }
        await snapshotApplied.value
        try await speaker.start()
        return following
    }

    /// Hands every committed change to the speaker, in commit order, until the stream ends.
    func follow(_ changes: CommittedChanges, snapshotApplied: Reply<Void>? = nil) async {
        for await change in changes {
            switch change {
            case let .snapshot(configuration, routes, _):
                for peer in configuration.peers.values.sorted(by: { $0.name < $1.name }) { await apply(.add(peer)) }
                await apply(routes)
                snapshotApplied?.fulfil(())
            case .routes(let diff):
                await apply(diff)
            case let .peer(change, reply):
                await apply(change)
                reply?.fulfil(())
            case let .speakerSettings(settings, reply):
                let change = (try? await speaker.updateSettings(settings)) ?? SettingsChange()
                reply?.fulfil(change)
            case .nodes:
                continue
            }
        }
        snapshotApplied?.fulfil(())
    }

    private func apply(_ change: SpeakerConfiguration.PeerChange) async {
        do {
            try await speaker.apply(change)
        } catch {
            // The committer ran the same rules on the same configuration before COMMIT: this is
            // a defect, and the speaker no longer matches the database until a restart.
            logger.critical("the speaker refused a committed peer change", metadata: ["peer": "\(change.name)", "error": "\(error)"])
        }
    }

    /// Routes per hand-over to the speaker (see `apply(_: RouteDiff)`).
    static let slice = 5_000

    private func apply(_ diff: RouteDiff) async {
        guard !diff.isEmpty else { return }
        // In slices: each `apply` runs on the event loop, which also sends keepalives and serves
        // HTTP; a bulk load of a million routes handed over at once would hold it for seconds.
        // Between slices the loop runs its timers and sockets.
        let announce = diff.announced + diff.updated, withdraw = diff.withdrawn.map(\.prefix)
        // Routes sharing a shape share their converted paths too (the diff keeps the shapes
        // alive, so their identities stay unique while it is handed over).
        var converted: [ObjectIdentifier: [Path]] = [:]
        func route(_ desired: DesiredRoute) -> Route {
            let key = ObjectIdentifier(desired.body.shape)
            if let paths = converted[key] { return Route(prefix: desired.prefix, paths: paths) }
            let made = SpeakerMapping.route(desired)
            converted[key] = made.paths
            return made
        }
        if announce.count > Self.slice {
            let ipv6 = diff.announced.reduce(0) { $0 + ($1.prefix.family == .ipv6 ? 1 : 0) }
            await speaker.reserveCapacity(additionalIPv4: diff.announced.count - ipv6, additionalIPv6: ipv6)
        }
        for start in stride(from: 0, to: max(announce.count, withdraw.count), by: Self.slice) {
            let announcing = start < announce.count ? announce[start..<min(start + Self.slice, announce.count)].map(route) : []
            let withdrawing = start < withdraw.count ? Array(withdraw[start..<min(start + Self.slice, withdraw.count)]) : []
            await speaker.apply(announce: announcing, withdraw: withdrawing)
        }
        if announce.count + withdraw.count >= Committer.bulkChange { ProcessMemory.returnFreeHeapToKernel() }
    }
}
