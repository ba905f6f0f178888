-- The chain head, signed with the journal's MAC key in every transaction that appends events
-- (replay/chain.py, replay/seal.py): whoever cuts events from the end, appends one or recomputes
-- the chain after an edit cannot sign the head that would make it look whole. mac is NULL until
-- the journal first opens with keys (an unkeyed journal leaves it NULL).
CREATE TABLE chain_head (
    only_row  INTEGER PRIMARY KEY CHECK (only_row = 1),
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    mac       BLOB
);
INSERT INTO chain_head (only_row, seq, hash)
    SELECT 1, coalesce(max(seq), 0),
           coalesce((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), zeroblob(32))
    FROM events;
-- The digest of what a reader is shown of the exchange's row (or of a refusal) after the write
-- this event belongs to: verify checks the rows against the chain (replay/audit.py).
ALTER TABLE events ADD COLUMN state BLOB;
