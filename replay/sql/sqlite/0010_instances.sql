-- The broker instances sharing this journal and the configuration version each serves
-- (replay/instances.py): replaced at each announcement, outside the hash chain.
CREATE TABLE instances (
    id              TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    config_version  TEXT NOT NULL,
    started_at      REAL NOT NULL,
    seen_at         REAL NOT NULL
) WITHOUT ROWID;
