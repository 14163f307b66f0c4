internal import Synchronization

/// Where the lowest free address of a pool block may start, so that handing out the next address
/// costs an index lookup instead of counting every taken address of the block (which made each
/// allocation slower than the last). The committer keeps one for the changes it runs; without
/// one every pick counts from the block's start.
///
/// Invariant: every address of the block below its hint is taken. A pick sets the hint to the
/// picked address itself, not the one after it, so a rolled-back pick is found again; anything
/// that can free an address (releasing, deleting, changing a pool's blocks) forgets every hint.
public final class LowestFreeHints: Sendable {
    private let hints = Mutex<[Int64: UInt128]>([:])

    public init() {}

    func get(block: Int64) -> UInt128? {
        hints.withLock { $0[block] }
    }

    func set(block: Int64, _ bits: UInt128) {
        hints.withLock { $0[block] = bits }
    }

    func forget() {
        hints.withLock { $0.removeAll() }
    }
}
