import BGP
import CSystem
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
        loop.preconditionInEventLoop()
        guard session != nil else { return }
        dirty.formUnion(prefixes)
        scheduleFlush()
    }

    var hasDirty: Bool { transfer != nil || drainIndex < draining.count || !dirty.isEmpty }

    /// A prefix to write, with what is already known about it.
    struct Pending {
        let prefix: IPPrefix
        /// The Loc-RIB path set, when known without a lookup (nil with `known`: not in the Loc-RIB).
        let pathSet: UInt32?
        let known: Bool
        /// The peer has nothing for it yet (the initial transfer), so `sent` need not be asked.
        let peerHasNothing: Bool
    }

    /// The next prefix to write: the initial transfer first, then the dirty prefixes. Entries of
    /// the transfer carry their path set from the snapshot while the Loc-RIB is unchanged since;
    /// after a change they are looked up again (a changed prefix is also dirty, and is written
    /// again after the transfer, so the latest state wins either way).
    func nextPending(_ core: SpeakerCore) -> Pending? {
        if transfer != nil {
            if let entry = transfer!.next() {
                let current = core.locRIBVersion == transferVersion
                return Pending(prefix: entry.key, pathSet: current ? entry.value : nil, known: current, peerHasNothing: true)
            }
            transfer = nil
        }
        guard let prefix = nextDirty() else { return nil }
        return Pending(prefix: prefix, pathSet: nil, known: false, peerHasNothing: false)
    }

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

    /// The longest a flush keeps the event loop before it lets timers and sockets run (it
    /// finishes the batch of up to 8,192 prefixes it is on: about 6 ms in a release build).
    static let flushSlice: UInt64 = 10_000_000

    /// Route refresh (RFC 2918) or soft reset out: send the whole table again, even what the
    /// peer should already have.
    func resendAll(family: IPFamily?) {
        loop.preconditionInEventLoop()
        guard session != nil else { return }
        for prefix in sent.keys where family == nil || prefix.family == family { forceResend.insert(prefix) }
        dirty.formUnion(forceResend)
        reevaluateAll()
    }

    /// Something that decides what a peer gets changed (labels): compare everything again.
    func reevaluateAll() {
        loop.preconditionInEventLoop()
        guard session != nil, let core else { return }
        dirty.formUnion(sent.keys)
        dirty.formUnion(core.locRIB.keys)
        scheduleFlush()
    }

    /// What a Loc-RIB path set becomes at this peer for `family`: the interned list of paths to
    /// send (index i is path ID i+1 with ADD-PATH; without it, one path with ID 0), retained once
    /// for the caller; nil when nothing is sent. `fewer` says paths were left out because the
    /// peer cannot take more than one; `noNextHop`, that nothing is sent because no selected
    /// path has a next hop of the family on this session ("self" of the other family without
    /// `otherFamilyNextHop`).
    func export(_ paths: [Path], family: IPFamily, _ parameters: SessionParameters, addPath: Bool,
                localAddress: IPAddress?) -> (set: UInt32?, fewer: Bool, noNextHop: Bool) {
        var out: [OutPath] = []
        var selected = false
        let extendedNextHop = family == .ipv4 && parameters.extendedNextHop.contains(Self.ipv4OverIPv6)
        for path in paths where selects(path.peerSelector) {
            selected = true
            guard let nextHop = nextHop(path.nextHop, family: family, localAddress: localAddress, extendedNextHop: extendedNextHop) else { continue }
            let candidate = OutPath(nextHop: nextHop, attributes: exportAttributes(path, parameters))
            if !out.contains(candidate) { out.append(candidate) }
        }
        guard !out.isEmpty else { return (nil, false, selected) }
        let fewer = !addPath && out.count > 1
        if fewer { out = [out[0]] }
        let pathIDs = out.map { sentPaths.retain($0) }
        let set = sentSets.retain(pathIDs)
        // An existing list already holds its paths: give back the references just taken.
        if sentSets.referenceCount(set) > 1 { for id in pathIDs { sentPaths.release(id) } }
        return (set, fewer, false)
    }

    /// Drops one reference to a sent path list (and its paths with the last one).
    func releaseSentSet(_ id: UInt32) {
        guard let paths = sentSets.release(id) else { return }
        for path in paths { sentPaths.release(path) }
    }

    func selects(_ selector: [String: String]) -> Bool {
        selector.allSatisfy { settings.labels[$0.key] == $0.value }
    }

    /// RFC 8950: IPv4 unicast NLRI with an IPv6 next hop.
    static let ipv4OverIPv6 = ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)

    /// The next hop a path has at this peer, or nil when it has none there. "Self" is the
    /// session's local address in its own family; in the other family, `otherFamilyNextHop`
    /// when set (the operator's choice wins), else an address of that family on the interface
    /// the session runs over (as FRR does), else for IPv4 over an IPv6 session the local IPv6
    /// address itself when both sides negotiated extended next hop (RFC 8950 §4: it then
    /// travels in MP_REACH_NLRI).
    func nextHop(_ hop: Path.NextHop, family: IPFamily, localAddress: IPAddress?, extendedNextHop: Bool = false) -> BGP.NextHop? {
        switch hop {
        case .address(let address):
            return address.family == family ? BGP.NextHop(address) : nil
        case .session:
            if let localAddress, localAddress.family == family { return BGP.NextHop(localAddress) }
            if let other = settings.otherFamilyNextHop, other.family == family { return BGP.NextHop(other) }
            if let learned = learnedOtherFamilyNextHop, learned.family == family { return BGP.NextHop(learned) }
            if extendedNextHop, let localAddress, localAddress.family == .ipv6 { return BGP.NextHop(localAddress) }
            return nil
        }
    }

    /// RFC 4271 §5.1: eBGP prepends our AS and sends no LOCAL_PREF; iBGP sends LOCAL_PREF and an
    /// empty AS_PATH.
    func exportAttributes(_ path: Path, _ parameters: SessionParameters) -> [PathAttribute] {
        var attributes: [PathAttribute] = [.origin(.igp)]
        let localASN = speaker.asn
        // A degraded speaker (a cluster replica without quorum) makes every path worse, so the
        // replicas that still have it win at the router.
        let penalty = core?.pathPenalty
        if parameters.isInternal {
            attributes.append(.asPath(ASPath()))
            attributes.append(.localPreference(path.localPreference ?? speaker.defaultLocalPreference))
        } else {
            let prepend = max(0, path.asPathPrepend) + (penalty?.prepend ?? 0)
            attributes.append(.asPath(.sequence(Array(repeating: localASN, count: 1 + min(prepend, 32)))))
        }
        if let worse = penalty?.med, worse > 0 {
            let (sum, overflow) = (path.med ?? 0).addingReportingOverflow(worse)
            attributes.append(.multiExitDiscriminator(overflow ? .max : sum))
        } else if let med = path.med {
            attributes.append(.multiExitDiscriminator(med))
        }
        if !path.communities.isEmpty { attributes.append(.communities(Array(Set(path.communities)).sorted())) }
        if !path.largeCommunities.isEmpty { attributes.append(.largeCommunities(Array(Set(path.largeCommunities)).sorted())) }
        if !parameters.fourOctetASN { attributes = attributes.addingAS4Attributes() }
        return attributes
    }

    /// Writes what the dirty prefixes need while the socket takes it; End-of-RIB after the
    /// initial transfer.
    ///
    /// Per prefix this is a few hash lookups and an integer comparison: the Loc-RIB names the
    /// prefix's path set, each distinct path set is exported once per flush (next hop, AS_PATH,
    /// communities for this peer), and `sent` names the list the peer already has. The initial
    /// transfer needs even less: it walks a snapshot of the Loc-RIB, and the peer has nothing.
    func flush() {
        guard let session, let connection = session.connection, let parameters = session.parameters, let core else { return }
        let packer = UpdatePacker(parameters: parameters)
        let localAddress = connection.localAddress?.address
        var announcedCount = 0, withdrawnCount = 0
        let exported = [IPFamily.ipv4, .ipv6].map { settings.families.contains($0) && parameters.families.contains(.unicast($0)) }
        let addPaths = [IPFamily.ipv4, .ipv6].map { parameters.addPathSend.contains(.unicast($0)) }
        // Loc-RIB path set and family → what this peer gets; each entry holds one reference
        // until the end of the flush, so grouped paths stay valid while they are packed.
        var exports: [UInt64: (set: UInt32?, fewer: Bool, noNextHop: Bool)] = [:]
        var lastKey: UInt64 = .max
        var last: (set: UInt32?, fewer: Bool, noNextHop: Bool) = (nil, false, false)
        // A failed write closes the session at once, which empties the Adj-RIB-Out (a new
        // epoch): then nothing here may touch it any more.
        let epoch = adjRIBOutEpoch
        defer {
            if epoch == adjRIBOutEpoch {
                for entry in exports.values { if let set = entry.set { releaseSentSet(set) } }
            }
        }
        let started = EventLoop.now()
        while connection.isWritable, hasDirty, epoch == adjRIBOutEpoch {
            // A peer that reads as fast as we write keeps the socket writable for the whole
            // table: one slice per turn of the loop, so BFD (50 ms × 3 detects in 150 ms),
            // keepalives and other peers run between slices of a million-route transfer.
            if EventLoop.now() - started > Self.flushSlice {
                scheduleFlush()
                break
            }
            var groups: [UInt64: [NLRI]] = [:]  // path ID and family → prefixes
            // Consecutive prefixes nearly always share a path: collect the current run in an
            // array and hand it to `groups` when the path changes, not one hash per prefix.
            var runKey: UInt64 = .max
            var run: [NLRI] = []
            func group(_ key: UInt64, _ nlri: NLRI) {
                if key != runKey {
                    if !run.isEmpty { groups[runKey, default: []].append(contentsOf: run) }
                    runKey = key
                    run.removeAll(keepingCapacity: true)
                }
                run.append(nlri)
            }
            var withdrawals: [NLRI] = []
            var taken = 0
            while taken < 8192, let pending = nextPending(core) {
                taken += 1
                let prefix = pending.prefix
                let family = prefix.family
                let v6 = family == .ipv6 ? 1 : 0
                let addPath = addPaths[v6]
                var want: (set: UInt32?, fewer: Bool, noNextHop: Bool) = (nil, false, false)
                if exported[v6], let pathSet = pending.known ? pending.pathSet : core.locRIB[prefix] {
                    let key = UInt64(pathSet) << 1 | UInt64(v6)
                    if key == lastKey {
                        want = last
                    } else {
                        if let known = exports[key] {
                            want = known
                        } else {
                            want = export(core.pathSets[pathSet], family: family, parameters, addPath: addPath, localAddress: localAddress)
                            exports[key] = want
                        }
                        lastKey = key
                        last = want
                    }
                }
                if want.fewer { fewerPaths.insert(prefix) } else if !fewerPaths.isEmpty { fewerPaths.remove(prefix) }
                if want.noNextHop { withoutNextHop.insert(prefix) } else if !withoutNextHop.isEmpty { withoutNextHop.remove(prefix) }
                let have = pending.peerHasNothing ? nil : sent[prefix]
                let force = !forceResend.isEmpty && forceResend.remove(prefix) != nil
                if have == want.set, !force { continue }
                let old = have.map { sentSets[$0] } ?? []
                let new = want.set.map { sentSets[$0] } ?? []
                if addPath {
                    for index in new.count..<max(new.count, old.count) {
                        withdrawals.append(NLRI(prefix, pathID: UInt32(index + 1)))
                    }
                    for (index, path) in new.enumerated() where force || index >= old.count || old[index] != path {
                        group(UInt64(path) << 1 | UInt64(v6), NLRI(prefix, pathID: UInt32(index + 1)))
                    }
                } else if let path = new.first {
                    if force || old.first != path { group(UInt64(path) << 1 | UInt64(v6), NLRI(prefix, pathID: nil)) }
                } else if !old.isEmpty {
                    withdrawals.append(NLRI(prefix, pathID: nil))
                }
                if let set = want.set {
                    sentSets.retain(id: set)
                    sent[prefix] = set
                    if have == nil { sentGainedPrefixes = true }
                } else {
                    sent[prefix] = nil
                }
                if let have { releaseSentSet(have) }
            }
            if !run.isEmpty { groups[runKey, default: []].append(contentsOf: run) }
            if !withdrawals.isEmpty {
                withdrawnCount += withdrawals.count
                for bytes in packer.withdrawals(withdrawals) { write(bytes, connection) }
                guard epoch == adjRIBOutEpoch else { return }
            }
            // One family per packing call (the next hop decides the encoding).
            for (key, nlri) in groups {
                let path = sentPaths[UInt32(key >> 1)]
                do {
                    for bytes in try packer.announcements(nlri, attributes: path.attributes, nextHop: path.nextHop) { write(bytes, connection) }
                    guard epoch == adjRIBOutEpoch else { return }
                    announcedCount += nlri.count
                } catch {
                    logger.error("cannot encode routes for this peer", metadata: ["error": "\(error)", "prefixes": "\(nlri.count)"])
                    for n in nlri {
                        if let set = sent.removeValue(forKey: n.prefix) { releaseSentSet(set) }
                    }
                }
            }
        }
        guard epoch == adjRIBOutEpoch else { return }
        if !hasDirty, !endOfRIBPending.isEmpty {
            for family in endOfRIBPending {
                write(packer.endOfRIB(family), connection)
                core.emit(.endOfRIB(peer: settings.name, family: Self.familyName(family), direction: .sent))
            }
            endOfRIBPending = []
            // RFC 4724 §4.1: the initial transfer is complete, and with it a restart for this peer.
            endRestart()
            // A large initial transfer leaves its drain array and packing buffers freed in the
            // middle of the heap, which glibc keeps resident unless asked (one pass, once per
            // session).
            if sent.count >= 10_000 { _ = csystem_release_free_heap() }
        }
        counters.prefixesAdvertised = sent.count
        reportRoutesWithoutNextHop()
        if announcedCount + withdrawnCount > 0 {
            logger.debug("UPDATEs sent", metadata: ["announced": "\(announcedCount)", "withdrawn": "\(withdrawnCount)"])
        }
    }

    private func write(_ bytes: [UInt8], _ connection: Connection) {
        connection.write(bytes)
        counters.messagesOut += 1
        counters.updatesOut += 1
    }
}

extension PeerDriver {
    /// Says once per cause why routes are not sent: their next hop is Herald itself in a family
    /// this session has no address of, and no `otherFamilyNextHop` is set (RFC 4760: an IPv6
    /// route needs an IPv6 next hop, whatever carries the session).
    func reportRoutesWithoutNextHop() {
        guard !withoutNextHop.isEmpty else {
            if withoutNextHopReported { withoutNextHopReported = false }
            return
        }
        let families = Set(withoutNextHop.map(\.family)).map { $0 == .ipv4 ? "IPv4" : "IPv6" }.sorted().joined(separator: " and ")
        let text = "\(withoutNextHop.count) \(families) route(s) not sent: their next hop is Herald itself, and this session has no \(families) address; set other_family_next_hop on the peer (an \(families) address of this host)\(withoutNextHop.contains { $0.family == .ipv4 } ? ", or enable extended next hop (RFC 8950) on the router for IPv4 over this IPv6 session" : "")"
        if hint != text { hint = text }
        guard !withoutNextHopReported else { return }
        withoutNextHopReported = true
        logger.warning("routes not sent: no next hop of their family on this session", metadata: ["routes": "\(withoutNextHop.count)", "families": "\(families)"])
    }
}
