-- BFD with BGP peers (RFC 5880 asynchronous mode, RFC 5881 single hop): per-peer settings.
-- Intervals are milliseconds. RFC 5880 §6.8.3 lets implementations refuse intervals they cannot
-- keep; Herald runs BFD on its event loop, so 10 ms is the floor. Detect Mult is 1–255 (§4.1).
ALTER TABLE peers ADD COLUMN bfd_enabled    INTEGER NOT NULL DEFAULT 0   CHECK (bfd_enabled IN (0, 1));
ALTER TABLE peers ADD COLUMN bfd_min_tx     INTEGER NOT NULL DEFAULT 300 CHECK (bfd_min_tx BETWEEN 10 AND 60000);
ALTER TABLE peers ADD COLUMN bfd_min_rx     INTEGER NOT NULL DEFAULT 300 CHECK (bfd_min_rx BETWEEN 10 AND 60000);
ALTER TABLE peers ADD COLUMN bfd_multiplier INTEGER NOT NULL DEFAULT 3   CHECK (bfd_multiplier BETWEEN 1 AND 255);
