-- "failed for one partner, newest first" must not walk every exchange of a partner that rarely
-- fails (see replay/sql/sqlite/0006_state_target.sql and bench/journal.py).
CREATE INDEX exchanges_state_target ON exchanges (state, target, id);
