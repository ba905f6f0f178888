-- The lifecycle steps written to each exchange (every write that sets lifecycle_state), so that
-- a write checked against a step can be refused when another step was written meanwhile, a step
-- to the same state too (a new correction round: StateChange.expect_steps). Bookkeeping outside
-- the row's digest (replay/rows.py EXEMPT). It starts at 0 for the exchanges there are: a guard
-- compares the count it read with the count at its write, never with the events, so any start
-- serves; no backfill from the events is needed.
ALTER TABLE exchanges ADD COLUMN lifecycle_steps bigint NOT NULL DEFAULT 0;
