-- "failed for one partner, newest first" must not walk every exchange of a partner that rarely
-- fails (bench/journal.py: 69x slower at 1M exchanges without this index).
CREATE INDEX exchanges_state_target ON exchanges (state, target, id);
