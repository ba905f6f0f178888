-- Exchanges counted by (state, partner, service) for /metrics, so a tally reads a few dozen rows
-- instead of grouping every exchange (see replay/tally.py and SQLite's 0014). One counter row per
-- group, as on SQLite, would be a row that every instance's writer, and archiving, lock until
-- commit. Instead the triggers only append changes (+1 / -1; INSERT takes no row lock anyone
-- waits for), a count is exchange_counts plus the sum of the changes not yet folded in, and a
-- tally folds them in now and then (replay/tally.py: pg_compact, which deletes the changes it
-- adds, in one transaction, under an advisory lock it only tries).

-- Exchanges counted when the changes were last folded in (written by pg_compact only).
CREATE TABLE exchange_counts (
    state    text NOT NULL,
    target   text NOT NULL,
    service  text NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (state, target, service)
);

-- Changes to the counts since: appended by the triggers, deleted once added to exchange_counts.
-- No index and no key: nothing looks a change up, the tally and pg_compact read them all.
CREATE TABLE exchange_count_changes (
    state    text NOT NULL,
    target   text NOT NULL,
    service  text NOT NULL,
    n        integer NOT NULL
);

-- Writers wait here until this transaction commits, so the count below misses none of their
-- changes and the triggers made below see every change after it.
LOCK TABLE exchanges IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO exchange_counts (state, target, service, n)
    SELECT state, target, service, count(*) FROM exchanges GROUP BY state, target, service;

-- Appends to the exchange_count_changes of the journal's own schema, named in the function when
-- it is made (the migration runs with the journal's schema first on its search_path): a session
-- with another search_path (SQL run by hand, another journal's schema in the same database)
-- still counts in the right place. Not pinned with SET search_path instead: in a loop of writes
-- on the server alone that made each call markedly dearer (a setting saved and restored per call).
DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION exchange_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO %1$I.exchange_count_changes VALUES (NEW.state, NEW.target, NEW.service, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO %1$I.exchange_count_changes VALUES (OLD.state, OLD.target, OLD.service, -1);
    ELSE
        INSERT INTO %1$I.exchange_count_changes
            VALUES (OLD.state, OLD.target, OLD.service, -1), (NEW.state, NEW.target, NEW.service, 1);
    END IF;
    RETURN NULL;
END
$$$function$, current_schema());
END
$migration$;

CREATE TRIGGER exchanges_count_insert AFTER INSERT ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchange_count_change();
CREATE TRIGGER exchanges_count_delete AFTER DELETE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchange_count_change();
CREATE TRIGGER exchanges_count_update AFTER UPDATE OF state, target, service ON exchanges
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.target IS DISTINCT FROM NEW.target
          OR OLD.service IS DISTINCT FROM NEW.service)
    EXECUTE FUNCTION exchange_count_change();
