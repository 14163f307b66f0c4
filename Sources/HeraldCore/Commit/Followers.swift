import Foundation
internal import Synchronization

/// One follower of the committer (the speaker bridge, the node health checks): its stream, and
/// how many changes it has been handed but not yet taken. The committer waits before its next
/// batch while a follower is more than its `backlogLimit` changes behind, so a follower that falls
/// behind (a speaker busy with a bulk load) slows the writers down instead of the queue growing
/// without bound.
final class Follower: Sendable {
    /// The longest the committer holds a batch for a follower: a follower that stopped for good
    /// (a defect) must not stop every write, only slow it.
    static let longestWait: Duration = .seconds(10)

    let continuation: AsyncStream<CommittedChange>.Continuation
    /// Changes this follower may have waiting before the committer holds the next batch
    /// (`subscribe`'s default, 1,024, is far more than normal operation leaves: a follower takes
    /// each change in microseconds to milliseconds, and a bulk change is one change).
    let backlogLimit: Int
    private let backlog = Atomic<Int>(0)
    private let gone = Atomic<Bool>(false)

    init(_ continuation: AsyncStream<CommittedChange>.Continuation, backlogLimit: Int) {
        self.continuation = continuation
        self.backlogLimit = backlogLimit
    }

    var isGone: Bool { gone.load(ordering: .relaxed) }
    var waiting: Int { backlog.load(ordering: .relaxed) }
    var isBehind: Bool { !isGone && waiting > backlogLimit }

    func yield(_ change: CommittedChange) {
        backlog.add(1, ordering: .relaxed)
        continuation.yield(change)
    }

    func taken() { backlog.subtract(1, ordering: .relaxed) }
    func stopped() { gone.store(true, ordering: .relaxed) }
    func finish() { continuation.finish() }

    /// Waits (on the committer thread) while any of `followers` is behind, at most `longestWait`.
    static func waitWhileBehind(_ followers: [Follower], finished: () -> Bool) {
        let deadline = ContinuousClock.now + longestWait
        while followers.contains(where: \.isBehind), ContinuousClock.now < deadline, !finished() {
            usleep(500)
        }
    }
}

/// The committed changes as one follower sees them (`Committer.subscribe()`): in commit order,
/// each counted as taken when the follower asks for the next one.
public struct CommittedChanges: AsyncSequence, Sendable {
    public typealias Element = CommittedChange
    let stream: AsyncStream<CommittedChange>
    let follower: Follower

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<CommittedChange>.AsyncIterator
        let follower: Follower
        var holding = false

        public mutating func next() async -> CommittedChange? {
            if holding { follower.taken() }
            let change = await base.next()
            holding = change != nil
            return change
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), follower: follower)
    }
}
