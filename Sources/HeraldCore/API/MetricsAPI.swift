public import HTTPServer

/// `GET /metrics` (no token needed, like `/healthz`): Prometheus text format.
public struct MetricsAPI: Sendable {
    let metrics: Metrics
    let services: APIServices

    public init(metrics: Metrics, services: APIServices) {
        self.metrics = metrics
        self.services = services
    }

    public func register(on router: Router) {
        router.get("/metrics") { _, _ in
            let snapshot = await services.bridge?.speaker.snapshot()
            let text = try metrics.render(speaker: snapshot, store: services.store, routes: services.committer.desiredRouteCount,
                                          health: services.health.map { Array($0.status.values) } ?? [], cluster: services.cluster?.current)
            return .text(text, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}
