-- The chain head signed with the journal's MAC key, and the digest of the row a write leaves
-- (see replay/sql/sqlite/0009_signed_head.sql).
ALTER TABLE chain_head ADD COLUMN mac bytea;
ALTER TABLE events ADD COLUMN state bytea;
