internal import BGP
internal import IP
internal import IPAM

/// BGP attributes a pool (or a static route) announces its routes with.
public struct AnnounceAttributes: Codable, Sendable, Hashable {
    /// RFC 1997 communities: "65000:100" or a well-known name ("no-export", "no-advertise",
    /// "no-export-subconfed", "blackhole").
    public var communities: [String]?
    /// RFC 8092 large communities: "global:local1:local2".
    public var largeCommunities: [String]?
    public var localPref: UInt32?
    public var med: UInt32?
    /// How many extra times the local AS is prepended (eBGP), to make a path less preferred.
    public var asPathPrepend: Int?
    /// Labels a peer must carry to receive these routes; nil or empty means every peer.
    public var peerSelector: [String: String]?
    /// Pools only: announce the covering prefix of this length (IPv4) instead of each address, as
    /// MetalLB's and Cilium's `aggregationLength` do: one route per /L that holds allocations,
    /// withdrawn with the last of them.
    public var aggregationLength: Int?
    /// The same for IPv6 addresses.
    public var aggregationLengthV6: Int?

    public init(communities: [String]? = nil, largeCommunities: [String]? = nil, localPref: UInt32? = nil, med: UInt32? = nil,
                asPathPrepend: Int? = nil, peerSelector: [String: String]? = nil, aggregationLength: Int? = nil,
                aggregationLengthV6: Int? = nil) {
        self.communities = communities
        self.largeCommunities = largeCommunities
        self.localPref = localPref
        self.med = med
        self.asPathPrepend = asPathPrepend
        self.peerSelector = peerSelector
        self.aggregationLength = aggregationLength
        self.aggregationLengthV6 = aggregationLengthV6
    }

    enum CodingKeys: String, CodingKey {
        case communities
        case largeCommunities = "large_communities"
        case localPref = "local_pref"
        case med
        case asPathPrepend = "as_path_prepend"
        case peerSelector = "peer_selector"
        case aggregationLength = "aggregation_length"
        case aggregationLengthV6 = "aggregation_length_v6"
    }

    /// The prefix that announces `address`: its host prefix, or with aggregation the covering
    /// prefix of the family's length.
    func announcedPrefix(of address: IPAddress) -> IPPrefix {
        let length = address.family == .ipv4 ? aggregationLength : aggregationLengthV6
        guard let length else { return IPPrefix(host: address) }
        return IPPrefix(truncating: address, length: length)
    }

    /// Whether any address family aggregates.
    var aggregates: Bool { aggregationLength != nil || aggregationLengthV6 != nil }

    func validate(field: String, into validator: inout Validator) {
        // The speaker's own parsers decide: what passes here is what the speaker sends.
        for (index, community) in (communities ?? []).enumerated() where Community(community) == nil {
            validator.add("\(field).communities[\(index)]", "\"\(community)\" is not a community: expected ASN:value with both 0–65535, or one of \(Community.wellKnown.map(\.name).sorted().joined(separator: ", "))")
        }
        for (index, community) in (largeCommunities ?? []).enumerated() where LargeCommunity(community) == nil {
            validator.add("\(field).large_communities[\(index)]", "\"\(community)\" is not a large community: expected global:local1:local2, each 0–4294967295")
        }
        if let prepend = asPathPrepend, !(0...16).contains(prepend) {
            validator.add("\(field).as_path_prepend", "must be 0–16")
        }
        if let selector = peerSelector { Labels.validate(selector, field: "\(field).peer_selector", into: &validator) }
        if let length = aggregationLength, !(0...32).contains(length) {
            validator.add("\(field).aggregation_length", "must be an IPv4 prefix length 0–32 (aggregation_length_v6 for IPv6)")
        }
        if let length = aggregationLengthV6, !(0...128).contains(length) {
            validator.add("\(field).aggregation_length_v6", "must be an IPv6 prefix length 0–128")
        }
    }

    /// A pool's aggregation must stay inside each of its blocks of the family: a shorter length
    /// would announce addresses the pool does not own (another pool's, or a router's), so it is
    /// refused, as MetalLB refuses an aggregationLength shorter than the pool's CIDR. A block
    /// given as a range (not a prefix) aggregates only to host prefixes.
    func validateAggregation(blocks: [PoolBlock], field: String, into validator: inout Validator) {
        for (length, family, name) in [(aggregationLength, IPFamily.ipv4, "aggregation_length"), (aggregationLengthV6, .ipv6, "aggregation_length_v6")] {
            guard let length else { continue }
            for block in blocks where block.family == family {
                let full = family == .ipv4 ? 32 : 128
                if let prefix = block.prefix {
                    if length < prefix.length {
                        validator.add("\(field).\(name)", "/\(length) is shorter than block \(block): its aggregates would cover addresses outside the pool; use \(prefix.length)–\(full)")
                    }
                } else if length != full {
                    validator.add("\(field).\(name)", "block \(block) is a range, not a prefix: it cannot be aggregated (give the block as a prefix, or use \(full))")
                }
            }
        }
    }

    /// Static routes announce their own prefix: aggregation is a pool setting.
    func validateNoAggregation(field: String, into validator: inout Validator) {
        if aggregationLength != nil { validator.add("\(field).aggregation_length", "applies to pools only: a static route announces its own prefix") }
        if aggregationLengthV6 != nil { validator.add("\(field).aggregation_length_v6", "applies to pools only: a static route announces its own prefix") }
    }
}
