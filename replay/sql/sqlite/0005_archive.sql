-- Archived events stay as tombstones (seq, exchange, time, kind, hash) so the chain still links;
-- their content lives in the archive file, verifiable on its own.
ALTER TABLE events ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
CREATE INDEX exchanges_closed ON exchanges (updated_at) WHERE state IN ('delivered', 'failed', 'rejected');
