-- Exchanges: the current state of each application on its way (one row each, updated in place).
CREATE TABLE exchanges (
    id               TEXT PRIMARY KEY,
    direction        TEXT NOT NULL,
    source           TEXT NOT NULL,
    target           TEXT NOT NULL,
    service          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    lease_owner      TEXT,
    lease_until      REAL,
    mapping_versions BLOB,
    receipt          BLOB,
    last_error       BLOB,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (source, idempotency_key)
) WITHOUT ROWID;

-- Work that is not finished, found by lease expiry alone.
CREATE INDEX exchanges_open ON exchanges (lease_until)
    WHERE state IN ('received', 'queued', 'delivering');
CREATE INDEX exchanges_retry ON exchanges (next_attempt_at) WHERE state = 'retry_wait';

-- Events: append-only history; the payloads (application, mapped request, replies) live here.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange_id  TEXT NOT NULL,  -- no foreign key: archived exchanges leave event tombstones
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX events_exchange ON events (exchange_id, seq);

-- Intake requests we refused (malformed, unknown partner, too large …), so none vanishes unrecorded.
CREATE TABLE refusals (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    at               REAL NOT NULL,
    remote           TEXT NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    status           INTEGER NOT NULL,
    problem          TEXT NOT NULL,
    detail           TEXT NOT NULL,
    idempotency_key  TEXT,
    body             BLOB NOT NULL,
    body_bytes       INTEGER NOT NULL
);
