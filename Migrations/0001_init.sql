-- Herald schema, version 1.
--
-- SQLite is the single source of truth: the speaker's announcements are derived from these rows.
-- Constraints here make invalid states unrepresentable even if application code has a bug:
-- an address handed out twice, a pool block overlapping another, an allocation outside its
-- block, a node deleted while an allocation still sends traffic to it.
--
-- Conventions: tables are STRICT; times are INTEGER milliseconds since the Unix epoch (UTC);
-- booleans are INTEGER 0/1; addresses and prefixes are TEXT in canonical form (RFC 5952 for
-- IPv6), and where order matters they also carry a *_key BLOB (4 or 16 bytes, network order) so
-- that SQLite's memcmp ordering is numeric order within a family; labels and selectors are JSON
-- objects of string values; names match [a-z0-9][a-z0-9._-]{0,62}.
--
-- Applied migrations are never edited: a change is a new numbered file.

-- The one speaker of this process: local ASN, router ID, listener and session defaults.
CREATE TABLE speaker (
    id                       INTEGER PRIMARY KEY CHECK (id = 1),
    -- RFC 6793: 23456 is AS_TRANS, never a real ASN.
    asn                      INTEGER NOT NULL CHECK (asn BETWEEN 1 AND 4294967295 AND asn <> 23456),
    -- RFC 4271 §4.2 / RFC 6286: a non-zero 32-bit identifier, written as an IPv4 address.
    router_id                TEXT    NOT NULL CHECK (router_id <> '' AND router_id <> '0.0.0.0'),
    listen_address           TEXT    NOT NULL,
    listen_port              INTEGER NOT NULL CHECK (listen_port BETWEEN 0 AND 65535),
    -- RFC 4271 §4.2: hold time is 0 or at least 3 seconds.
    hold_time                INTEGER NOT NULL DEFAULT 90 CHECK (hold_time = 0 OR hold_time BETWEEN 3 AND 65535),
    keepalive_time           INTEGER NOT NULL DEFAULT 30 CHECK (keepalive_time BETWEEN 0 AND 21845),
    connect_retry_time       INTEGER NOT NULL DEFAULT 120 CHECK (connect_retry_time BETWEEN 1 AND 65535),
    graceful_restart_enabled INTEGER NOT NULL DEFAULT 1 CHECK (graceful_restart_enabled IN (0, 1)),
    -- RFC 4724 §3: the restart time field is 12 bits.
    graceful_restart_time    INTEGER NOT NULL DEFAULT 120 CHECK (graceful_restart_time BETWEEN 0 AND 4095),
    updated_at               INTEGER NOT NULL
) STRICT;

-- BGP neighbours.
CREATE TABLE peers (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE
                       CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),
    -- One session per remote address: inbound connections are matched to a peer by it.
    address            TEXT    NOT NULL UNIQUE CHECK (address <> ''),
    port               INTEGER NOT NULL DEFAULT 179 CHECK (port BETWEEN 1 AND 65535),
    asn                INTEGER NOT NULL CHECK (asn BETWEEN 1 AND 4294967295 AND asn <> 23456),
    local_address      TEXT,
    -- RFC 2385 TCP MD5 key: the kernel needs the clear text, so it is stored; the API never
    -- returns it. Linux accepts at most 80 bytes (TCP_MD5SIG_MAXKEYLEN).
    password           TEXT    CHECK (password IS NULL OR length(CAST(password AS BLOB)) BETWEEN 1 AND 80),
    ebgp_multihop      INTEGER CHECK (ebgp_multihop IS NULL OR ebgp_multihop BETWEEN 1 AND 255),
    -- RFC 5082 GTSM: the number of hops the peer is away.
    ttl_security       INTEGER CHECK (ttl_security IS NULL OR ttl_security BETWEEN 1 AND 254),
    hold_time          INTEGER CHECK (hold_time IS NULL OR hold_time = 0 OR hold_time BETWEEN 3 AND 65535),
    keepalive_time     INTEGER CHECK (keepalive_time IS NULL OR keepalive_time BETWEEN 0 AND 21845),
    connect_retry_time INTEGER CHECK (connect_retry_time IS NULL OR connect_retry_time BETWEEN 1 AND 65535),
    passive            INTEGER NOT NULL DEFAULT 0 CHECK (passive IN (0, 1)),
    -- JSON array drawn from "ipv4-unicast", "ipv6-unicast".
    families           TEXT    NOT NULL DEFAULT '["ipv4-unicast"]'
                       CHECK (json_valid(families) AND json_type(families) = 'array' AND json_array_length(families) >= 1),
    add_path_send      INTEGER NOT NULL DEFAULT 0 CHECK (add_path_send IN (0, 1)),
    graceful_restart   INTEGER NOT NULL DEFAULT 1 CHECK (graceful_restart IN (0, 1)),
    max_prefixes       INTEGER CHECK (max_prefixes IS NULL OR max_prefixes >= 1),
    labels             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    enabled            INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    description        TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- Multihop TTL and GTSM are two answers to the same question; a peer has at most one.
    CHECK (ebgp_multihop IS NULL OR ttl_security IS NULL)
) STRICT;

-- Hosts that traffic is sent to: the next hops of LoadBalancer routes.
CREATE TABLE nodes (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE
               CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),
    labels     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- A node's addresses (IPv4 and/or IPv6). An address belongs to one node only.
CREATE TABLE node_addresses (
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    family  TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    address TEXT    NOT NULL UNIQUE,
    PRIMARY KEY (node_id, address)
) STRICT;

-- Address pools that LoadBalancer allocations draw from.
CREATE TABLE pools (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE
                         CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),
    description          TEXT    NOT NULL DEFAULT '',
    -- Labels an allocation must carry to draw from this pool.
    service_selector     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(service_selector) AND json_type(service_selector) = 'object'),
    -- Which nodes serve "cluster" allocations from this pool.
    node_selector        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(node_selector) AND json_type(node_selector) = 'object'),
    -- NULL: the default rule (IPv4 blocks shorter than /31 skip network and broadcast addresses).
    allow_first_last_ips INTEGER CHECK (allow_first_last_ips IS NULL OR allow_first_last_ips IN (0, 1)),
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Announce attributes: communities, large_communities, local_pref, med, as_path_prepend,
    -- peer_selector, aggregation_length.
    announce             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(announce) AND json_type(announce) = 'object'),
    labels               TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

-- The address blocks of a pool: a CIDR or a first–last range. Blocks never overlap, in any pool.
CREATE TABLE pool_blocks (
    id        INTEGER PRIMARY KEY,
    pool_id   INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    family    TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    -- The block as the operator wrote it ("192.0.2.0/24" or "192.0.2.10-192.0.2.20").
    block     TEXT    NOT NULL,
    first     TEXT    NOT NULL,
    last      TEXT    NOT NULL,
    first_key BLOB    NOT NULL,
    last_key  BLOB    NOT NULL,
    CHECK (length(first_key) = (CASE family WHEN 'ipv4' THEN 4 ELSE 16 END)),
    CHECK (length(last_key) = length(first_key)),
    CHECK (first_key <= last_key)
) STRICT;

CREATE INDEX pool_blocks_by_pool ON pool_blocks (pool_id);
CREATE INDEX pool_blocks_by_range ON pool_blocks (family, first_key, last_key);

CREATE TRIGGER pool_blocks_no_overlap_insert BEFORE INSERT ON pool_blocks
WHEN EXISTS (SELECT 1 FROM pool_blocks b
             WHERE b.family = NEW.family AND b.first_key <= NEW.last_key AND NEW.first_key <= b.last_key)
BEGIN
    SELECT RAISE(ABORT, 'pool block overlaps an existing block');
END;

CREATE TRIGGER pool_blocks_no_overlap_update BEFORE UPDATE OF family, first_key, last_key ON pool_blocks
WHEN EXISTS (SELECT 1 FROM pool_blocks b
             WHERE b.id <> NEW.id AND b.family = NEW.family
               AND b.first_key <= NEW.last_key AND NEW.first_key <= b.last_key)
BEGIN
    SELECT RAISE(ABORT, 'pool block overlaps an existing block');
END;

-- LoadBalancer allocations, named by the caller (convention: namespace.service).
CREATE TABLE allocations (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE
                      CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),
    -- A pool with allocations cannot be deleted: RESTRICT.
    pool_id           INTEGER NOT NULL REFERENCES pools (id) ON DELETE RESTRICT,
    family            TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6', 'dual')),
    -- Allocations with the same sharing key may share an address (several Services on one IP).
    sharing_key       TEXT    CHECK (sharing_key IS NULL OR length(sharing_key) BETWEEN 1 AND 253),
    -- cluster: next hops are the pool's nodes; local: the nodes listed in allocation_nodes.
    traffic_policy    TEXT    NOT NULL DEFAULT 'cluster' CHECK (traffic_policy IN ('cluster', 'local')),
    labels            TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX allocations_by_pool ON allocations (pool_id);

-- The addresses held by an allocation: one, or one per family for dual stack.
CREATE TABLE allocation_addresses (
    allocation_id INTEGER NOT NULL REFERENCES allocations (id) ON DELETE CASCADE,
    -- A block holding allocated addresses cannot be removed: RESTRICT.
    pool_block_id INTEGER NOT NULL REFERENCES pool_blocks (id) ON DELETE RESTRICT,
    family        TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    address       TEXT    NOT NULL,
    address_key   BLOB    NOT NULL CHECK (length(address_key) = (CASE family WHEN 'ipv4' THEN 4 ELSE 16 END)),
    -- Requested explicitly by the caller (kept on re-allocation) rather than picked by IPAM.
    requested     INTEGER NOT NULL DEFAULT 0 CHECK (requested IN (0, 1)),
    PRIMARY KEY (allocation_id, family)
) STRICT;

CREATE INDEX allocation_addresses_by_address ON allocation_addresses (address_key);
CREATE INDEX allocation_addresses_by_block ON allocation_addresses (pool_block_id);

-- An address is held by one allocation, or by several that all carry the same sharing key.
CREATE TRIGGER allocation_addresses_unique_insert BEFORE INSERT ON allocation_addresses
WHEN EXISTS (SELECT 1 FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
             WHERE x.address_key = NEW.address_key AND x.allocation_id <> NEW.allocation_id
               AND (a.sharing_key IS NULL
                    OR (SELECT sharing_key FROM allocations WHERE id = NEW.allocation_id) IS NULL
                    OR a.sharing_key <> (SELECT sharing_key FROM allocations WHERE id = NEW.allocation_id)))
BEGIN
    SELECT RAISE(ABORT, 'address is already allocated');
END;

CREATE TRIGGER allocation_addresses_unique_update BEFORE UPDATE OF address_key, allocation_id ON allocation_addresses
WHEN EXISTS (SELECT 1 FROM allocation_addresses x JOIN allocations a ON a.id = x.allocation_id
             WHERE x.address_key = NEW.address_key AND x.allocation_id <> NEW.allocation_id
               AND (a.sharing_key IS NULL
                    OR (SELECT sharing_key FROM allocations WHERE id = NEW.allocation_id) IS NULL
                    OR a.sharing_key <> (SELECT sharing_key FROM allocations WHERE id = NEW.allocation_id)))
BEGIN
    SELECT RAISE(ABORT, 'address is already allocated');
END;

-- Changing a sharing key must not leave an address shared by allocations with different keys.
CREATE TRIGGER allocations_sharing_key_update BEFORE UPDATE OF sharing_key ON allocations
WHEN EXISTS (SELECT 1 FROM allocation_addresses mine
             JOIN allocation_addresses other ON other.address_key = mine.address_key AND other.allocation_id <> mine.allocation_id
             JOIN allocations a ON a.id = other.allocation_id
             WHERE mine.allocation_id = NEW.id
               AND (NEW.sharing_key IS NULL OR a.sharing_key IS NULL OR a.sharing_key <> NEW.sharing_key))
BEGIN
    SELECT RAISE(ABORT, 'address is already allocated');
END;

-- An allocated address lies inside its block, and the block belongs to the allocation's pool.
CREATE TRIGGER allocation_addresses_in_block_insert BEFORE INSERT ON allocation_addresses
WHEN NOT EXISTS (SELECT 1 FROM pool_blocks b JOIN allocations a ON a.pool_id = b.pool_id
                 WHERE b.id = NEW.pool_block_id AND a.id = NEW.allocation_id AND b.family = NEW.family
                   AND b.first_key <= NEW.address_key AND NEW.address_key <= b.last_key)
BEGIN
    SELECT RAISE(ABORT, 'address is outside its pool block');
END;

CREATE TRIGGER allocation_addresses_in_block_update BEFORE UPDATE ON allocation_addresses
WHEN NOT EXISTS (SELECT 1 FROM pool_blocks b JOIN allocations a ON a.pool_id = b.pool_id
                 WHERE b.id = NEW.pool_block_id AND a.id = NEW.allocation_id AND b.family = NEW.family
                   AND b.first_key <= NEW.address_key AND NEW.address_key <= b.last_key)
BEGIN
    SELECT RAISE(ABORT, 'address is outside its pool block');
END;

-- A block cannot shrink away from, or move away from, an address it has handed out.
CREATE TRIGGER pool_blocks_keep_allocations BEFORE UPDATE OF first_key, last_key, family, pool_id ON pool_blocks
WHEN EXISTS (SELECT 1 FROM allocation_addresses x
             WHERE x.pool_block_id = NEW.id
               AND (x.family <> NEW.family OR x.address_key < NEW.first_key OR x.address_key > NEW.last_key
                    OR NEW.pool_id <> OLD.pool_id))
BEGIN
    SELECT RAISE(ABORT, 'pool block still holds allocated addresses');
END;

-- Moving an allocation to another pool must move its addresses too.
CREATE TRIGGER allocations_pool_update BEFORE UPDATE OF pool_id ON allocations
WHEN EXISTS (SELECT 1 FROM allocation_addresses x JOIN pool_blocks b ON b.id = x.pool_block_id
             WHERE x.allocation_id = NEW.id AND b.pool_id <> NEW.pool_id)
BEGIN
    SELECT RAISE(ABORT, 'allocation still holds addresses of its old pool');
END;

-- Nodes an allocation with traffic_policy "local" sends traffic to. A node in use cannot be
-- deleted: RESTRICT.
CREATE TABLE allocation_nodes (
    allocation_id INTEGER NOT NULL REFERENCES allocations (id) ON DELETE CASCADE,
    node_id       INTEGER NOT NULL REFERENCES nodes (id) ON DELETE RESTRICT,
    PRIMARY KEY (allocation_id, node_id)
) STRICT;

CREATE INDEX allocation_nodes_by_node ON allocation_nodes (node_id);

-- Static prefixes Herald originates (pod CIDRs and the like).
CREATE TABLE routes (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE
               CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),
    family     TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    prefix     TEXT    NOT NULL UNIQUE,
    -- JSON array of "self", node names or literal addresses.
    next_hops  TEXT    NOT NULL DEFAULT '["self"]'
               CHECK (json_valid(next_hops) AND json_type(next_hops) = 'array' AND json_array_length(next_hops) >= 1),
    announce   TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(announce) AND json_type(announce) = 'object'),
    labels     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- History of every announce, withdraw and path change. No foreign keys: history outlives the
-- objects it talks about. AUTOINCREMENT keeps ids monotonic for cursors and SSE Last-Event-ID.
CREATE TABLE route_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('announce', 'withdraw', 'update')),
    prefix     TEXT    NOT NULL,
    family     TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    -- Where the route comes from: ("allocation", name), ("static", name), …
    source     TEXT    NOT NULL CHECK (source IN ('allocation', 'static')),
    source_name TEXT   NOT NULL,
    -- JSON array of paths (next hop and attributes) after the change; [] for a withdraw.
    paths      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(paths) AND json_type(paths) = 'array'),
    reason     TEXT    NOT NULL,
    request_id TEXT
) STRICT;

CREATE INDEX route_events_by_prefix ON route_events (prefix, id);
CREATE INDEX route_events_by_time ON route_events (at);

-- History of BGP sessions: state changes with the reason in words and any NOTIFICATION.
CREATE TABLE peer_events (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    at                   INTEGER NOT NULL,
    peer                 TEXT    NOT NULL,
    kind                 TEXT    NOT NULL CHECK (kind IN ('established', 'down', 'state', 'config', 'max_prefix')),
    from_state           TEXT,
    to_state             TEXT,
    reason               TEXT    NOT NULL,
    notification_code    INTEGER CHECK (notification_code IS NULL OR notification_code BETWEEN 1 AND 255),
    notification_subcode INTEGER CHECK (notification_subcode IS NULL OR notification_subcode BETWEEN 0 AND 255),
    notification_text    TEXT,
    -- Whether Herald sent the NOTIFICATION or received it.
    notification_direction TEXT CHECK (notification_direction IS NULL OR notification_direction IN ('sent', 'received')),
    CHECK ((notification_code IS NULL) = (notification_direction IS NULL))
) STRICT;

CREATE INDEX peer_events_by_peer ON peer_events (peer, id);
CREATE INDEX peer_events_by_time ON peer_events (at);
