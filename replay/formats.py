"""Which stored formats a journal holds, and which this release can read.

A release may write values an earlier one cannot read (docs/operations.md, "Upgrade"). The
journal says which generation of the stored format its newest writer wrote, in its chain head
(``chain_head.format``); a release that opens a journal of a later generation than it knows refuses
it at open, with a message saying so, instead of starting and failing on every exchange holding
such a value. A release that writes a later generation raises the mark when it opens the journal
for writing; never lowers it.

The generations:

1. ``~tb1.`` and ``~tb2.`` sealed text, JSON receipts, 32-byte applicant references (the first
   releases; their journals carry no mark).
2. ``~tb3.`` binary sealed values with the second compression dictionary (flags 2 and 3), receipts
   packed in their row, 16-byte applicant references and row digests (this release).

A release that changes what it writes so that this one could not read it adds a generation here
and raises ``WRITES``; a migration an earlier release could not work with must come with one too.
Everything earlier stays readable (``READS``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from federation.domain.errors import JournalUnavailable

WRITES = 2  # the generation this release writes
READS = range(1, WRITES + 1)  # the generations it reads


def judged(stored: int | None, where: str) -> bool:
    """Whether the journal at ``where``, marked ``stored`` (None: no mark, the first
    generation), is to be marked ``WRITES``: True when it is earlier; a later one is refused."""
    generation = 1 if stored is None else stored
    if generation > WRITES:
        raise JournalUnavailable(
            f"journal {where} holds stored format {generation}, written by a later release of "
            f"tongban; this release reads formats {READS.start} to {READS.stop - 1}. Run the "
            "later release here (see docs/operations.md, Upgrade): nothing was read or changed"
        )
    return generation < WRITES


READ = "SELECT format FROM chain_head"


def mark_sqlite(conn: sqlite3.Connection, where: str) -> None:
    """On a SQLite journal's writer connection, after its migrations: :func:`judged`, and the
    mark raised in a transaction of its own."""
    if not judged(conn.execute(READ).fetchone()[0], where):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have marked it while we waited for the lock.
        if judged(conn.execute(READ).fetchone()[0], where):
            conn.execute("UPDATE chain_head SET format = ?", (WRITES,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


async def mark_postgres(conn: Any, where: str) -> None:
    """On a PostgreSQL journal, after its migrations: :func:`judged`, the head's row locked only
    when the mark is to be raised (it is the row every append locks)."""
    if not judged(await conn.fetchval(READ), where):
        return
    async with conn.transaction():
        if judged(await conn.fetchval(READ + " FOR UPDATE"), where):
            await conn.execute("UPDATE chain_head SET format = $1", WRITES)
