public import HTTPServer
internal import JSON
internal import IP
internal import Dispatch
internal import Synchronization

/// The body of `POST /v1/routes:batch` read into static routes: up to a million items (a JSON
/// array or NDJSON), each read by hand from the body's bytes (no tree, no Decodable per item)
/// with the strict decoder's rules, errors naming `[41].prefix`. A large NDJSON body is read in
/// two halves on two cores.
public struct StaticRouteBatch: Sendable {
    /// Most routes in one batch.
    public static let maxRoutes = 1_000_000

    /// The routes, named, in body order.
    public let items: [(name: String, spec: StaticRouteSpec)]
    /// Each item's prefix written out canonically (kept for the rows, not formatted again).
    public let prefixTexts: [String]
    /// No item gave a name: each is named after its prefix, so names repeat only if prefixes do.
    public let namesFollowPrefixes: Bool

    /// Reads and validates every item; throws naming every invalid field (at most 100).
    public static func read(_ request: HTTPRequest) throws -> StaticRouteBatch {
        // Room for as many items as the body can hold (at least 20 bytes each): a million-item
        // array is not copied through twenty doublings. Untouched capacity costs no memory.
        let room = min(maxRoutes, request.body.count / 20 + 1)
        var collected: Collector
        if let parts = try request.bulkParts(2, maxItems: maxRoutes) {
            // A large NDJSON body is read on both cores, half each; the halves are then joined
            // in order, so items, errors and their names are those of one scan.
            let scans = Mutex<[Int: Result<Collector, any Error>]>([:])
            DispatchQueue.concurrentPerform(iterations: parts.count) { k in
                // The first half gets room for all: the others are appended to it.
                var collector = Collector(room: k == 0 ? room : room / parts.count + 1)
                let scan = Result { () throws -> Collector in
                    try request.scanEach(maxItems: maxRoutes, part: parts[k]) { index, scanner in try collector.add(index, &scanner) }
                    return collector
                }
                scans.withLock { $0[k] = scan }
            }
            let results = scans.withLock { $0 }
            // The first failure in body order is the one a single scan would have met.
            collected = try results[0]!.get()
            for k in parts.indices.dropFirst() { collected.append(try results[k]!.get()) }
        } else {
            var collector = Collector(room: room)
            try request.scanEach(maxItems: maxRoutes) { index, scanner in try collector.add(index, &scanner) }
            collected = collector
        }
        try APIErrors.translating { try collected.validator.finish() }
        guard !collected.items.isEmpty else { throw ValidationError(field: "$", "give at least one route") }
        return StaticRouteBatch(items: collected.items, prefixTexts: collected.prefixTexts, namesFollowPrefixes: collected.namesFollowPrefixes)
    }

    /// One item of `POST /v1/routes:batch`, read by hand from the body's bytes (a million per
    /// request): the members of `StaticRouteInput` plus `name`, with the strict decoder's rules.
    struct Item {
        var name: String?
        var prefix: String
        var nextHops: [String]?
        var announce: AnnounceAttributes?
        var labels: [String: String]?

        init(scanning scanner: inout JSONItemScanner) throws {
            var name: String?, prefix: String?, nextHops: [String]?, announce: AnnounceAttributes?, labels: [String: String]?
            try scanner.members { member, value in
                switch member {
                case "prefix": prefix = try value.string(member)
                case "name": name = try value.string(member)
                case "next_hops": nextHops = try value.stringArray(member)
                case "announce": announce = try value.decode(AnnounceAttributes.self, member)
                case "labels": labels = try value.decode([String: String].self, member)
                default: throw value.unknownField(member)
                }
            }
            guard let prefix else { throw scanner.missingField("prefix") }
            self.name = name
            self.prefix = prefix
            self.nextHops = nextHops
            self.announce = announce
            self.labels = labels
        }
    }

    /// Turns scanned batch items into routes to write, collecting every problem (at most 100).
    /// One per part of the body when a large body is read on several cores.
    struct Collector: Sendable {
        var items: [(name: String, spec: StaticRouteSpec)] = []
        /// Each item's prefix written out canonically.
        var prefixTexts: [String] = []
        var validator = Validator()
        /// Batches repeat the same next-hop lists: parse (and store) each once.
        var hopLists: [[String]: [StaticNextHop]] = [:]
        /// Whether every item is named after its prefix (no "name" given): then names cannot
        /// repeat unless prefixes do.
        var namesFollowPrefixes = true
        /// An item without next hops shares this one "self" list.
        let selfHops: [StaticNextHop] = [.session]

        init(room: Int) {
            items.reserveCapacity(room)
            prefixTexts.reserveCapacity(room)
        }

        mutating func add(_ index: Int, _ scanner: inout JSONItemScanner) throws {
            let item = try Item(scanning: &scanner)
            guard validator.errors.count < 100 else { return }
            let prefix: IPPrefix, prefixText: String
            if let canonical = StaticRoutes.canonicalIPv4Prefix(item.prefix) {
                // The text is the prefix's canonical form: kept, not written out again.
                (prefix, prefixText) = (canonical, item.prefix)
            } else {
                do {
                    prefix = try IPPrefix(parsing: item.prefix)
                } catch {
                    validator.add("[\(index)].prefix", "\(error)")
                    return
                }
                prefixText = prefix.description
            }
            let hops: [StaticNextHop]
            if let texts = item.nextHops {
                if let known = hopLists[texts] {
                    hops = known
                } else {
                    guard let parsed = APIParse.nextHops(texts, field: "[\(index)].next_hops", into: &validator) else { return }
                    if hopLists.count < 1024 { hopLists[texts] = parsed }
                    hops = parsed
                }
            } else {
                hops = selfHops
            }
            if item.name != nil { namesFollowPrefixes = false }
            prefixTexts.append(prefixText)
            items.append((item.name ?? StaticRoutes.defaultName(prefixText: prefixText),
                          StaticRouteSpec(prefix: prefix, nextHops: hops, announce: item.announce ?? AnnounceAttributes(),
                                          labels: item.labels ?? [:])))
        }

        /// Appends a later part's items and problems (up to 100 problems in all).
        mutating func append(_ later: Collector) {
            items += later.items
            prefixTexts += later.prefixTexts
            for error in later.validator.errors where validator.errors.count < 100 { validator.add(error.field, error.message) }
            namesFollowPrefixes = namesFollowPrefixes && later.namesFollowPrefixes
        }
    }
}
