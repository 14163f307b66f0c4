internal import Synchronization

/// The node health monitor that runs now: one for the process in the single-file default; in
/// cluster mode one on the leader only, replaced whenever leadership moves.
public final class HealthChecks: Sendable {
    private let monitor: Mutex<NodeHealthMonitor?>

    public init(_ monitor: NodeHealthMonitor? = nil) {
        self.monitor = Mutex(monitor)
    }

    public var current: NodeHealthMonitor? { monitor.withLock { $0 } }

    public func set(_ monitor: NodeHealthMonitor?) {
        self.monitor.withLock { $0 = monitor }
    }
}
