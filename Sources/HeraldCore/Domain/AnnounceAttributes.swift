internal import BGP

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
    /// Announce the covering prefix of this length instead of each address.
    public var aggregationLength: Int?

    public init(communities: [String]? = nil, largeCommunities: [String]? = nil, localPref: UInt32? = nil, med: UInt32? = nil,
                asPathPrepend: Int? = nil, peerSelector: [String: String]? = nil, aggregationLength: Int? = nil) {
        self.communities = communities
        self.largeCommunities = largeCommunities
        self.localPref = localPref
        self.med = med
        self.asPathPrepend = asPathPrepend
        self.peerSelector = peerSelector
        self.aggregationLength = aggregationLength
    }

    enum CodingKeys: String, CodingKey {
        case communities
        case largeCommunities = "large_communities"
        case localPref = "local_pref"
        case med
        case asPathPrepend = "as_path_prepend"
        case peerSelector = "peer_selector"
        case aggregationLength = "aggregation_length"
    }

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
        if let length = aggregationLength, !(0...128).contains(length) {
            validator.add("\(field).aggregation_length", "must be a prefix length 0–128")
        }
    }
}
