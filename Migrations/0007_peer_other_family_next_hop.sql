-- A peer's next hop for routes of the other address family than its session (issue #17 item 4):
-- IPv6 routes on an IPv4 session (RFC 4760 MP_REACH_NLRI needs an IPv6 next hop) and the other way
-- round. NULL: routes of the other family whose next hop is Herald itself ("self") are not sent
-- to that peer, and the peer view counts them (prefixes_without_next_hop) and says why.
ALTER TABLE peers ADD COLUMN other_family_next_hop TEXT;
