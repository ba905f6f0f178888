-- The console's sessions (replay/sessions.py): every worker and instance sharing this journal
-- knows them. Only the SHA-256 of a session's token is kept. Outside the hash chain.
CREATE TABLE console_sessions (
    token_hash  BLOB PRIMARY KEY,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;
