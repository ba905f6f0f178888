-- The PostgreSQL journal: the tables of replay/sql/sqlite (0001–0005 there) in one migration.
-- Columns keep SQLite's names, order and meaning: times are epoch seconds (double precision) and
-- JSON is stored as the exact orjson bytes (bytea), so the hash chain hashes the same values and an
-- archive written from either backend is the same file.

-- Exchanges: the current state of each application on its way (one row each, updated in place).
CREATE TABLE exchanges (
    id               text COLLATE "C" PRIMARY KEY,  -- ULID: bytewise order is creation order
    direction        text NOT NULL,
    source           text NOT NULL,
    target           text NOT NULL,
    service          text NOT NULL,
    idempotency_key  text NOT NULL,
    request_hash     text NOT NULL,
    state            text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  double precision,
    lease_owner      text,
    lease_until      double precision,
    mapping_versions bytea,
    receipt          bytea,
    last_error       bytea,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    -- The end state still to be announced to the source's callback; NULL when nothing is pending.
    notify_state     text,
    notify_attempts  integer NOT NULL DEFAULT 0,
    notify_at        double precision,
    CONSTRAINT exchanges_idempotency UNIQUE (source, idempotency_key)
) WITH (fillfactor = 90);  -- room on each page for those HOT updates

-- Work that is not finished, walked oldest first by claim() (which judges leases by expiry alone);
-- retries by their due time. Unlike SQLite's exchanges_open this is on id, not lease_until: the
-- planner otherwise walks the primary key past every ended exchange to find the oldest open one,
-- and with no index on the lease columns, lease claims and heartbeats can be HOT updates.
CREATE INDEX exchanges_open ON exchanges (id)
    WHERE state IN ('received', 'queued', 'delivering');
CREATE INDEX exchanges_retry ON exchanges (next_attempt_at) WHERE state = 'retry_wait';
CREATE INDEX exchanges_notify ON exchanges (notify_at) WHERE notify_state IS NOT NULL;
CREATE INDEX exchanges_closed ON exchanges (updated_at)
    WHERE state IN ('delivered', 'failed', 'rejected');

-- Support staff search: newest first, by state, partner, source, key.
CREATE INDEX exchanges_state ON exchanges (state, id);
CREATE INDEX exchanges_target ON exchanges (target, id);
CREATE INDEX exchanges_source ON exchanges (source, id);
CREATE INDEX exchanges_key ON exchanges (idempotency_key);

-- Applicant references as keyed hashes (HMAC-SHA256, see replay/refs.py): never stored in clear.
CREATE TABLE exchange_refs (
    ref          bytea NOT NULL,
    exchange_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (ref, exchange_id)
);

-- Events: append-only history; the payloads (application, mapped request, replies) live here.
-- seq is gapless, given out under the chain head's row lock (no sequence: a rolled-back
-- transaction would leave a gap that verify reports as a deleted event). Archived events stay as
-- tombstones (no data, same hash) so the chain still links; their content is in the archive file.
CREATE TABLE events (
    seq          bigint PRIMARY KEY,
    exchange_id  text COLLATE "C" NOT NULL,  -- no foreign key: archived exchanges leave tombstones
    at           double precision NOT NULL,
    kind         text NOT NULL,
    data         bytea NOT NULL,
    hash         bytea NOT NULL,
    archived     boolean NOT NULL DEFAULT false
);
CREATE INDEX events_exchange ON events (exchange_id, seq);

-- The end of the hash chain (replay/chain.py). Every transaction that appends events locks this
-- one row last, so the events of every broker instance form one sequence.
CREATE TABLE chain_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);
INSERT INTO chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- Intake requests we refused (malformed, unknown partner, too large …), so none vanishes unrecorded.
CREATE TABLE refusals (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               double precision NOT NULL,
    remote           text NOT NULL,
    method           text NOT NULL,
    path             text NOT NULL,
    status           integer NOT NULL,
    problem          text NOT NULL,
    detail           text NOT NULL,
    idempotency_key  text,
    body             bytea NOT NULL,
    body_bytes       integer NOT NULL
);
