-- Node health checks (issue #10).
--
-- A node may carry a health check: JSON {"kind": "tcp"|"http", "port", "path", "address",
-- "interval", "timeout" (both milliseconds), "rise", "fall"}, NULL when the node is not checked. Its result
-- (up/down) is runtime state kept in memory, not here: after a restart every node starts as
-- "unknown", which serves traffic until `fall` checks in a row fail.
ALTER TABLE nodes ADD COLUMN health_check TEXT
    CHECK (health_check IS NULL OR (json_valid(health_check) AND json_type(health_check) = 'object'));

-- fail_open: when every node that would serve an allocation of this pool is down, announce the
-- route on all of them anyway (as a load balancer with no healthy backend sends to all) instead
-- of withdrawing it.
ALTER TABLE pools ADD COLUMN fail_open INTEGER NOT NULL DEFAULT 0 CHECK (fail_open IN (0, 1));
