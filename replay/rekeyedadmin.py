"""What operators do with a PostgreSQL journal's rekey statements (``replay/rekeyed.py``): check
them (``tongban journal verify``) and prune them (``tongban journal prune-rekeyed``).

Kept apart from ``replay/postgres.py``, as ``replay/sqliteadmin.py`` is from ``replay/sqlite.py``,
and run on the journal's own pool. Only a PostgreSQL journal keeps statements (``keeps``): the
checkpoints file of a SQLite journal is shared by its workers and rewritten by the rekey.

Pruning is explicit, never automatic: the statements of a rekey are needed until every instance
whose checkpoints could name the chain before it has opened the journal since, and the database
cannot list those instances. It knows those that announce themselves (``replay/instances.py``):
running ones, and those gone within the last day that did not withdraw. One of them that started
before a rekey whose statements would go has not opened since, and the prune is refused, naming
it (``force`` overrides, for one gone for good). One stopped cleanly withdrew and is not listed:
the operator must know it (docs/operations.md, "Rotate keys"). Instances' clocks are taken to
agree, as leases already require.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
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
class Pruned:
    """What ``prune`` found and did."""

    rekeys: list[tuple[float, int]] = field(
        default_factory=list
    )  # (time, statements), oldest first
    waiting: list[Instance] = field(default_factory=list)  # known, not opened since the last one
    done: bool = False  # whether their statements were deleted

    @property
    def statements(self) -> int:
        """How many statements the rekeys made."""
        return sum(n for _, n in self.rekeys)


async def prune(journal: PostgresJournal, before: float, *, force: bool = False) -> Pruned:
    """Delete the statements of the rekeys made before ``before``, in one transaction, unless an
    instance the journal knows of started before the latest of them (``waiting``; ``force``:
    deleted all the same)."""

    async def op(conn: Any) -> Pruned:
        found = [(float(at), int(n)) for at, n in await conn.fetch(REKEYS, before)]
        if not found:
            return Pruned()
        known = [instances.of_row(row) for row in await conn.fetch(instances.SEEN_PG, 0.0)]
        waiting = [i for i in known if i.started_at < found[-1][0]]
        if waiting and not force:
            return Pruned(rekeys=found, waiting=waiting)
        await conn.execute(PRUNE, before)
        return Pruned(rekeys=found, waiting=waiting, done=True)

    pruned: Pruned = await journal._run(op)
    return pruned
