import BGP
public import IP
import Synchronization

/// One peer's Adj-RIB-Out or Adj-RIB-In as it was at one moment, for paging through it off the
/// event loop.
///
/// Taking a view costs the loop nothing but a few reference counts: the tables are copy-on-write
/// values, and the view holds them as they were. Sorting (`index()`) and building entries
/// (`entries(for:in:)`) run on the caller's thread. Hold a view only for one page: while it is
/// held, the loop's next change to that table copies the table first.
public struct RIBView: Sendable {
    public let peer: String
    /// Changes whenever the table gained a prefix since the last view; an index built from a view
    /// of the same version still holds every prefix (removed ones are skipped by `entries`).
    public let version: Int
    let storage: Storage

    enum Storage: Sendable {
        case advertised(sent: PrefixMap<UInt32>, sets: InternTable<[UInt32]>, paths: InternTable<OutPath>, addPath: Set<IPFamily>)
        case received([NLRI: ReceivedPath])
    }

    /// Routes in the view (paths for the Adj-RIB-In, prefixes for the Adj-RIB-Out).
    public var count: Int {
        switch storage {
        case .advertised(let sent, _, _, _): sent.count
        case .received(let received): received.count
        }
    }

    /// The view's prefixes in order, and the path IDs of each received prefix (ADD-PATH):
    /// O(n log n), so build it once per version, off the event loop.
    public func index() -> RIBIndex {
        switch storage {
        case .advertised(let sent, _, _, _):
            return RIBIndex(prefixes: SortedPrefixes(sent), pathIDs: [:])
        case .received(let received):
            var pathIDs: [IPPrefix: [UInt32?]] = [:]
            for key in received.keys { pathIDs[key.prefix, default: []].append(key.pathID) }
            return RIBIndex(prefixes: SortedPrefixes(pathIDs.keys), pathIDs: pathIDs)
        }
    }

    /// Every path of `prefix` in the view, by path ID; empty when the prefix is gone.
    public func entries(for prefix: IPPrefix, in index: RIBIndex) -> [RIBEntry] {
        switch storage {
        case let .advertised(sent, sets, paths, addPath):
            guard let set = sent[prefix] else { return [] }
            let withIDs = addPath.contains(prefix.family)
            return sets[set].enumerated().map { index, id in
                let path = paths[id]
                let hop: IPAddress? = switch path.nextHop {
                case .ipv4(let a): .v4(a)
                case .ipv6(let a, _): .v6(a)
                case .other: nil
                }
                return RIBEntry(prefix: prefix, pathID: withIDs ? UInt32(index + 1) : nil, nextHop: hop, attributes: path.attributes,
                                receivedAt: nil, stale: false)
            }
        case .received(let received):
            return (index.pathIDs[prefix] ?? []).sorted { ($0 ?? 0) < ($1 ?? 0) }.compactMap { pathID in
                received[NLRI(prefix, pathID: pathID)].map {
                    var entry = RIBEntry(prefix: prefix, pathID: pathID, nextHop: $0.nextHop, attributes: $0.attributes,
                                         receivedAt: $0.receivedAt, stale: $0.stale)
                    entry.asLoop = $0.asLoop
                    return entry
                }
            }
        }
    }

    /// Every route of the view, in order.
    public func allEntries() -> [RIBEntry] {
        let index = index()
        return index.prefixes.prefixes().flatMap { entries(for: $0, in: index) }
    }

    /// A process-wide version counter: versions of different peers and sessions never collide.
    static func nextVersion() -> Int { versions.add(1, ordering: .relaxed).newValue }
    private static let versions = Atomic<Int>(0)
}

/// The sorted prefixes of a `RIBView`.
public struct RIBIndex: Sendable {
    public let prefixes: SortedPrefixes
    let pathIDs: [IPPrefix: [UInt32?]]
}

extension PeerDriver {
    /// The Adj-RIB-Out as it is now (O(1): see `RIBView`).
    func advertisedView() -> RIBView {
        loop.preconditionInEventLoop()
        if sentGainedPrefixes {
            sentGainedPrefixes = false
            advertisedVersion = RIBView.nextVersion()
        }
        let addPath = Set(IPFamily.allCases.filter { session?.parameters?.addPathSend.contains(.unicast($0)) ?? false })
        return RIBView(peer: settings.name, version: advertisedVersion,
                       storage: .advertised(sent: sent, sets: sentSets, paths: sentPaths, addPath: addPath))
    }

    /// The Adj-RIB-In as it is now (O(1)).
    func receivedView() -> RIBView {
        loop.preconditionInEventLoop()
        if receivedGainedPrefixes {
            receivedGainedPrefixes = false
            receivedVersion = RIBView.nextVersion()
        }
        return RIBView(peer: settings.name, version: receivedVersion, storage: .received(received))
    }
}
