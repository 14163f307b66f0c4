public import Testing
import Synchronization

// Swift Testing runs every test of every target at once, in one process. On a machine with two
// cores, a load test (thousands of HTTP requests, fifty BGP sessions, wrk) starves whatever runs
// beside it, and a test that measures time — a hold timer, a detection time, a request timeout —
// then fails for reasons that are the machine's, not Herald's. The suite says which of its tests
// are which, and this gate keeps them apart, whatever parallelism the runner chooses:
//
// - `.heavy` tests run one at a time, and never beside a `.timingSensitive` test;
// - `.timingSensitive` tests run beside each other and beside everything else, but wait while a
//   heavy test runs.
//
// Tests with neither trait are not held back. The gate is one per process, so it spans every
// test target (they all link into one test binary). It lets the two kinds in by turns (a
// phase-fair readers–writer lock): when a heavy test ends, every timing-sensitive test waiting
// by then goes in together; one that arrives while a heavy test waits queues behind it; the
// next heavy test goes in once those are done. Neither kind can keep the other out for long,
// and the timing-sensitive tests share their turns instead of each taking one.

/// A test's kind for the process-wide gate. Apply it with `.heavy` or `.timingSensitive` to a
/// test or a suite (a suite passes it on to each of its tests).
public struct LoadGateTrait: TestTrait, SuiteTrait, TestScoping {
    public enum Kind: Int, Sendable, Comparable {
        case timingSensitive, heavy

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public let kind: Kind

    public var isRecursive: Bool { true }

    /// Around each test function as a whole: outside its time limit, which Swift Testing applies
    /// to each test case, so that waiting at the gate never counts against it; never around a
    /// suite, whose tests pass the gate one by one.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        guard !test.isSuite, testCase == nil else { return nil }
        // A test given both kinds (its suite's and its own) passes the gate once, as the stronger.
        let strongest = test.traits.compactMap { ($0 as? LoadGateTrait)?.kind }.max()
        return kind == strongest ? self : nil
    }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // The same kind given twice (by a suite and by the test) is one pass.
        if LoadGate.held != nil { return try await function() }
        await LoadGate.shared.enter(kind)
        defer { LoadGate.shared.leave(kind) }
        try await LoadGate.$held.withValue(kind) { try await function() }
    }
}

extension Trait where Self == LoadGateTrait {
    /// A load test: runs alone among the gated tests (see `LoadGateTrait`).
    public static var heavy: Self { LoadGateTrait(kind: .heavy) }
    /// A test whose assertions measure time: never runs beside a heavy test (see `LoadGateTrait`).
    public static var timingSensitive: Self { LoadGateTrait(kind: .timingSensitive) }
}

/// The gate itself. Waiting suspends the test's task: the cooperative pool has one thread per
/// core, and blocking one would starve every other test.
final class LoadGate: Sendable {
    static let shared = LoadGate()

    /// The kind the current task passed the gate as, if it did.
    @TaskLocal static var held: LoadGateTrait.Kind?

    private struct State {
        var heavyRunning = false
        var timingRunning = 0
        var heavyWaiting: [CheckedContinuation<Void, Never>] = []
        var timingWaiting: [CheckedContinuation<Void, Never>] = []

        /// The next heavy test, if one waits.
        mutating func nextHeavy() -> [CheckedContinuation<Void, Never>] {
            guard !heavyWaiting.isEmpty else { return [] }
            heavyRunning = true
            return [heavyWaiting.removeFirst()]
        }
    }

    private let state = Mutex(State())

    func enter(_ kind: LoadGateTrait.Kind) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                switch kind {
                case .heavy:
                    guard state.heavyRunning || state.timingRunning > 0 || !state.heavyWaiting.isEmpty else {
                        state.heavyRunning = true
                        return true
                    }
                    state.heavyWaiting.append(continuation)
                case .timingSensitive:
                    // Not past a waiting heavy test: that one goes first.
                    guard state.heavyRunning || !state.heavyWaiting.isEmpty else {
                        state.timingRunning += 1
                        return true
                    }
                    state.timingWaiting.append(continuation)
                }
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    func leave(_ kind: LoadGateTrait.Kind) {
        let admitted = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            switch kind {
            case .heavy:
                state.heavyRunning = false
                // The timing-sensitive tests that waited for this one go in together.
                guard state.timingWaiting.isEmpty else {
                    state.timingRunning += state.timingWaiting.count
                    defer { state.timingWaiting = [] }
                    return state.timingWaiting
                }
                return state.nextHeavy()
            case .timingSensitive:
                state.timingRunning -= 1
                // (Timing-sensitive tests wait only while a heavy test runs or waits.)
                return state.timingRunning == 0 ? state.nextHeavy() : []
            }
        }
        for continuation in admitted { continuation.resume() }
    }
}
