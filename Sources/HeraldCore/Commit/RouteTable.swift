internal import IP
internal import Dispatch
internal import Synchronization

/// The committed routes, by prefix. (The value leaves out the prefix, which is the key: at a
/// million routes every byte per entry is a megabyte.)
typealias RouteTable = PrefixMap<DesiredRoute.Body>

/// The committed table with the uncommitted changes of earlier jobs in the same batch (and of
/// the job itself) laid over it. Reading through it, rather than copying the table per job,
/// keeps a change's cost proportional to what it touches, not to the size of the table (a
/// million static routes must not make each allocation PUT copy a million entries).
struct TableView {
    let committed: RouteTable
    /// Earlier jobs of the batch.
    let batch: [IPPrefix: DesiredRoute?]
    /// This job's own changes so far.
    var job: [IPPrefix: DesiredRoute?] = [:]

    var isEmpty: Bool { committed.isEmpty && batch.isEmpty && job.isEmpty }

    subscript(prefix: IPPrefix) -> DesiredRoute? {
        if let pending = job[prefix] { return pending }
        if let pending = batch[prefix] { return pending }
        return committed[prefix].map { DesiredRoute(prefix: prefix, body: $0) }
    }

    /// The whole table (for a full re-derive, which is O(table) anyway).
    func materialize() -> [IPPrefix: DesiredRoute] {
        var all = committed.routes(room: batch.count + job.count)
        for (prefix, route) in batch { all[prefix] = route }
        for (prefix, route) in job { all[prefix] = route }
        return all
    }
}

extension PrefixMap where Value == DesiredRoute.Body {
    /// The full routes (each rebuilt with its prefix), with room for `room` more.
    func routes(room: Int = 0) -> [IPPrefix: DesiredRoute] {
        var routes: [IPPrefix: DesiredRoute] = [:]
        routes.reserveCapacity(count + room)
        for (prefix, body) in self { routes[prefix] = DesiredRoute(prefix: prefix, body: body) }
        return routes
    }

    /// Lays committed changes over the table (nil: no longer announced), grown once up front
    /// rather than doubling through a bulk load.
    mutating func apply(_ changes: [IPPrefix: DesiredRoute?]) {
        reserveCapacity(adding: changes.keys)
        for (prefix, route) in changes { self[prefix] = route?.body }
    }
}

/// Work started on another thread now, its result taken later (`result()` waits for it): a bulk
/// change builds its dictionaries on the second core while the committer writes to SQLite.
final class Aside<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () -> Value) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let result = work()
            value.withLock { $0 = result }
            done.signal()
        }
    }

    /// Waits for the work, then hands its result over (once).
    func result() -> Value {
        done.wait()
        return value.withLock { stored in
            defer { stored = nil }
            return stored!
        }
    }
}
