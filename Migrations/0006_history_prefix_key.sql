-- Issue #16: GET /v1/history?prefix= finds the events inside a prefix through an index. Before,
-- it read route_events in id order and tested each row's prefix in Swift until it had a page: a
-- rare prefix among a million rows read all million.
--
-- prefix_key orders prefixes so that the ones inside any prefix P form one range of keys: a
-- family tag (4 or 6), the network address (4 or 16 bytes, network order, like the *_key columns
-- of 0001) and the length (one byte). SQLite compares BLOBs with memcmp(), so "inside P" is
-- prefix_key BETWEEN two keys computed from P (RouteHistory.PrefixKey says why that range holds
-- exactly the prefixes inside P). SQL cannot parse IPv6 text, so Herald computes the key: new
-- rows carry it, and rows written before this migration are filled in after start, a batch per
-- commit. Until then their key is NULL and the history query tests those rows' prefix itself.
ALTER TABLE route_events ADD COLUMN prefix_key BLOB
    CHECK (prefix_key IS NULL OR length(prefix_key) = (CASE family WHEN 'ipv4' THEN 6 ELSE 18 END));

-- Per key in id order: a host's page is one seek. NULLs sort first, so the rows still to fill
-- (and to test by their text) are found without a scan.
CREATE INDEX route_events_by_key ON route_events (prefix_key, id);

-- No query looks a row up by its prefix text: the key index takes this one's place, so a bulk load
-- of a million routes still maintains two indexes on the history, not three.
DROP INDEX route_events_by_prefix;
