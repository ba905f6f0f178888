"""What operators do with a PostgreSQL journal's rekey statements (``replay/rekeyed.py``): check
them (``tongban journal verify``) and prune them (``tongban journal prune-rekeyed``).

Kept apart from ``replay/postgres.py``, as ``replay/sqliteadmin.py`` is from ``replay/sqlite.py``,
and run on the journal's own pool. Only a PostgreSQL journal keeps statements (``keeps``): the
checkpoints file of a SQLite journal is shared by its workers and rewritten by the rekey.

Pruning is explicit, never automatic: the statements of a rekey are needed until every instance
whose checkpoints could name the chain before it has opened the journal since. The database
knows every instance that opened it with checkpoints of its own (table ``opened``, kept when it
stops: ``replay/rekeyed.py``); one that has not opened since the latest rekey whose statements
would go, and the prune is refused, naming it (``unopened``). So is it while an instance that
announced itself (``replay/instances.py``: running, or gone within the last day without
withdrawing) started before that rekey (``waiting``). ``force`` prunes all the same; ``forget``
drops an instance gone for good, so that it holds no prune back again. An instance that has not
opened the journal since ``opened`` came (migration 0013) is not known: start each once after
upgrading. Announced instances' start times are compared with the rekey's, as leases already
take clocks to agree; ``opened`` compares rekey times only.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import TYPE_CHECKING, Any

from replay import instances
from replay.instances import Instance
from replay.journal import Backend
from replay.rekeyed import Statement, Unsound, unsound
from replay.seal import Seal

if TYPE_CHECKING:  # imported when a postgresql:// journal is opened (``replay/factory.py``)
    from replay.postgres import PostgresJournal

# Every statement with the hash the journal holds at its seq (NULL: no event there), by seq.
ALL = """
SELECT r.seq, r.old, r.new, r.at, r.mac, e.hash
FROM rekeyed AS r LEFT JOIN events AS e ON e.seq = r.seq
ORDER BY r.seq, r.at"""
REKEYS = "SELECT at, count(*) FROM rekeyed WHERE at < $1 GROUP BY at ORDER BY at"
PRUNE = "DELETE FROM rekeyed WHERE at < $1"
OPENED = "id, host, checkpoints, opened_at, rekey_at"
UNOPENED = f"SELECT {OPENED} FROM opened WHERE coalesce(rekey_at < $1, true) ORDER BY host, id"
KNOWN = f"SELECT {OPENED} FROM opened ORDER BY host, id"
FORGET = f"DELETE FROM opened WHERE id = $1 RETURNING {OPENED}"
CHUNK = 2000


def keeps(journal: Backend) -> PostgresJournal | None:
    """``journal`` if it keeps rekey statements (a PostgreSQL journal), else None."""
    module = sys.modules.get("replay.postgres")  # not loaded: no PostgreSQL journal was opened
    found: PostgresJournal | None = None
    if module is not None and isinstance(journal, module.PostgresJournal):
        found = journal
    return found


def _checked(
    rows: Sequence[Sequence[Any]], seal: Seal, final: bool
) -> tuple[Unsound | None, list[Any]]:
    """The first statement of ``rows`` (seq order) verify does not accept, and the rows of the last
    seq when more may follow (``final`` False)."""
    groups = [list(group) for _, group in groupby(rows, key=lambda row: int(row[0]))]
    rest = groups.pop() if groups and not final else []
    for group in groups:
        held = None if group[0][5] is None else bytes(group[0][5])
        made: list[Statement] = [
            (int(s), bytes(o), bytes(n), float(a), bytes(m)) for s, o, n, a, m, _ in group
        ]
        found = unsound(held, made, seal)
        if found is not None:
            return found, []
    return None, rest


async def check(journal: Backend) -> Unsound | None:
    """The first rekey statement of ``journal`` that does not hold (``rekeyed.unsound``), read in
    one snapshot; None when all hold, or the journal keeps none."""
    pg = keeps(journal)
    if pg is None:
        return None
    seal = pg.seal

    async def op(conn: Any) -> Unsound | None:
        cursor = await conn.cursor(ALL)
        rest: list[Any] = []
        while True:
            chunk = [tuple(row) for row in await cursor.fetch(CHUNK)]
            found, rest = await asyncio.to_thread(_checked, rest + chunk, seal, not chunk)
            if found is not None or not chunk:
                return found

    found: Unsound | None = await pg._run(op, isolation="repeatable_read", readonly=True)
    return found


@dataclass(frozen=True, kw_only=True)
class Opened:
    """An instance as the journal knows it by its checkpoints file, and its last open."""

    id: str  # of its checkpoints file (``Checkpoints.identity``)
    host: str
    checkpoints: str  # the file's path on its host
    opened_at: float
    rekey_at: float | None  # the latest rekey its checkpoints followed (None: none held)


def _opened(row: Any) -> Opened:
    rekey_at = None if row["rekey_at"] is None else float(row["rekey_at"])
    return Opened(
        id=row["id"],
        host=row["host"],
        checkpoints=row["checkpoints"],
        opened_at=float(row["opened_at"]),
        rekey_at=rekey_at,
    )


@dataclass(frozen=True, kw_only=True)
class Pruned:
    """What ``prune`` found and did."""

    rekeys: list[tuple[float, int]] = field(
        default_factory=list
    )  # (time, statements), oldest first
    waiting: list[Instance] = field(default_factory=list)  # announced, started before the last
    unopened: list[Opened] = field(default_factory=list)  # known, not opened since the last one
    done: bool = False  # whether their statements were deleted

    @property
    def held(self) -> bool:
        """Whether an instance holds the prune back (``force`` overrides)."""
        return bool(self.waiting or self.unopened)

    @property
    def statements(self) -> int:
        """How many statements the rekeys made."""
        return sum(n for _, n in self.rekeys)


async def prune(journal: PostgresJournal, before: float, *, force: bool = False) -> Pruned:
    """Delete the statements of the rekeys made before ``before``, in one transaction, unless an
    instance known by its checkpoints has not opened since the latest of them (``unopened``) or
    one announced started before it (``waiting``); ``force``: deleted all the same."""

    async def op(conn: Any) -> Pruned:
        found = [(float(at), int(n)) for at, n in await conn.fetch(REKEYS, before)]
        if not found:
            return Pruned()
        last = found[-1][0]
        known = [instances.of_row(row) for row in await conn.fetch(instances.SEEN_PG, 0.0)]
        waiting = [i for i in known if i.started_at < last]
        unopened = [_opened(row) for row in await conn.fetch(UNOPENED, last)]
        pruned = Pruned(rekeys=found, waiting=waiting, unopened=unopened)
        if pruned.held and not force:
            return pruned
        await conn.execute(PRUNE, before)
        return replace(pruned, done=True)

    pruned: Pruned = await journal._run(op)
    return pruned


async def forget(journal: PostgresJournal, ident: str) -> tuple[Opened | None, list[Opened]]:
    """Drop the instance known by the checkpoints id ``ident`` (one gone for good): it, or None
    when the journal knows no such instance; and the instances known after."""

    async def op(conn: Any) -> tuple[Opened | None, list[Opened]]:
        gone = await conn.fetchrow(FORGET, ident)
        known = [_opened(row) for row in await conn.fetch(KNOWN)]
        return (None if gone is None else _opened(gone)), known

    found: tuple[Opened | None, list[Opened]] = await journal._run(op)
    return found
