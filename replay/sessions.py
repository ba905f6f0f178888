"""The console's sign-in sessions, kept in the journal so that every worker and every instance
sharing it knows them (a browser's next request may reach another process).

Only the SHA-256 of a session's token is stored: whoever reads the journal cannot sign in with
what they find. Nor can whoever writes to it: the token carries an HMAC of who signed in, their role
and when the session ends, under the journal's MAC key, which lives outside the journal
(``replay/keys.py``), so a row added or changed in the database signs nobody in (an unkeyed
PostgreSQL journal has no such key). A row holds who signed in (principal id and role) and when
the session ends; ending one (sign-out) deletes its row; expired rows are dropped when a new
session opens. This is
operational state, outside the hash chain (sign-ins and sign-outs are audited there).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class StoredSession:
    """A live session as the journal keeps it (its token only as a hash)."""

    token_hash: bytes
    principal: str
    role: str
    expires_at: float


MAC_TAG = b"tongban/console-session"
COLUMNS = "token_hash, principal, role, expires_at"
INSERT_SQLITE = f"INSERT INTO console_sessions ({COLUMNS}) VALUES (?, ?, ?, ?)"
INSERT_PG = f"INSERT INTO console_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4)"
PURGE_SQLITE = "DELETE FROM console_sessions WHERE expires_at <= ?"
PURGE_PG = "DELETE FROM console_sessions WHERE expires_at <= $1"
GET_SQLITE = f"SELECT {COLUMNS} FROM console_sessions WHERE token_hash = ? AND expires_at > ?"
GET_PG = f"SELECT {COLUMNS} FROM console_sessions WHERE token_hash = $1 AND expires_at > $2"
END_SQLITE = "DELETE FROM console_sessions WHERE token_hash = ?"
END_PG = "DELETE FROM console_sessions WHERE token_hash = $1"


def values(s: StoredSession) -> tuple[Any, ...]:
    return (s.token_hash, s.principal, s.role, s.expires_at)


def of_row(row: Any) -> StoredSession:
    return StoredSession(
        token_hash=bytes(row["token_hash"]),
        principal=row["principal"],
        role=row["role"],
        expires_at=float(row["expires_at"]),
    )


def sqlite_open(conn: sqlite3.Connection, session: StoredSession, now: float) -> None:
    conn.execute(PURGE_SQLITE, (now,))
    conn.execute(INSERT_SQLITE, values(session))


def sqlite_get(conn: sqlite3.Connection, token_hash: bytes, now: float) -> StoredSession | None:
    row = conn.execute(GET_SQLITE, (token_hash, now)).fetchone()
    return None if row is None else of_row(row)
