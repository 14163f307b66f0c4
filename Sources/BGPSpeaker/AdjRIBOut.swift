import BGP
import IP
import Sockets

// Adj-RIB-Out is state, not a queue: `sent` is what the peer has, `dirty` the prefixes whose
// Loc-RIB entry changed since. When the socket is writable, the dirty prefixes are compared with
// what the peer should have, and the differences are packed into as few UPDATEs as possible,
// grouped by identical attributes. A slow peer therefore costs memory proportional to the
// table, never to the number of changes, and the latest state always wins.

extension PeerDriver {
    /// Families we send on this session: configured and negotiated.
    func exportFamilies(_ parameters: SessionParameters) -> [IPFamily] {
        settings.families.filter { parameters.families.contains(.unicast($0)) }.sorted { $0.rawValue < $1.rawValue }
    }

    /// Marks prefixes dirty and writes soon (coalesced: many changes in one turn of the loop
    /// become one flush).
    func markDirty<S: Sequence<IPPrefix>>(_ prefixes: S) {
        guard session != nil else { return }
        dirty.formUnion(prefixes)
        scheduleFlush()
    }

    var hasDirty: Bool { drainIndex < draining.count || !dirty.isEmpty }

    /// The next dirty prefix to write: from the array being drained, refilled from `dirty` in one
    /// move when it runs out. A prefix marked dirty again while it waits is written once more,
    /// which changes nothing (the comparison with `sent` decides what goes out).
    func nextDirty() -> IPPrefix? {
        if drainIndex >= draining.count {
            guard !dirty.isEmpty else {
                if !draining.isEmpty { draining = [] }
                return nil
            }
            draining = Array(dirty)
            dirty.removeAll(keepingCapacity: true)
            drainIndex = 0
        }
        defer { drainIndex += 1 }
        return draining[drainIndex]
    }

    func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [weak self] in
            guard let self else { return }
            self.flushScheduled = false
            self.flush()
        }
    }

    /// Route refresh (RFC 2918) or soft reset out: send the whole table again, even what the
    /// peer should already have.
    func resendAll(family: IPFamily?) {
        guard session != nil else { return }
        for prefix in sent.keys where family == nil || prefix.family == family { forceResend.insert(prefix) }
        dirty.formUnion(forceResend)
        reevaluateAll()
    }

    /// Something that decides what a peer gets changed (labels): compare everything again.
    func reevaluateAll() {
        guard session != nil, let core else { return }
        dirty.formUnion(sent.keys)
        dirty.formUnion(core.locRIB.keys)
        scheduleFlush()
    }

    /// The paths `prefix` should have at this peer, keyed by path ID (0 without ADD-PATH).
    func desiredPaths(_ prefix: IPPrefix, _ parameters: SessionParameters, _ addPath: Bool, localAddress: IPAddress?) -> [UInt32: OutPath] {
        guard let route = core?.locRIB[prefix], settings.families.contains(prefix.family),
              parameters.families.contains(.unicast(prefix.family)) else { return [:] }
        var out: [OutPath] = []
        for path in route.paths where selects(path.peerSelector) {
            guard let nextHop = nextHop(path.nextHop, family: prefix.family, localAddress: localAddress) else { continue }
            let candidate = OutPath(nextHop: nextHop, attributes: exportAttributes(path, parameters))
            if !out.contains(candidate) { out.append(candidate) }
        }
        if addPath {
            var result: [UInt32: OutPath] = [:]
            for (index, path) in out.enumerated() { result[UInt32(index + 1)] = path }
            fewerPaths.remove(prefix)
            return result
        }
        guard let first = out.first else { return [:] }
        if out.count > 1 { fewerPaths.insert(prefix) } else { fewerPaths.remove(prefix) }
        return [0: first]
    }

    func selects(_ selector: [String: String]) -> Bool {
        selector.allSatisfy { settings.labels[$0.key] == $0.value }
    }

    func nextHop(_ hop: Path.NextHop, family: IPFamily, localAddress: IPAddress?) -> BGP.NextHop? {
        switch hop {
        case .address(let address):
            return address.family == family ? BGP.NextHop(address) : nil
        case .session:
            if let localAddress, localAddress.family == family { return BGP.NextHop(localAddress) }
            if let other = settings.otherFamilyNextHop, other.family == family { return BGP.NextHop(other) }
            return nil
        }
    }

    /// RFC 4271 §5.1: eBGP prepends our AS and sends no LOCAL_PREF; iBGP sends LOCAL_PREF and an
    /// empty AS_PATH.
    func exportAttributes(_ path: Path, _ parameters: SessionParameters) -> [PathAttribute] {
        var attributes: [PathAttribute] = [.origin(.igp)]
        let localASN = speaker.asn
        if parameters.isInternal {
            attributes.append(.asPath(ASPath()))
            attributes.append(.localPreference(path.localPreference ?? speaker.defaultLocalPreference))
        } else {
            attributes.append(.asPath(.sequence(Array(repeating: localASN, count: 1 + min(max(0, path.asPathPrepend), 32)))))
        }
        if let med = path.med { attributes.append(.multiExitDiscriminator(med)) }
        if !path.communities.isEmpty { attributes.append(.communities(Array(Set(path.communities)).sorted())) }
        if !path.largeCommunities.isEmpty { attributes.append(.largeCommunities(Array(Set(path.largeCommunities)).sorted())) }
        if !parameters.fourOctetASN { attributes = attributes.addingAS4Attributes() }
        return attributes
    }

    /// Writes what the dirty prefixes need while the socket takes it; End-of-RIB after the
    /// initial transfer.
    func flush() {
        guard let session, let connection = session.connection, let parameters = session.parameters else { return }
        let packer = UpdatePacker(parameters: parameters)
        let localAddress = connection.localAddress?.address
        var announcedCount = 0, withdrawnCount = 0
        while connection.isWritable, hasDirty {
            var groups: [OutPath: [NLRI]] = [:]
            var withdrawals: [NLRI] = []
            var taken = 0
            while taken < 8192, let prefix = nextDirty() {
                taken += 1
                let addPath = parameters.addPathSend.contains(.unicast(prefix.family))
                let want = desiredPaths(prefix, parameters, addPath, localAddress: localAddress)
                let have = sent[prefix] ?? [:]
                let force = forceResend.remove(prefix) != nil
                for id in have.keys where want[id] == nil {
                    withdrawals.append(NLRI(prefix, pathID: addPath ? id : nil))
                }
                for (id, path) in want where force || have[id] != path {
                    groups[path, default: []].append(NLRI(prefix, pathID: addPath ? id : nil))
                }
                sent[prefix] = want.isEmpty ? nil : want
            }
            if !withdrawals.isEmpty {
                withdrawnCount += withdrawals.count
                for bytes in packer.withdrawals(withdrawals) { write(bytes, connection) }
            }
            for (path, nlri) in groups {
                // One family per packing call (the next hop decides the encoding).
                for family in [IPFamily.ipv4, .ipv6] {
                    let part = nlri.filter { $0.prefix.family == family }
                    guard !part.isEmpty else { continue }
                    do {
                        for bytes in try packer.announcements(part, attributes: path.attributes, nextHop: path.nextHop) { write(bytes, connection) }
                        announcedCount += part.count
                    } catch {
                        logger.error("cannot encode routes for this peer", metadata: ["error": "\(error)", "prefixes": "\(part.count)"])
                        for n in part { sent[n.prefix] = nil }
                    }
                }
            }
        }
        if !hasDirty, !endOfRIBPending.isEmpty {
            for family in endOfRIBPending {
                write(packer.endOfRIB(family), connection)
                core?.emit(.endOfRIB(peer: settings.name, family: Self.familyName(family), direction: .sent))
            }
            endOfRIBPending = []
        }
        counters.prefixesAdvertised = sent.count
        if announcedCount + withdrawnCount > 0 {
            logger.debug("UPDATEs sent", metadata: ["announced": "\(announcedCount)", "withdrawn": "\(withdrawnCount)"])
        }
    }

    private func write(_ bytes: [UInt8], _ connection: Connection) {
        connection.write(bytes)
        counters.messagesOut += 1
        counters.updatesOut += 1
    }

    /// Adj-RIB-Out for display.
    func advertisedEntries() -> [RIBEntry] {
        var entries: [RIBEntry] = []
        for (prefix, paths) in sent {
            for (id, path) in paths {
                let hop: IPAddress? = switch path.nextHop {
                case .ipv4(let a): .v4(a)
                case .ipv6(let a, _): .v6(a)
                case .other: nil
                }
                entries.append(RIBEntry(prefix: prefix, pathID: id == 0 ? nil : id, nextHop: hop, attributes: path.attributes, receivedAt: nil, stale: false))
            }
        }
        return entries.sorted { ($0.prefix, $0.pathID ?? 0) < ($1.prefix, $1.pathID ?? 0) }
    }
}
