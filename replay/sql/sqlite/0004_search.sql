-- Support staff search: newest first, by state, partner, source, key, applicant reference.
CREATE INDEX exchanges_state ON exchanges (state, id);
CREATE INDEX exchanges_target ON exchanges (target, id);
CREATE INDEX exchanges_source ON exchanges (source, id);
CREATE INDEX exchanges_key ON exchanges (idempotency_key);

-- Applicant references as keyed hashes (HMAC-SHA256): findable, never stored in clear.
CREATE TABLE exchange_refs (
    ref          BLOB NOT NULL,
    exchange_id  TEXT NOT NULL,
    PRIMARY KEY (ref, exchange_id)
) WITHOUT ROWID;
