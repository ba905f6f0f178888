"""Which stored formats a journal holds, and which this release can read.

A release may write values an earlier one cannot read (docs/operations.md, "Upgrade"). The
journal says which generation of the stored format its newest writer wrote, in its chain head
(``chain_head.format``). A release that opens a journal of a later generation than it knows refuses
it at open (and ``tongban journal migrate`` refuses it too), with a message saying so, instead of
starting and failing on every exchange holding such a value. A release raises the mark to its own
generation in the transaction of its first write, never lowers it: the mark rises with the first
value written in the new format, so an earlier release that opened the journal before can have
read nothing it cannot read, and a command that only reads (search, show, verify) run by a later
release leaves the mark, and the earlier brokers' restarts, alone.

The generations:

1. ``~tb1.`` and ``~tb2.`` sealed text, JSON receipts, 32-byte applicant references (the first
   releases; their journals carry no mark).
2. ``~tb3.`` binary sealed values with the second compression dictionary (flags 2 and 3), receipts
   packed in their row, 16-byte applicant references and row digests.
3. Row digests of every column an exchange shows (17 bytes, ``replay.rows.shown_digest``): an
   earlier release's verify would call every row written so an edited one.
4. The partner's words in a row's last error sealed (``partner_sealed``, ``replay/lasterror.py``;
   this release): an earlier release would show them to nobody, and its rekey would leave them
   under a key it then drops.

A release that changes what it writes so that this one could not read it adds a generation here
and raises ``WRITES``. A migration that an earlier release could not work with raises the mark in
its own SQL, in the same transaction as its change
(``UPDATE chain_head SET format = N WHERE format IS NULL OR format < N``). Everything earlier stays
readable (``READS``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from federation.domain.errors import JournalUnavailable

WRITES = 4  # the generation this release writes
READS = range(1, WRITES + 1)  # the generations it reads


def check(stored: int | None, where: str) -> None:
    """Refuse the journal at ``where``, marked ``stored`` (None: no mark, the first generation),
    when a later release wrote it."""
    generation = 1 if stored is None else stored
    if generation > WRITES:
        raise JournalUnavailable(
            f"journal {where} holds stored format {generation}, written by a later release of "
            f"tongban; this release reads formats {READS.start} to {READS.stop - 1}. Run the "
            "later release here (see docs/operations.md, Upgrade): nothing was read or changed"
        )


READ = "SELECT format FROM chain_head"
# Run in the transaction of a process's first write (it changes no row once marked).
RAISE_SQLITE = f"UPDATE chain_head SET format = {WRITES} WHERE format IS NULL OR format < {WRITES}"
RAISE_PG = RAISE_SQLITE


def check_sqlite(conn: sqlite3.Connection, where: str) -> None:
    """:func:`check` on a SQLite connection. A journal without its chain head row is left for
    verify to report (it says what is missing), not refused here."""
    row = conn.execute(READ).fetchone()
    if row is not None:
        check(row[0], where)


async def check_postgres(conn: Any, where: str) -> None:
    """:func:`check` on a PostgreSQL connection (no row: as on SQLite)."""
    check(await conn.fetchval(READ), where)
