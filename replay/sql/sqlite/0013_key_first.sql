-- Idempotency keys are unique per source as before, but the unique index now leads with the key:
-- it serves both a lookup by (source, key) and a search by key alone, so exchanges_key (an index
-- on the key alone, about 68 bytes per exchange) goes. SQLite cannot change a table's constraint
-- in place: the table is built again with the same columns, in the same order, and its indexes.
CREATE TABLE exchanges_new (
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
    notify_state     TEXT,
    notify_attempts  INTEGER NOT NULL DEFAULT 0,
    notify_at        REAL,
    lifecycle_state  TEXT,
    UNIQUE (idempotency_key, source)
) WITHOUT ROWID;
INSERT INTO exchanges_new (
    id, direction, source, target, service, idempotency_key, request_hash, state, attempts,
    next_attempt_at, lease_owner, lease_until, mapping_versions, receipt, last_error, created_at,
    updated_at, notify_state, notify_attempts, notify_at, lifecycle_state
)
SELECT
    id, direction, source, target, service, idempotency_key, request_hash, state, attempts,
    next_attempt_at, lease_owner, lease_until, mapping_versions, receipt, last_error, created_at,
    updated_at, notify_state, notify_attempts, notify_at, lifecycle_state
FROM exchanges;
DROP TABLE exchanges;
ALTER TABLE exchanges_new RENAME TO exchanges;
CREATE INDEX exchanges_open ON exchanges (lease_until)
    WHERE state IN ('received', 'queued', 'delivering');
CREATE INDEX exchanges_retry ON exchanges (next_attempt_at) WHERE state = 'retry_wait';
CREATE INDEX exchanges_notify ON exchanges (notify_at) WHERE notify_state IS NOT NULL;
CREATE INDEX exchanges_state ON exchanges (state, id);
CREATE INDEX exchanges_target ON exchanges (target, id);
CREATE INDEX exchanges_source ON exchanges (source, id);
CREATE INDEX exchanges_state_target ON exchanges (state, target, id);
CREATE INDEX exchanges_lifecycle ON exchanges (lifecycle_state, id) WHERE lifecycle_state IS NOT NULL;
CREATE INDEX exchanges_closed ON exchanges (updated_at)
    WHERE state IN ('delivered', 'failed', 'rejected', 'unconfirmed');
