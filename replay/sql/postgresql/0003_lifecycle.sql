-- Where a delivered application stands at the partner, for search (see sqlite 0007).
ALTER TABLE exchanges ADD COLUMN lifecycle_state text COLLATE "C";
CREATE INDEX exchanges_lifecycle ON exchanges (lifecycle_state, id) WHERE lifecycle_state IS NOT NULL;
