"""The SQLite journal's SQL: migrations, history reading, archive candidates and tombstones, and
what an archive is checked against.

Kept apart from ``replay/sqlite.py`` (the Journal methods and the threads), as ``replay/pgsql.py``
is from ``replay/postgres.py``. Every function takes the connection of the caller's transaction
and none commits (except ``migrate``, which takes one transaction per file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from importlib import resources
from typing import Any

from federation.domain.models import Event, Exchange, StateChange
from replay import formats, inherited, lasterror, rekey, rows, rules, sets
from replay.archive import ArchivedExchange
from replay.audit import Audit
from replay.chain import Chain
from replay.journal import JournalEvent
from replay.rules import ENDED, in_list
from replay.seal import Seal
from replay.sets import MappingSets

AUDIT_CHUNK = 2000
EVENT_COLUMNS = "seq, exchange_id, at, kind, data, hash, archived, state"
# A draining instance gives up its leases (Journal.release): each statement walks an index (the
# states by exchanges_state, pending callbacks by exchanges_notify), never the whole table.
RELEASE = (
    "UPDATE exchanges SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
    " AND state IN ('received', 'queued', 'delivering', 'retry_wait')",
    "UPDATE exchanges SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
    " AND notify_state IS NOT NULL",
)


def history(conn: sqlite3.Connection, exchange_id: str, seal: Seal) -> tuple[Event, ...]:
    """The live events of one exchange, in order (tombstones are in an archive file)."""
    cur = conn.execute(
        "SELECT seq, at, kind, data FROM events WHERE exchange_id = ? AND archived = 0"
        " AND kind <> ? ORDER BY seq",
        (exchange_id, rows.STATE),
    )
    return tuple(rows.event(exchange_id, r, seal) for r in cur.fetchall())


def exchange(
    conn: sqlite3.Connection, row: Any, events: Any, seal: Seal, known: MappingSets
) -> Exchange:
    """The Exchange of a row and its events, the mapping sets they refer to read as needed."""
    learn(conn, known, known.missing([row["mapping_versions"]], events))
    return rows.read_exchange(row, events, seal, known)


def learn(conn: sqlite3.Connection, known: MappingSets, missing: list[bytes]) -> None:
    """Read the mapping sets ``known`` lacks."""
    if missing:
        marks = ",".join("?" * len(missing))
        known.learn(conn.execute(sets.SELECT_SQLITE.format(marks), missing).fetchall())


def sign_first_head(conn: sqlite3.Connection, seal: Seal) -> tuple[int, bytes] | None:
    """Sign the head of a journal that gets keys for the first time: its last event, as it is
    (trust on first use: before it had keys, nothing could tell its chain's end anyway)."""
    head = conn.execute("SELECT mac FROM chain_head").fetchone()
    last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, last_hash = (0, bytes(32)) if last is None else (int(last[0]), bytes(last[1]))
    if head is None or head[0] is not None:
        return None
    conn.execute(
        "UPDATE chain_head SET seq = ?, hash = ?, mac = ?",
        (last_seq, last_hash, seal.sign_head(last_seq, last_hash)),
    )
    return last_seq, last_hash


def end_at(conn: sqlite3.Connection, seq: int) -> tuple[int, bytes | None]:
    """The last event's seq, and the hash of event ``seq`` (None: there is none): what a
    checkpoint is compared with at open (``replay.checkpoints.rolled_back``)."""
    end = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    row = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
    return int(end or 0), None if row is None or row[0] is None else bytes(row[0])


def audit(conn: sqlite3.Connection, audit: Audit) -> None:
    """Feed ``audit`` the whole journal, in one read transaction (one snapshot)."""
    cur = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq")
    while chunk := [tuple(r) for r in cur.fetchmany(AUDIT_CHUNK)]:
        audit.events(chunk)
        if audit.broken is not None:
            return
    audit.head(conn.execute("SELECT seq, hash, mac FROM chain_head").fetchone())
    audit.stored_format(conn.execute(formats.READ).fetchone()[0] if not audit.failed else None)
    audit.exchanges(conn.execute(f"SELECT {', '.join(rows.SHOWN)} FROM exchanges"))
    audit.refusals(conn.execute("SELECT * FROM refusals"))
    audit.mapping_sets(conn.execute(sets.ALL))


def reseal(conn: sqlite3.Connection, old: Seal, new: Seal) -> tuple[int, int, bytes]:
    """Every payload sealed under ``new`` (the partner's words in rows' last errors too), the
    chain recomputed over the rows as they are then; (values, last seq, head)."""
    refusals = conn.execute("SELECT * FROM refusals ORDER BY seq").fetchall()
    bodies, digests = rekey.resealed_refusals(refusals, old, new)
    errors = conn.execute("SELECT id, last_error FROM exchanges WHERE last_error IS NOT NULL")
    resealed = rekey.resealed_errors(errors.fetchall(), old, new)
    conn.executemany("UPDATE exchanges SET last_error = ? WHERE id = ?", resealed)
    inherited.reseal_sqlite(conn, old)  # the first raise of the mark: what first releases left
    conn.execute(formats.raising(formats.WORDS if resealed else formats.ROWS))  # every digest full
    events = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq").fetchall()
    shown = conn.execute(f"SELECT {', '.join(rows.SHOWN)} FROM exchanges")
    digests_now = {r["id"]: rows.shown_digest(r) for r in shown}
    updates, seq, head = rekey.resealed_chain(events, old, new, digests, digests_now)
    conn.executemany("UPDATE refusals SET body = ? WHERE seq = ?", bodies)
    conn.executemany("UPDATE events SET data = ?, hash = ?, state = ? WHERE seq = ?", updates)
    return len(bodies) + len(resealed) + len(updates), seq, head


# Ended, unleased, no callback pending: replay.rules.archivable in SQL. The states are literals
# so that the partial index exchanges_closed applies.
ARCHIVE_CANDIDATES = (
    f"SELECT * FROM exchanges WHERE state IN ({in_list(ENDED)})"
    " AND updated_at < ? AND notify_state IS NULL AND lease_owner IS NULL"
    " ORDER BY updated_at LIMIT ?"
)


def archive_candidates(
    conn: sqlite3.Connection, older_than: float, limit: int, known: MappingSets
) -> list[ArchivedExchange]:
    """The next ended exchanges to archive, with their events as the archive file holds them."""
    out = []
    for row in conn.execute(ARCHIVE_CANDIDATES, (older_than, limit)).fetchall():
        learn(conn, known, known.missing([row["mapping_versions"]], ()))
        events = []
        for ev in conn.execute(
            "SELECT seq, at, kind, data, hash, state FROM events"
            " WHERE exchange_id = ? AND archived = 0 ORDER BY seq",
            (row["id"],),
        ).fetchall():
            prev = conn.execute(
                "SELECT hash FROM events WHERE seq = ?", (ev["seq"] - 1,)
            ).fetchone()
            events.append(rows.archive_event(ev, None if prev is None else prev[0]))
        out.append(ArchivedExchange(row=rows.archive_record(row, known), events=events))
    return out


# What an archive is checked against (JournalAdmin.events_of, .archived_markers): no content.
EVENTS_OF = (
    "SELECT seq, exchange_id, at, kind, hash, archived FROM events"
    " WHERE exchange_id IN ({}) ORDER BY seq"
)
MARKERS_AT = (
    f"SELECT exchange_id, at FROM events WHERE kind = '{rows.ARCHIVED}' AND at BETWEEN ? AND ?"
    " ORDER BY seq"
)


def events_of(conn: sqlite3.Connection, ids: Sequence[str]) -> list[JournalEvent]:
    """Every event of the exchanges ``ids`` names, in chain order (asked 400 ids at a time: an
    older SQLite takes at most 999 parameters)."""
    found: list[JournalEvent] = []
    for start in range(0, len(ids), 400):
        chunk = list(ids[start : start + 400])
        cur = conn.execute(EVENTS_OF.format(", ".join("?" * len(chunk))), chunk)
        found.extend(JournalEvent.of(r) for r in cur)
    return sorted(found)


def archived_markers(
    conn: sqlite3.Connection, first: float, last: float
) -> list[tuple[str, float]]:
    """(exchange id, time) of the ``~archived`` markers made at ``first`` … ``last``."""
    return [(str(r[0]), float(r[1])) for r in conn.execute(MARKERS_AT, (first, last))]


def tombstone(
    conn: sqlite3.Connection, batch: list[ArchivedExchange], chain: Chain, seal: Seal, now: float
) -> None:
    """Delete archived exchanges, leaving their events as tombstones (no content, same hash),
    and record in the chain that each was archived and how many of its events (``~archived``).
    Only an exchange's own events are ever tombstones (verify reports any other)."""
    for ex in batch:
        xid, updated = ex.row["id"], ex.row["updated_at"]
        gone = conn.execute(
            "DELETE FROM exchanges WHERE id = ? AND updated_at = ? AND lease_owner IS NULL",
            (xid, updated),
        ).rowcount
        if not gone:
            continue  # it moved (a replay) after being copied: it stays live, the copy is harmless
        emptied = conn.execute(
            "UPDATE events SET data = x'', state = NULL, archived = 1"
            " WHERE exchange_id = ? AND archived = 0",
            (xid,),
        ).rowcount
        conn.execute("DELETE FROM exchange_refs WHERE exchange_id = ?", (xid,))
        # the count verify holds the exchange's tombstones to: those this UPDATE made
        chain.append(conn, [rows.archived_record(seal, xid, now, emptied)])


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the numbered SQL files in replay/sql/sqlite that this database has not seen."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    files = sorted(
        (
            f
            for f in resources.files("replay").joinpath("sql/sqlite").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    for f in files:
        number = int(f.name.split("_", 1)[0])
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(f.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(f.name)
    return applied


def _statements(script: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def record_update(
    exchange_id: str,
    change: StateChange,
    now: float,
    versions: bytes | None,
    owner: str | None,
    lease_until: float | None,
    seal: Seal,
) -> tuple[str, list[Any]]:
    """The guarded UPDATE that ``record`` runs: (SQL, arguments), returning the SHOWN columns.
    ``versions`` is the row's stored mapping_versions (a mapping set's reference); the partner's
    words in a last error are sealed with ``seal`` (the journal's in this transaction)."""
    allowed = rules.allowed_from(change)
    sets = ["state = ?", "updated_at = ?", "next_attempt_at = ?"]
    args: list[Any] = [change.state.value, now, change.next_attempt_at]
    if versions is not None:
        sets.append("mapping_versions = ?")
        args.append(versions)
    if change.receipt is not None:
        sets.append("receipt = ?")
        args.append(rows.receipt_column(change.receipt))
    if change.last_error is not None:
        sets.append("last_error = ?")
        args.append(lasterror.column(seal, exchange_id, change.last_error))
    if change.attempts is not None:
        sets.append("attempts = ?")
        args.append(change.attempts)
    if change.lifecycle_state is not None:  # a step (rules.steps_after)
        sets.append("lifecycle_state = ?, lifecycle_steps = lifecycle_steps + 1")
        args.append(change.lifecycle_state)
    if (announce := rules.notify_as(change)) is not None:
        sets.append("notify_state = ?, notify_attempts = 0, notify_at = ?")
        args += [announce, now]
    if rules.releases_lease(change):
        sets.append("lease_owner = NULL, lease_until = NULL")
    elif lease_until is not None:
        sets.append("lease_until = ?")
        args.append(lease_until)
    where = f"id = ? AND state IN ({','.join('?' * len(allowed))})"
    args += [exchange_id, *sorted(s.value for s in allowed)]
    if owner is not None:
        where += " AND lease_owner = ?"
        args.append(owner)
    if change.expect_lifecycle is not None:
        where += " AND lifecycle_state = ?"
        args.append(change.expect_lifecycle)
    if change.expect_steps is not None:
        where += " AND lifecycle_steps = ?"
        args.append(change.expect_steps)
    if change.expect_quiet:
        where += " AND notify_state IS NULL"
    shown = ", ".join(rows.SHOWN)
    return f"UPDATE exchanges SET {', '.join(sets)} WHERE {where} RETURNING {shown}", args
