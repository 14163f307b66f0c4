import Foundation
import Synchronization
import Testing

/// What a restart of `herald serve` looked like from the router's side.
struct SampledRestart<Sample: Sendable> {
    /// The process that runs now.
    let herald: HeraldProcess
    /// From the stop until the peer was Established again with BFD Up and every route sent.
    let back: Duration
    /// One sample every 100 ms from just before the stop until 2 s after `back` (the router drops
    /// its stale copies once End-of-RIB arrives).
    let samples: [Sample]
}

/// Stops `herald` (SIGTERM, or SIGKILL with `kill9`), waits `pause`, starts it again with
/// `restart`, and waits until its peer `peer` is back with BFD Up and `routes` routes sent —
/// calling `sample` every 100 ms throughout. The cookbook restart tests share it and differ only
/// in what they count at the router.
func restartWhileSampling<Sample: Sendable>(
    _ herald: HeraldProcess, kill9: Bool, pause: Duration = .zero, peer: String, routes: Int,
    restart: () async throws -> HeraldProcess, sample: @escaping @Sendable () -> Sample
) async throws -> SampledRestart<Sample> {
    let samples = Mutex<[Sample]>([])
    let sampling = Mutex(true)
    let sampler = Task.detached {
        var next = ContinuousClock.now
        while sampling.withLock({ $0 }) {
            let taken = sample()
            samples.withLock { $0.append(taken) }
            next = max(next + .milliseconds(100), .now)
            try? await Task.sleep(until: next)
        }
    }
    try await Task.sleep(for: .milliseconds(300))
    let started = ContinuousClock.now
    if kill9 { herald.kill9() } else { #expect(herald.stop() == 0) }
    try await Task.sleep(for: pause)
    let restarted = try await restart()
    let back = try await eventually("the session back with BFD Up", timeout: .seconds(60)) { () -> Duration? in
        let view = try restarted.must("GET", "/v1/peers/\(peer)", status: 200).json
        let bfd = ((view["bfd"] as? [String: Any])?["session"] as? [String: Any])?["state"] as? String
        let sent = (view["counters"] as? [String: Any])?["prefixes_advertised"] as? Int
        return view["state"] as? String == "established" && bfd == "up" && sent == routes ? ContinuousClock.now - started : nil
    }
    try await Task.sleep(for: .seconds(2))
    sampling.withLock { $0 = false }
    await sampler.value
    return SampledRestart(herald: restarted, back: back, samples: samples.withLock { $0 })
}
