import TestSupport
import Foundation
@testable import HeraldCore
import IP
import IPAM
import Store
import Testing

/// The allocator's hints must never change which address is handed out: after any sequence of
/// creates, deletes, specific requests, pool changes and rolled-back picks, a new allocation gets
/// exactly the lowest free address of a model kept beside it.
@Suite struct LowestFreeHintTests {
    @Test(arguments: [7, 8, 9] as [UInt64])
    func hintsGiveTheLowestFreeAddressLikeAModel(seed: UInt64) throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        var rng = SeededGenerator(seed: seed)
        let base: UInt32 = 0xC000_0200  // 192.0.2.0/26: 192.0.2.1 … 192.0.2.62 are usable
        func address(_ offset: Int) -> IPAddress { .v4(IPv4Address(base + UInt32(offset))) }
        try store.write { db in _ = try Pools.put(db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/26")]), now: 1) }
        var held: [String: Int] = [:]  // allocation → offset
        var next = 0
        for step in 0..<400 {
            let lowest = (1...62).first { offset in !held.values.contains(offset) }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...4:
                next += 1
                let name = "a\(next)"
                let change = try? store.write { db in try Allocations.put(db, name: name, spec: AllocationSpec(pool: "lb"), now: 1) }
                if let lowest {
                    #expect(change?.allocation.addresses == [address(lowest)], "step \(step): expected the lowest free \(address(lowest))")
                    held[name] = lowest
                } else {
                    #expect(change == nil, "step \(step): the pool is full")
                }
            case 5, 6:
                if let name = held.keys.sorted().randomElement(using: &rng) {
                    try store.write { db in _ = try Allocations.delete(db, name: name) }
                    held[name] = nil
                }
            case 7:
                // A specific address, possibly above the lowest free.
                let offset = Int.random(in: 1...62, using: &rng)
                guard !held.values.contains(offset) else { continue }
                next += 1
                let name = "a\(next)"
                _ = try store.write { db in try Allocations.put(db, name: name, spec: AllocationSpec(pool: "lb", addresses: [address(offset)]), now: 1) }
                held[name] = offset
            case 8:
                // A pick in a transaction that rolls back: the address stays free.
                guard lowest != nil else { continue }
                struct Abort: Error {}
                #expect(throws: Abort.self) {
                    try store.write { db -> Void in
                        _ = try Allocations.put(db, name: "doomed", spec: AllocationSpec(pool: "lb"), now: 1)
                        throw Abort()
                    }
                }
            default:
                // Re-PUT the same pool (blocks unchanged): hints are forgotten, nothing moves.
                try store.write { db in _ = try Pools.put(db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/26")]), now: 2) }
            }
        }
        #expect(held.count > 20)
    }
}
