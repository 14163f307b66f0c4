-- Cluster mode (issue #20): several Herald replicas over one replicated database (dqlite), each
-- with its own in-memory route table and speaker.
--
-- replication_log: one row per committed batch, saying what it touched (prefixes, or all routes;
-- peers by name; the speaker row; nodes; node health), so every replica re-derives exactly that
-- from the database, in revision order. Written only in cluster mode; the single-file default
-- leaves it empty.
CREATE TABLE replication_log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    replica TEXT NOT NULL,
    prefixes BLOB,
    all_routes INTEGER NOT NULL DEFAULT 0 CHECK (all_routes IN (0, 1)),
    peers TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(peers) AND json_type(peers) = 'array'),
    speaker INTEGER NOT NULL DEFAULT 0 CHECK (speaker IN (0, 1)),
    nodes INTEGER NOT NULL DEFAULT 0 CHECK (nodes IN (0, 1)),
    health INTEGER NOT NULL DEFAULT 0 CHECK (health IN (0, 1))
) STRICT;

-- node_health: in cluster mode the health checks run on the leader only, and the state they find
-- is stored so that every replica announces the same next hops and a new leader starts from it
-- rather than from "all up". Rows name the node by text, like the history.
CREATE TABLE node_health (
    node TEXT PRIMARY KEY,
    down INTEGER NOT NULL CHECK (down IN (0, 1)),
    reason TEXT NOT NULL,
    since INTEGER NOT NULL
) STRICT;
