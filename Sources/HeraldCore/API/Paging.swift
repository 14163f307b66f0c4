import Foundation
internal import HTTPServer
internal import IP
internal import Synchronization

/// `limit` and `cursor` of a paged list, and the `next_cursor` and `Link: rel="next"` of its
/// answer. Every list pages, so that no request makes the server build a whole table: a page is
/// read, encoded and sent in time and memory proportional to `limit`.
///
/// The cursor is opaque to clients (base64url of the last key of the previous page, a name or a
/// prefix): lists page by key, not by offset, so a page never repeats or skips an object because
/// others were added or removed in front of it.
struct PageQuery {
    static let defaultLimit = 1000
    static let maxLimit = 10_000
    /// The query parameters of every paged list.
    static let parameters: Set<String> = ["limit", "cursor"]

    let limit: Int
    /// The last key of the previous page; nil for the first page.
    let after: String?

    init(_ request: HTTPRequest) throws {
        limit = try APIParse.limit(request, default: Self.defaultLimit, max: Self.maxLimit)
        after = try APIParse.query(request, "cursor") { text -> String in
            guard let key = Self.decode(text) else {
                throw ValidationError(field: "cursor", "is not a cursor from next_cursor", status: .badRequest)
            }
            return key
        }
    }

    /// The cursor after a prefix (a prefix list's key).
    func afterPrefix() throws -> IPPrefix? {
        guard let after else { return nil }
        guard let prefix = IPPrefix(after) else { throw ValidationError(field: "cursor", "is not a cursor of this list", status: .badRequest) }
        return prefix
    }

    /// The answer: `body` as JSON, with a `Link` to the next page when there is one.
    func response(_ body: some Encodable, nextKey: String?, request: HTTPRequest) throws -> HTTPResponse {
        try .json(body, headers: Self.link(nextKey: nextKey, request: request))
    }

    /// A `Link: <…>; rel="next"` header when a page follows.
    static func link(nextKey: String?, request: HTTPRequest) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let nextKey { headers.set("Link", "<\(nextTarget(request, cursor: encode(nextKey)))>; rel=\"next\"") }
        return headers
    }

    /// The request's path and query with `cursor` replaced (filters and limit kept).
    static func nextTarget(_ request: HTTPRequest, cursor: String) -> String {
        var items = request.query.items.filter { $0.name != "cursor" }
        items.append(("cursor", cursor))
        let query = items.map { "\(escape($0.name))=\(escape($0.value))" }.joined(separator: "&")
        return request.path + "?" + query
    }

    static func encode(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) -> String? {
        var text = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        guard let data = Data(base64Encoded: text), !data.isEmpty else { return nil }
        return String(bytes: data, encoding: .utf8)
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/")
}

extension PageQuery {
    /// Up to `limit` items from `candidates` (in key order), and the key to continue after when
    /// more follow: reads one item past the page to know.
    func take<Item>(_ candidates: some Sequence<Item>, key: (Item) -> String) -> (items: [Item], nextKey: String?) {
        var items: [Item] = []
        items.reserveCapacity(min(limit, 1024))
        for item in candidates {
            if items.count == limit { return (items, items.last.map(key)) }
            items.append(item)
        }
        return (items, nil)
    }
}

/// A sorted index of a table's prefixes, kept while the table gains no prefix: the first page
/// after a change sorts (off the cooperative pool), the following pages only search.
final class SortedPrefixCache<Key: Hashable & Sendable, Index: Sendable>: Sendable {
    private struct Held {
        var entries: [Key: (version: Int, index: Index, used: Int)] = [:]
        var clock = 0
    }
    private let held = Mutex(Held())
    /// Tables whose index is kept: the ones paged most recently. (A deleted peer's index would
    /// otherwise stay for good.)
    private let capacity: Int

    init(capacity: Int = 8) { self.capacity = capacity }

    /// The index for `version` of the table at `key`, built by `build` when none is held. One index
    /// per key (an older version is replaced), for at most `capacity` keys.
    func index(for key: Key, version: Int, build: @escaping @Sendable () -> Index) async -> Index {
        let found = held.withLock { held -> Index? in
            guard let entry = held.entries[key], entry.version == version else { return nil }
            held.clock += 1
            held.entries[key]?.used = held.clock
            return entry.index
        }
        if let found { return found }
        let index = await Blocking.run(build)
        held.withLock { held in
            held.clock += 1
            held.entries[key] = (version, index, held.clock)
            while held.entries.count > capacity, let oldest = held.entries.min(by: { $0.value.used < $1.value.used })?.key {
                held.entries[oldest] = nil
            }
        }
        return index
    }
}
