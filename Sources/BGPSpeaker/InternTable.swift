/// Values that many prefixes share — a route's path set, the paths sent to a peer — stored once
/// and named by a small number, with a reference count per value.
///
/// A table of a million routes usually holds a handful of distinct path sets. Storing each
/// route's paths as its own array costs a heap object per prefix per table (the Loc-RIB and every
/// peer's Adj-RIB-Out), and comparing or grouping them hashes whole attribute lists per prefix.
/// With interning a prefix maps to a `UInt32`, equality is an integer comparison, and the memory
/// per prefix no longer depends on the attributes. IDs of released values are reused.
struct InternTable<Value: Hashable> {
    private var values: [Value?] = []
    private var references: [UInt32] = []
    private var ids: [Value: UInt32] = [:]
    private var free: [UInt32] = []

    /// Distinct values held.
    var count: Int { ids.count }

    /// The ID of `value`, stored if new, with one more reference.
    mutating func retain(_ value: Value) -> UInt32 {
        if let id = ids[value] {
            references[Int(id)] += 1
            return id
        }
        let id: UInt32
        if let reused = free.popLast() {
            id = reused
            values[Int(id)] = value
            references[Int(id)] = 1
        } else {
            id = UInt32(values.count)
            values.append(value)
            references.append(1)
        }
        ids[value] = id
        return id
    }

    /// One more reference to a held value.
    mutating func retain(id: UInt32) {
        references[Int(id)] += 1
    }

    /// One reference less; returns the value when that was the last one (it is then dropped and
    /// its ID may name another value later).
    @discardableResult
    mutating func release(_ id: UInt32) -> Value? {
        let index = Int(id)
        precondition(references[index] > 0, "released an interned value that is not held")
        references[index] -= 1
        guard references[index] == 0, let value = values[index] else { return nil }
        ids[value] = nil
        values[index] = nil
        free.append(id)
        return value
    }

    subscript(id: UInt32) -> Value {
        guard let value = values[Int(id)] else { preconditionFailure("interned value \(id) is not held") }
        return value
    }

    /// References held on `id` (0 when it names nothing): for tests.
    func referenceCount(_ id: UInt32) -> Int {
        Int(id) < references.count ? Int(references[Int(id)]) : 0
    }
}

extension InternTable: Sendable where Value: Sendable {}
