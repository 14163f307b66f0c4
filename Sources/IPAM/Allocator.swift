public import IP

/// A block's usable addresses, identified the way the caller stores blocks.
public struct UsableBlock<BlockID: Hashable & Sendable>: Sendable {
    public let id: BlockID
    public let range: IPRange

    public init(id: BlockID, range: IPRange) {
        self.id = id
        self.range = range
    }
}

/// Picks addresses for allocations. Pure: the caller supplies the blocks and what is taken,
/// typically read inside the same write transaction that then stores the result.
public enum Allocator {
    /// The lowest free address of `family` across `blocks` (in the order given), or nil when
    /// the pool is exhausted. `taken(range)` returns the taken addresses inside a range,
    /// ascending; it is called once per block of the family until one has room, so the cost is
    /// proportional to the addresses in use, never to the size of the pool (an IPv6 /64 is fine).
    public static func lowestFree<BlockID>(
        family: IPFamily,
        in blocks: [UsableBlock<BlockID>],
        taken: (IPRange) throws -> [IPAddress]
    ) rethrows -> (block: BlockID, address: IPAddress)? {
        for block in blocks where block.range.family == family {
            var candidate: IPAddress? = block.range.lower
            for used in try taken(block.range) {
                guard let current = candidate else { break }
                if used < current { continue }  // defensive: duplicates or out-of-order input
                if used > current { break }     // a gap: `current` is free
                candidate = current == block.range.upper ? nil : current.next
            }
            if let candidate, block.range.contains(candidate) {
                return (block.id, candidate)
            }
        }
        return nil
    }

    /// The block that holds `address`, or nil when the address is outside every usable block.
    public static func block<BlockID>(containing address: IPAddress, in blocks: [UsableBlock<BlockID>]) -> BlockID? {
        blocks.first { $0.range.contains(address) }?.id
    }

    /// How many addresses the blocks offer in total, saturating at `UInt128.max`.
    public static func size<BlockID>(of blocks: [UsableBlock<BlockID>]) -> UInt128 {
        blocks.reduce(UInt128(0)) { total, block in
            let (sum, overflow) = total.addingReportingOverflow(block.range.addressCount)
            return overflow ? .max : sum
        }
    }
}
