-- Autovacuum for exchanges by the work done, not by the journal's size. Each delivery moves an
-- exchange through three states, and every move leaves a dead row version and a dead entry in
-- most indexes: none of those updates can be HOT, since state and updated_at are in the keys or
-- predicates of the indexes that search, claim() and archive walk (exchanges_state,
-- exchanges_open, exchanges_closed …). claim() walks exchanges_open oldest first past every dead
-- entry left since the last vacuum. With PostgreSQL's default (vacuum at 20 % of the rows dead)
-- a journal of a million exchanges waits for 200,000 dead versions, about 67,000 deliveries;
-- with these settings, for 1 % of the rows plus 1,000. Vacuum itself skips the index pass while
-- few pages hold dead rows, so the extra runs mostly read the pages written since the last one.
ALTER TABLE exchanges SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
