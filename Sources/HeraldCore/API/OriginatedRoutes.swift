internal import HTTPServer
internal import IP
internal import JSON

/// `GET /v1/routes` (a page of the routes Herald originates, in prefix order) and
/// `GET /v1/routes:export` (all of them as NDJSON, streamed).
///
/// Neither builds the table: the committed table is taken copy-on-write (no copy unless a
/// commit lands during the page), its prefixes are sorted once per version of the table
/// (`SortedPrefixCache`, off the cooperative pool), and a page is a binary search plus `limit`
/// lookups. Routes are written by hand, each shape's paths and attributes encoded once per page,
/// so a page of 1,000 costs about as much as one JSONEncoder call does for a handful.
struct OriginatedRoutes: Sendable {
    let committer: Committer
    let index = SortedPrefixCache<String, SortedPrefixes>()

    /// Which routes a request asks for.
    struct Filter {
        /// Only prefixes inside this one (`prefix=`; an address means its host prefix).
        var within: IPPrefix?
        /// Only routes with a path through this node (`node=`).
        var node: String?

        static let parameters: Set<String> = ["prefix", "node"]

        init(_ request: HTTPRequest) throws {
            try self.init(prefixOnly: request)
            node = request.query["node"]
        }

        /// The `prefix` filter alone (the peers' route views take no other).
        init(prefixOnly request: HTTPRequest) throws {
            within = try APIParse.query(request, "prefix") { text -> IPPrefix in
                if let prefix = IPPrefix(text) { return prefix }
                if let address = IPAddress(text) { return IPPrefix(host: address) }
                throw ValidationError(field: "prefix", "\"\(text)\" is not a prefix or an address", status: .badRequest)
            }
        }

        func matches(_ route: DesiredRoute) -> Bool {
            guard let node else { return true }
            return route.paths.contains { $0.node == node }
        }
    }

    /// The sorted prefixes of the committed table, and the table itself.
    private func sorted() async -> (table: RouteTable, prefixes: SortedPrefixes) {
        let (table, version) = committer.routeTable
        let prefixes = await index.index(for: "routes", version: version) { SortedPrefixes(table) }
        return (table, prefixes)
    }

    func page(_ request: HTTPRequest) async throws -> HTTPResponse {
        let page = try PageQuery(request)
        let filter = try Filter(request)
        let after = try page.afterPrefix()
        let (table, prefixes) = await sorted()
        let candidates = prefixes.prefixes(after: after, within: filter.within).lazy
            .compactMap { prefix in table[prefix].map { DesiredRoute(prefix: prefix, body: $0) } }
            .filter(filter.matches)
        let (routes, nextKey) = page.take(candidates) { $0.prefix.description }
        var writer = RouteWriter()
        var body = Array("{".utf8)
        if let nextKey { body += Array("\"next_cursor\":".utf8) + JSONObjectWriter.quoted(PageQuery.encode(nextKey)) + Array(",".utf8) }
        body += Array("\"routes\":[".utf8)
        for (n, route) in routes.enumerated() {
            if n > 0 { body.append(UInt8(ascii: ",")) }
            try writer.write(route, into: &body)
        }
        body += Array("]}".utf8)
        var headers = PageQuery.link(nextKey: nextKey, request: request)
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: .ok, headers: headers, body: .bytes(body))
    }

    /// Every route, one JSON object per line, in prefix order. Memory stays bounded however
    /// large the table: routes are read and written 1,000 at a time, and the writer waits while
    /// the client has not taken what was sent (no buffering of the whole answer). The prefixes
    /// are those of the table when the export began; each line is the route as it is when
    /// written, and a route removed meanwhile is left out.
    func export(_ request: HTTPRequest) throws -> HTTPResponse {
        let filter = try Filter(request)
        let stream = ResponseStream(bufferLimit: 1024 * 1024, waitsForClient: true) { out in
            let prefixes = await sorted().prefixes
            var writer = RouteWriter()
            var chunk: [UInt8] = []
            var batch: [IPPrefix] = []
            batch.reserveCapacity(1000)
            var sequence = prefixes.prefixes(within: filter.within).makeIterator()
            var done = false
            while !done {
                batch.removeAll(keepingCapacity: true)
                while batch.count < 1000, let prefix = sequence.next() { batch.append(prefix) }
                done = batch.count < 1000
                // The table as it is now, taken per chunk: a commit meanwhile copies nothing.
                let table = committer.routeTable.table
                chunk.removeAll(keepingCapacity: true)
                for prefix in batch {
                    guard let body = table[prefix] else { continue }
                    let route = DesiredRoute(prefix: prefix, body: body)
                    guard filter.matches(route) else { continue }
                    try writer.write(route, into: &chunk)
                    chunk.append(UInt8(ascii: "\n"))
                }
                try await out.write(chunk)
            }
        }
        return HTTPResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream(stream))
    }
}

/// Writes routes as `GET /v1/routes` shows them: `{"announce":…,"paths":[…],"prefix":…,
/// "sources":[…]}` (sorted keys, as `JSONCoding` writes). A shape (paths and attributes) is
/// encoded once and reused for every route that shares it.
struct RouteWriter {
    /// Encoded shapes, each held with its shape so that its identifier cannot name another one.
    private var shapes: [ObjectIdentifier: (shape: RouteShape, head: [UInt8])] = [:]

    mutating func write(_ route: DesiredRoute, into out: inout [UInt8]) throws {
        let shape = route.body.shape
        let key = ObjectIdentifier(shape)
        if shapes[key] == nil {
            if shapes.count >= 256 { shapes.removeAll(keepingCapacity: true) }
            let paths = shape.paths.map { RoutesAPI.PathBody(nextHop: $0.nextHop.description, node: $0.node) }
            var head = Array("{\"announce\":".utf8)
            head += try JSONCoding.encode(shape.attributes)
            head.append(contentsOf: ",\"paths\":".utf8)
            head += try JSONCoding.encode(paths)
            head.append(contentsOf: ",\"prefix\":".utf8)
            shapes[key] = (shape, head)
        }
        out += shapes[key]!.head
        out += JSONObjectWriter.quoted(route.prefix.description)
        out.append(contentsOf: ",\"sources\":[".utf8)
        for (n, source) in route.sources.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: "{\"kind\":".utf8)
            out += JSONObjectWriter.quoted(source.kind.rawValue)
            out.append(contentsOf: ",\"name\":".utf8)
            out += JSONObjectWriter.quoted(source.name)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
    }
}
