-- Where a delivered application stands at the partner (submitted, accepted, correction_required …),
-- so support staff can search by it.
ALTER TABLE exchanges ADD COLUMN lifecycle_state TEXT;
CREATE INDEX exchanges_lifecycle ON exchanges (lifecycle_state, id) WHERE lifecycle_state IS NOT NULL;
