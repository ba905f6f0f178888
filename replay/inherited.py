"""What the first releases left unrecorded, recorded once in the chain as a release first marks the
journal.

The first releases archived exchanges (their events made tombstones) without an ``~archived``
record and kept refused requests without a ``~refusal`` record, and they wrote no stored-format
mark (``replay/formats.py``). Any later write raises the mark, after which verify would take every
one of those tombstones and refusal rows for an erasure or an addition outside tongban. So the
transaction that first raises a journal's mark from none appends, before its own events, one
``~inherited`` event (no exchange: exchange id '', like an audit entry or a refusal's record) that
says what the first releases left at that moment: how many tombstones and the last of them, how
many refusal rows and the last of them. It is in the keyed, signed chain: nobody without the key
can add, alter or remove it. Verify (``replay/audit.py``) accepts exactly those and no more.

A journal with no mark was written by no marking release, so what it holds then is the first
releases'. Nothing is recorded (and nothing is accepted later) unless the chain itself shows it:
the journal holds a live exchange event only a first release can have written, and no event only a
marking release writes (an audit entry, a refusal's or an archive's record, an earlier
``~inherited``: the mark was cleared outside tongban). Only tombstones verify took for the first
releases' before the mark are counted: of an exchange, before the first live row digest and the
first releases' last live event (``Audit.first_release``).

The plan is made as the transaction begins, before any of its writes (an archive makes tombstones,
a refusal a row, and those are recorded by this release), and appended only if the mark is still
none when the chain is first extended (another instance, or a rekey in the same transaction, may
have raised it since). Its queries read every event (nothing indexes what they look for), so a
transaction none of whose writes touches events, refusals or the mark before it extends the chain
(on SQLite a ping, a presence beat; on both a lease renewal, a release, a claim, an application
taken, an outcome recorded, an audit entry) has it made at its first append instead, and not at
all if it appends nothing (``Inheritance.begin``, ``starting``): what it sees then is still the
state before the transaction's writes. On PostgreSQL that is the group-commit batch's first flush,
before any of its events is inserted; the mark is then re-checked with the chain head locked, as
for a plan made as the batch began.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from replay import formats, rows
from replay.chain import Chain, EventRow, link
from replay.seal import PREFIX, Seal

INHERITED = "~inherited"  # what the first releases left unrecorded (no exchange: exchange id '')
# Kinds only a marking release writes: a journal holding one is not as the first releases left it.
MARKING = (rows.AUDIT, rows.REFUSAL, rows.ARCHIVED, INHERITED)
# What it says: counts, and the last seq (0: none) of each, and where the first releases' events end.
NAMES = ("tombstones", "tombstone", "refusals", "refusal", "era", "first")
FIRST_DIGEST = 32  # the bytes of a row digest as the first releases recorded it

_MARKED = "SELECT 1 FROM events WHERE kind IN ({}) LIMIT 1".format(
    ", ".join(f"'{k}'" for k in MARKING)
)
_LIVE = f"NOT archived AND exchange_id <> '' AND kind <> '{rows.ARCHIVED}'"
# The last live exchange event only a first release can have written (``audit._first_releases``):
# its data not sealed as every marking release seals, or its row digest of the first releases' bytes.
_ERA = f"SELECT max(seq) FROM events WHERE {_LIVE} AND ({{}} OR length(state) = {FIRST_DIGEST})"
ERA_SQLITE = _ERA.format(f"substr(data, 1, {len(PREFIX)}) <> x'{PREFIX.hex()}'")
ERA_POSTGRES = _ERA.format(
    f"substring(data from 1 for {len(PREFIX)}) <> '\\x{PREFIX.hex()}'::bytea"
)
_FIRST = f"SELECT min(seq) FROM events WHERE {_LIVE} AND state IS NOT NULL"
_TOMBSTONES = (
    "SELECT count(*), max(seq) FROM events WHERE archived AND exchange_id <> '' AND seq < {}"
)
_REFUSALS = "SELECT count(*), max(seq) FROM refusals"


def record(seal: Seal, at: float, counts: Mapping[str, int]) -> EventRow:
    """The ``~inherited`` event saying ``counts`` (``planned``)."""
    return ("", at, INHERITED, rows.sealed(seal, "", INHERITED, at, counts), None)


def counts(plain: bytes | None, seq: int) -> dict[str, int] | None:
    """The counts the ``~inherited`` event at ``seq`` says (None: it says none that can be)."""
    try:
        said = orjson.loads(plain or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(said, dict) or set(said) != set(NAMES):
        return None
    if not all(type(said[k]) is int and said[k] >= 0 for k in NAMES):
        return None
    if not all(said[k] < seq for k in ("tombstone", "era", "first")) or not said["era"]:
        return None  # the first releases' events are before it, and it was written with one
    return {k: int(said[k]) for k in NAMES}


def planned(
    era: int | None, first: int | None, tombstones: Sequence[Any], refusals: Sequence[Any]
) -> dict[str, int]:
    """The counts an ``~inherited`` event records, from what the queries above found."""
    return {
        "tombstones": int(tombstones[0] or 0),
        "tombstone": int(tombstones[1] or 0),
        "refusals": int(refusals[0] or 0),
        "refusal": int(refusals[1] or 0),
        "era": int(era or 0),
        "first": int(first or 0),
    }


def _bound(era: int | None, first: int | None) -> int:
    """Tombstones below this seq are the first releases' (none without a live row digest)."""
    return 0 if era is None or first is None else min(era, first)


def plan_sqlite(conn: sqlite3.Connection) -> tuple[bool, dict[str, int] | None]:
    """(whether the journal is marked, the counts to record if it is not and a first release
    wrote it), as a SQLite transaction begins."""
    head = conn.execute(formats.READ).fetchone()
    if head is None or head[0] is not None:
        return head is not None, None
    if conn.execute(_MARKED).fetchone() is not None:
        return False, None
    era = conn.execute(ERA_SQLITE).fetchone()[0]
    if era is None:
        return False, None
    first = conn.execute(_FIRST).fetchone()[0]
    tombstones = conn.execute(_TOMBSTONES.format(_bound(era, first))).fetchone()
    return False, planned(era, first, tombstones, conn.execute(_REFUSALS).fetchone())


async def plan_postgres(conn: Any) -> tuple[bool, dict[str, int] | None]:
    """:func:`plan_sqlite` on a PostgreSQL connection."""
    head = await conn.fetchrow(formats.READ)
    if head is None or head[0] is not None:
        return head is not None, None
    if await conn.fetchval(_MARKED) is not None:
        return False, None
    era = await conn.fetchval(ERA_POSTGRES)
    if era is None:
        return False, None
    first = await conn.fetchval(_FIRST)
    tombstones = await conn.fetchrow(_TOMBSTONES.format(_bound(era, first)))
    return False, planned(era, first, tombstones, await conn.fetchrow(_REFUSALS))


def unmarked_sqlite(conn: sqlite3.Connection) -> bool:
    """Whether the journal's mark is still none (checked as the record is appended)."""
    head = conn.execute(formats.READ).fetchone()
    return head is not None and head[0] is None


async def unmarked_postgres(conn: Any) -> bool:
    """:func:`unmarked_sqlite` on PostgreSQL (the chain head locked)."""
    head = await conn.fetchrow(formats.READ)
    return head is not None and head[0] is None


Plan = Callable[[], tuple[bool, dict[str, int] | None]]


class Inheritance:
    """One journal object's part: whether its journal is known marked (then nothing more is
    asked), and the record the transaction under way appends first, if any."""

    __slots__ = ("due", "marked", "pending")

    def __init__(self) -> None:
        self.marked = False
        self.pending: dict[str, int] | None = None
        self.due = False  # the plan is left to the transaction's first append

    def planned(self, result: tuple[bool, dict[str, int] | None]) -> None:
        self.marked, self.pending = result
        self.due = False

    def begin(self, plan: Plan, *, early: bool) -> None:
        """As a transaction begins, unless the journal is known marked: the plan made now if
        ``early`` (the transaction may write tombstones, refusal rows or the mark before it first
        appends), else at its first append (``take``), if it appends at all."""
        if self.starting(early=early):
            self.planned(plan())

    def starting(self, *, early: bool) -> bool:
        """:meth:`begin` without the plan: whether it is to be made now (by the caller, which
        then gives it to ``planned``); if it is left to the first append, ``due`` says so."""
        self.pending, self.due = None, False
        if self.marked:
            return False
        self.due = not early
        return early

    def take(self, plan: Plan | None = None) -> dict[str, int] | None:
        """The counts to record, once: the record is appended by the first append only (the plan
        made now with ``plan`` if it was left to this append)."""
        if self.due and plan is not None:
            self.planned(plan())
        pending, self.pending = self.pending, None
        return pending


class FirstChain(Chain):
    """SQLite's chain (``replay.chain.Chain``) whose first append in a transaction puts the
    ``~inherited`` event ``first`` gives (if any) before the transaction's own events."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Callable[[sqlite3.Connection], EventRow | None] = lambda conn: None

    def append(self, conn: sqlite3.Connection, rows: Iterable[EventRow]) -> list[int]:
        ahead = self.first(conn)
        if ahead is None:
            return super().append(conn, rows)
        return super().append(conn, [ahead, *rows])[1:]


def reseal_sqlite(conn: sqlite3.Connection, seal: Seal) -> None:
    """In a rekey's transaction, before it raises the mark and recomputes the chain: the
    ``~inherited`` event at the end of the chain, sealed under ``seal`` (the old key: the rekey
    seals it again with everything else), if the mark is still none."""
    _, counts = plan_sqlite(conn)
    if counts is None:
        return
    seq, prev = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    xid, at, kind, data, state = record(seal, time.time(), counts)
    digest = link(bytes(prev), int(seq) + 1, xid, at, kind, data, state)
    conn.execute(
        "INSERT INTO events (seq, exchange_id, at, kind, data, hash, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (int(seq) + 1, xid, at, kind, data, digest, state),
    )


async def reseal_postgres(
    conn: Any, add: Callable[[Sequence[EventRow]], object], seal: Seal
) -> bool:
    """:func:`reseal_sqlite` on PostgreSQL: the event given to ``add`` (the rekey's chain, the
    head locked); whether there was one (the chain is then to be flushed)."""
    _, counts = await plan_postgres(conn)
    if counts is None:
        return False
    add([record(seal, time.time(), counts)])
    return True
