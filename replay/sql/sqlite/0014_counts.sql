-- Exchanges counted by (state, partner, service), kept up to date by triggers in the same
-- transaction as the change, so /metrics reads a few dozen rows instead of grouping every
-- exchange (1.7 s on a journal of a million, on the reader thread that searches share).
-- A later migration that rebuilds `exchanges` drops these triggers with it and must make them
-- again (and count afresh, as here).
CREATE TABLE exchange_counts (
    state    TEXT NOT NULL,
    target   TEXT NOT NULL,
    service  TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (state, target, service)
) WITHOUT ROWID;

INSERT INTO exchange_counts (state, target, service, n)
    SELECT state, target, service, count(*) FROM exchanges GROUP BY state, target, service;

CREATE TRIGGER exchanges_count_insert AFTER INSERT ON exchanges
BEGIN
    INSERT INTO exchange_counts (state, target, service, n)
        VALUES (NEW.state, NEW.target, NEW.service, 1)
        ON CONFLICT (state, target, service) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER exchanges_count_delete AFTER DELETE ON exchanges
BEGIN
    UPDATE exchange_counts SET n = n - 1
        WHERE state = OLD.state AND target = OLD.target AND service = OLD.service;
END;

CREATE TRIGGER exchanges_count_update AFTER UPDATE OF state, target, service ON exchanges
    WHEN OLD.state IS NOT NEW.state OR OLD.target IS NOT NEW.target
        OR OLD.service IS NOT NEW.service
BEGIN
    UPDATE exchange_counts SET n = n - 1
        WHERE state = OLD.state AND target = OLD.target AND service = OLD.service;
    INSERT INTO exchange_counts (state, target, service, n)
        VALUES (NEW.state, NEW.target, NEW.service, 1)
        ON CONFLICT (state, target, service) DO UPDATE SET n = n + 1;
END;
