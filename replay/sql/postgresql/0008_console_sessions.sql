-- The console's sessions (replay/sessions.py; as SQLite's 0012).
CREATE TABLE console_sessions (
    token_hash  bytea PRIMARY KEY,
    principal   text NOT NULL,
    role        text NOT NULL,
    expires_at  double precision NOT NULL
);
