internal import HTTPServer
internal import BGPSpeaker
internal import IP

/// Pages of a peer's advertised and received routes, in prefix order, built off the event loop:
/// the speaker hands over a copy-on-write view of the table (`RIBView`), its prefixes are sorted
/// once per version of the table on a dispatch thread, and a page is a binary search plus
/// `limit` lookups. So a walk through a million advertised routes never stalls the loop that
/// runs the BGP sessions and BFD.
struct RIBPages: Sendable {
    /// `prefix`: only prefixes inside it (an address means its host prefix).
    static let parameters: Set<String> = PageQuery.parameters.union(["prefix"])

    private let indexes = SortedPrefixCache<String, RIBIndex>()

    /// A page of `view`. `limit` counts prefixes: every path of a prefix (ADD-PATH) is on the
    /// same page.
    func page(of view: RIBView, received: Bool, _ request: HTTPRequest) async throws -> HTTPResponse {
        let page = try PageQuery(request)
        let after = try page.afterPrefix()
        let within = try OriginatedRoutes.Filter(prefixOnly: request).within
        let index = await indexes.index(for: "\(view.peer) \(received ? "received" : "advertised")", version: view.version) { view.index() }
        let candidates = index.prefixes.prefixes(after: after, within: within).lazy
            .map { (prefix: $0, entries: view.entries(for: $0, in: index)) }
            .filter { !$0.entries.isEmpty }
        let (found, nextKey) = page.take(candidates) { $0.prefix.description }
        let routes = found.flatMap { $0.entries.map(PeersAPI.RIBEntryBody.init) }
        return try page.response(PeersAPI.RIBList(peer: view.peer, routes: routes, nextCursor: nextKey.map(PageQuery.encode)),
                                 nextKey: nextKey, request: request)
    }
}
