"""What the journal holds, counted for monitoring, and the hook that times its commits.

Counts come from the journal itself, so every instance on one PostgreSQL database reports the
same numbers (a dashboard takes the ``max`` across instances, never the ``sum``): exchanges per
state, partner and service, the oldest unfinished exchange per partner, and the callbacks still
owed to sources. The memory backend counts in Python. SQLite and PostgreSQL keep the counts by
state, partner and service in tables their triggers write, so no tally groups every exchange, and
share the rest of the SQL.

PostgreSQL's triggers only append changes (migration 0009): a count is the last folded in plus
the changes since, and a tally that finds more than COMPACT_AFTER changes folds them in
(:func:`pg_compact`).

Commit timing is per instance: each backend's writer calls :func:`committed` once per committed
batch (its duration and how many writes it held); a broker subscribes for its own journal with
:func:`observe_commits`. The hook costs one clock read per batch, not per write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from federation.domain.errors import JournalUnavailable
from federation.domain.models import Exchange, State

# Not ended: the partner still has to see them (held, due, or on the wire).
WAITING = (State.RECEIVED, State.QUEUED, State.DELIVERING, State.RETRY_WAIT)
_WAITING_SQL = ", ".join(f"'{s.value}'" for s in WAITING)

BY_STATE_SQL = (
    "SELECT state, target, service, count(*) FROM exchanges GROUP BY state, target, service"
)
OLDEST_SQL = (
    f"SELECT target, min(created_at) FROM exchanges WHERE state IN ({_WAITING_SQL}) GROUP BY target"
)
CALLBACKS_SQL = "SELECT count(*) FROM exchanges WHERE notify_state IS NOT NULL"
# SQLite keeps the counts in a table its triggers maintain (migration 0014): a few dozen rows to
# read where BY_STATE_SQL groups every exchange.
COUNTED_SQLITE = "SELECT state, target, service, n FROM exchange_counts WHERE n > 0"
STATES_SQLITE = "SELECT state, sum(n) FROM exchange_counts GROUP BY state HAVING sum(n) > 0"

# PostgreSQL's counts: those last folded in plus the changes appended since (migration 0009); the
# last column is how many changes. One statement, so one snapshot: it sees a concurrent
# pg_compact entirely or not at all.
COUNTED_PG = """
SELECT state, target, service, sum(n)::bigint, sum(changes)::bigint FROM (
    SELECT state, target, service, n, 0 AS changes FROM exchange_counts
    UNION ALL
    SELECT state, target, service, n, 1 FROM exchange_count_changes
) AS counted GROUP BY state, target, service"""
# Exchanges per state, the same way (Journal.counts: /v1/stats and the console).
STATES_PG = """
SELECT state, sum(n)::bigint FROM (
    SELECT state, n FROM exchange_counts UNION ALL SELECT state, n FROM exchange_count_changes
) AS counted GROUP BY state HAVING sum(n) > 0"""
COMPACT_AFTER = 2000  # changes a tally adds up before it folds them into exchange_counts
# One compaction at a time per schema; the others skip it rather than wait. The first key tells
# these locks from any other advisory lock on the database.
COMPACT_LOCK = "SELECT pg_try_advisory_xact_lock(1953459815, hashtext(current_schema()))"
# Deletes the changes its snapshot sees and adds exactly those, in one transaction: a change
# committed meanwhile is neither deleted nor added, and waits for the next compaction.
COMPACT = """
WITH folded AS (
    DELETE FROM exchange_count_changes RETURNING state, target, service, n
)
INSERT INTO exchange_counts AS c (state, target, service, n)
    SELECT state, target, service, sum(n) FROM folded GROUP BY state, target, service
    ON CONFLICT (state, target, service) DO UPDATE SET n = c.n + excluded.n"""
DROP_EMPTY = "DELETE FROM exchange_counts WHERE n = 0"


@dataclass(frozen=True, kw_only=True)
class Tally:
    """A snapshot of the journal's contents for /metrics."""

    exchanges: Mapping[tuple[str, str, str], int] = field(
        default_factory=dict
    )  # (state, partner, service)
    oldest_waiting: Mapping[str, float] = field(default_factory=dict)  # partner → created_at
    callbacks_pending: int = 0


def from_rows(
    by_state: Iterable[tuple[str, str, str, int]],
    oldest: Iterable[tuple[str, float]],
    callbacks: int,
) -> Tally:
    """The tally of the three queries' rows."""
    return Tally(
        exchanges={(str(s), str(p), str(v)): int(n) for s, p, v, n in by_state},
        oldest_waiting={str(p): float(at) for p, at in oldest if at is not None},
        callbacks_pending=int(callbacks),
    )


def of_exchanges(exchanges: Iterable[Exchange], notify_pending: int) -> Tally:
    """The tally of exchanges held in memory (the memory backend)."""
    counts: dict[tuple[str, str, str], int] = {}
    oldest: dict[str, float] = {}
    for ex in exchanges:
        key = (ex.state.value, ex.target, ex.service)
        counts[key] = counts.get(key, 0) + 1
        if ex.state in WAITING:
            oldest[ex.target] = min(oldest.get(ex.target, ex.created_at), ex.created_at)
    return Tally(exchanges=counts, oldest_waiting=oldest, callbacks_pending=notify_pending)


CommitObserver = Callable[[float, int], None]  # (seconds, writes in the batch)
_observers: dict[int, list[CommitObserver]] = {}
_lock = threading.Lock()


def observe_commits(journal: object, observer: CommitObserver) -> Callable[[], None]:
    """Call ``observer`` after each batch ``journal`` commits (from its writer, possibly a thread);
    returns the function that stops it."""
    key = id(journal)
    with _lock:
        _observers.setdefault(key, []).append(observer)

    def stop() -> None:
        with _lock:
            found = _observers.get(key, [])
            if observer in found:
                found.remove(observer)
            if not found:
                _observers.pop(key, None)

    return stop


def committed(journal: object, seconds: float, writes: int) -> None:
    """Tell ``journal``'s observers that a batch of ``writes`` committed in ``seconds``."""
    found = _observers.get(id(journal))
    if not found:
        return
    for observer in tuple(found):
        observer(seconds, writes)


def sqlite_tally(conn: Any) -> Tally:
    """The tally on a SQLite connection (run on the journal's reader thread)."""
    return from_rows(
        conn.execute(COUNTED_SQLITE).fetchall(),
        conn.execute(OLDEST_SQL).fetchall(),
        conn.execute(CALLBACKS_SQL).fetchone()[0],
    )


async def pg_tally(conn: Any) -> Tally:
    """The tally on a PostgreSQL connection (outside a transaction); folds the changes into the
    counts when more than COMPACT_AFTER have piled up."""
    counted = await conn.fetch(COUNTED_PG)
    result = from_rows(
        [(s, p, v, n) for s, p, v, n, _ in counted if n > 0],
        [tuple(r) for r in await conn.fetch(OLDEST_SQL)],
        await conn.fetchval(CALLBACKS_SQL),
    )
    if sum(r[4] for r in counted) > COMPACT_AFTER:
        await pg_compact(conn)
    return result


async def pg_compact(conn: Any) -> int | None:
    """Fold the changes appended so far into exchange_counts, in a transaction of its own; how
    many groups that changed, or None when another connection is at it (this one does not wait)."""
    async with conn.transaction():
        if not await conn.fetchval(COMPACT_LOCK):
            return None
        status = await conn.execute(COMPACT)
        await conn.execute(DROP_EMPTY)
    return int(status.split()[-1])


# Whether the counting trigger's function names the schema it lives in: migration 0009 writes the
# journal's schema into it, so a schema renamed since would count into the old name (failing every
# write, or counting into another journal that took that name).
COUNTING_IN_PLACE = """
SELECT coalesce(bool_and(position(format('%I.exchange_count_changes', current_schema())
                                  IN p.prosrc) > 0), true)
FROM pg_proc p
WHERE p.proname = 'exchange_count_change' AND p.pronamespace = to_regnamespace(current_schema())"""


def counting_function() -> str:
    """Migration 0009's statement that makes the counting function, as CREATE OR REPLACE: one
    text for the migration and the repair, so they cannot drift apart."""
    sql = resources.files("replay").joinpath("sql/postgresql/0009_counts.sql")
    text = sql.read_text(encoding="utf-8")
    start = text.index("DO $migration$")
    end = text.index("$migration$;", start + len("DO $migration$")) + len("$migration$;")
    return text[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


async def pg_count_in_place(conn: Any, where: str) -> None:
    """At open and migrate: the counting function made again for the schema it is in when it
    names another (the schema was renamed). Needs the function's owner, like a migration."""
    from asyncpg import PostgresError  # only PostgreSQL journals come here

    if await conn.fetchval(COUNTING_IN_PLACE):
        return
    try:
        await conn.execute(counting_function())
    except PostgresError as exc:  # no right to replace it: say what to do
        raise JournalUnavailable(
            f"journal {where}: its counting trigger names another schema (was the schema "
            "renamed?); run tongban journal migrate as the schema's owner to make it count here"
        ) from exc
