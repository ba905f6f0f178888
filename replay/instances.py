"""Which broker instances share a journal, and which configuration each one serves.

Every running broker announces itself (``Journal.announce``) when it starts, after each reload
and then every ``EVERY`` seconds; it withdraws when it stops cleanly. A row whose ``seen_at`` is
older than ``STALE`` announcements belongs to an instance that stopped without withdrawing (killed,
or its host lost). The console's overview shows them, so an operator sees at a glance whether every
instance serves the same configuration version after a rolling reload.

This is operational state, not history: it is not part of the hash chain, and an instance's row is
replaced at each announcement. No personal data is in it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

EVERY = 15.0  # seconds between announcements
STALE = 3  # announcements missed before an instance is shown as gone


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One broker instance as it last announced itself."""

    id: str  # its lease owner id (host:pid:suffix)
    host: str
    pid: int
    config_version: str
    started_at: float
    seen_at: float

    def running(self, now: float, every: float = EVERY) -> bool:
        """Whether it announced itself recently enough to count as running."""
        return now - self.seen_at <= every * STALE


COLUMNS = "id, host, pid, config_version, started_at, seen_at"


def values(i: Instance) -> tuple[Any, ...]:
    return (i.id, i.host, i.pid, i.config_version, i.started_at, i.seen_at)


def of_row(row: Any) -> Instance:
    return Instance(
        id=row["id"],
        host=row["host"],
        pid=int(row["pid"]),
        config_version=row["config_version"],
        started_at=float(row["started_at"]),
        seen_at=float(row["seen_at"]),
    )


# The same statements on both databases, with their placeholders.
UPSERT_SQLITE = (
    f"INSERT INTO instances ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET config_version = excluded.config_version, "
    "seen_at = excluded.seen_at"
)
UPSERT_PG = (
    f"INSERT INTO instances ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (id) DO UPDATE SET config_version = excluded.config_version, "
    "seen_at = excluded.seen_at"
)
SEEN_SQLITE = f"SELECT {COLUMNS} FROM instances WHERE seen_at >= ? ORDER BY host, pid, id"
SEEN_PG = f"SELECT {COLUMNS} FROM instances WHERE seen_at >= $1 ORDER BY host, pid, id"
WITHDRAW_SQLITE = "DELETE FROM instances WHERE id = ?"
WITHDRAW_PG = "DELETE FROM instances WHERE id = $1"
# Rows of instances gone for a day are dropped at the next announcement of any instance.
FORGET_AFTER = 86_400.0
FORGET_SQLITE = "DELETE FROM instances WHERE seen_at < ?"
FORGET_PG = "DELETE FROM instances WHERE seen_at < $1"


def sqlite_announce(conn: sqlite3.Connection, instance: Instance) -> None:
    conn.execute(UPSERT_SQLITE, values(instance))
    conn.execute(FORGET_SQLITE, (instance.seen_at - FORGET_AFTER,))


def sqlite_seen(conn: sqlite3.Connection, since: float) -> list[Instance]:
    return [of_row(r) for r in conn.execute(SEEN_SQLITE, (since,)).fetchall()]
