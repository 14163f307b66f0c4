import Glibc

/// How the process's file descriptors are shared. HTTP clients are the only users an outsider
/// controls, so they get what is left after a reserve that BGP sessions, BFD, health checks,
/// SQLite and the listeners always have: a flood of HTTP connections can never make a health
/// check fail with EMFILE (and a node look down) or a BGP connect fail.
public enum DescriptorBudget {
    /// Descriptors HTTP can never take: BGP sessions (one or two per peer), BFD sockets, up to
    /// 64 health checks at once, SQLite's files, the listeners, the event loop's own.
    public static let reserved = 256
    /// HTTP connections wanted when descriptors are plentiful.
    public static let wantedHTTPConnections = 1024

    /// Raises the soft RLIMIT_NOFILE to the hard limit (systemd's default soft limit is 1,024,
    /// its hard limit 524,288) and returns the soft limit now in force.
    @discardableResult
    public static func raiseSoftLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// HTTP connections allowed under a soft limit of `limit` descriptors: the wanted number, or
    /// what the reserve leaves (at least 16, so the API stays reachable on a tiny limit).
    public static func httpConnections(limit: Int) -> Int {
        max(16, min(wantedHTTPConnections, limit - reserved))
    }

    /// True for errors that say this host is short of a resource (descriptors, buffers,
    /// memory, local ports), not that the remote end failed.
    public static func isLocalShortage(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM || code == EADDRNOTAVAIL
    }
}
