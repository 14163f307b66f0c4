-- Cheaper CHECKs on the two tables a bulk load writes a million rows into (issue #7: a million
-- static routes through POST /v1/routes:batch in at most 10 s, durable commit included).
--
-- Every json_valid/json_type/json_array_length call parses the whole text again: three parses
-- per JSON column per row, about 0.8 s per column for a million rows; the name's GLOB class
-- '*[^a-z0-9._-]*' costs another 0.7 s. The rules stay the same:
--  * routes.name: the same characters, checked with trim() (below).
--  * routes: the defaults ('["self"]', '{}') are tested by equality first, so the common row
--    parses nothing; any other text is still checked exactly as in 0001.
--  * route_events: '[]' (a withdraw) by equality; other paths parse once (json_valid) and must
--    be a bracketed array, which Herald's encoder always writes without surrounding spaces.
-- SQLite cannot change a CHECK in place: each table is rebuilt (rows and ids kept, the
-- AUTOINCREMENT sequence of route_events carried over so history cursors stay monotonic).

CREATE TABLE routes_new (
    id         INTEGER PRIMARY KEY,
    -- trim() of every allowed character leaves nothing exactly when no other character is in the
    -- name: the rule of 0001 without GLOB '*[^…]*', which retries its class at every position.
    name       TEXT    NOT NULL UNIQUE
               CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*'
                      AND trim(name, '0123456789._-abcdefghijklmnopqrstuvwxyz') = ''),
    family     TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    prefix     TEXT    NOT NULL UNIQUE,
    -- JSON array of "self", node names or literal addresses.
    next_hops  TEXT    NOT NULL DEFAULT '["self"]'
               CHECK (next_hops = '["self"]'
                      OR (json_valid(next_hops) AND json_type(next_hops) = 'array' AND json_array_length(next_hops) >= 1)),
    announce   TEXT    NOT NULL DEFAULT '{}' CHECK (announce = '{}' OR (json_valid(announce) AND json_type(announce) = 'object')),
    labels     TEXT    NOT NULL DEFAULT '{}' CHECK (labels = '{}' OR (json_valid(labels) AND json_type(labels) = 'object')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

INSERT INTO routes_new (id, name, family, prefix, next_hops, announce, labels, created_at, updated_at)
    SELECT id, name, family, prefix, next_hops, announce, labels, created_at, updated_at FROM routes;
DROP TABLE routes;
ALTER TABLE routes_new RENAME TO routes;

CREATE TABLE route_events_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('announce', 'withdraw', 'update')),
    prefix     TEXT    NOT NULL,
    family     TEXT    NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    -- Where the route comes from: ("allocation", name), ("static", name), …
    source     TEXT    NOT NULL CHECK (source IN ('allocation', 'static')),
    source_name TEXT   NOT NULL,
    -- JSON array of paths (next hop and attributes) after the change; [] for a withdraw.
    paths      TEXT    NOT NULL DEFAULT '[]' CHECK (paths = '[]' OR (json_valid(paths) AND paths GLOB '[[]*]')),
    reason     TEXT    NOT NULL,
    request_id TEXT
) STRICT;

-- The sequence first: ids never go back, even past rows that retention already deleted.
INSERT INTO sqlite_sequence (name, seq) SELECT 'route_events_new', seq FROM sqlite_sequence WHERE name = 'route_events';
INSERT INTO route_events_new (id, at, action, prefix, family, source, source_name, paths, reason, request_id)
    SELECT id, at, action, prefix, family, source, source_name, paths, reason, request_id FROM route_events ORDER BY id;
DROP TABLE route_events;
ALTER TABLE route_events_new RENAME TO route_events;

CREATE INDEX route_events_by_prefix ON route_events (prefix, id);
CREATE INDEX route_events_by_time ON route_events (at);
