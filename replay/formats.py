"""Which stored formats a journal holds, and which this release can read.

A release may write values an earlier one cannot read (docs/operations.md, "Upgrade"). The
journal says which generation of the stored format its newest writer wrote, in its chain head
(``chain_head.format``). A release that opens a journal of a later generation than it knows refuses
it at open (and ``tongban journal migrate`` refuses it too), with a message saying so, instead of
starting and failing on every exchange holding such a value.

A release raises the mark to the generation of the newest value it writes, in the transaction that
writes it, and never lowers it: an earlier release that opened the journal before can have read
nothing it cannot read, and a write of nothing new leaves the mark, and the earlier brokers'
restarts, alone. So a command that only reads (search, show, verify; a show writes an audit entry,
of generation 2) run by a later release leaves a journal of the previous release as it was. What
raises the mark, and to what (``Mark``; a backend runs ``raising`` in the write's transaction):

- any event the chain takes (an audit entry, a refusal, a callback's or a reclaimed lease's
  event, an archive's marker): 2 (``SEALED``);
- an exchange's row written with its digest (create, record), a rekey (every row gets its full
  digest): 3 (``ROWS``);
- the partner's words sealed in a row's last error (a record; a rekey that seals them again, or
  for the first time in rows an earlier release wrote): 4 (``WORDS``).

Console sessions, instances' heartbeats, leases and the checkpoints file raise nothing.

The transaction that raises a journal's mark from none, in a journal the first releases wrote,
first appends what they left unrecorded to the chain (``replay/inherited.py``), so that verify
still accepts their archives and refusals once the journal is marked.

The generations:

1. ``~tb1.`` and ``~tb2.`` sealed text, JSON receipts, 32-byte applicant references (the first
   releases; their journals carry no mark).
2. ``~tb3.`` binary sealed values with the second compression dictionary (flags 2 and 3), receipts
   packed in their row, 16-byte applicant references and row digests.
3. Row digests of every column an exchange shows (17 bytes, ``replay.rows.shown_digest``): an
   earlier release's verify would call every row written so an edited one.
4. The partner's words and a mapping's problems in a row's last error sealed (``partner_sealed``,
   ``problems_sealed``, ``replay/lasterror.py``;
   this release): an earlier release would show them to nobody, and its rekey would leave them
   under a key it then drops.

A release that changes what it writes so that this one could not read it adds a generation here
and raises ``WRITES``, and says above which writes raise the mark to it. A migration that an
earlier release could not work with raises the mark in its own SQL, in the same transaction as its
change (``UPDATE chain_head SET format = N WHERE format IS NULL OR format < N``, as ``raising``).
Everything earlier stays readable (``READS``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from federation.domain.errors import JournalUnavailable
from replay import lasterror
from replay.seal import Seal

WRITES = 4  # the generation this release writes
READS = range(1, WRITES + 1)  # the generations it reads


def check(stored: int | None, where: str) -> None:
    """Refuse the journal at ``where``, marked ``stored`` (None: no mark, the first generation),
    when a later release wrote it."""
    if stored is not None and (not isinstance(stored, int) or isinstance(stored, bool)):
        raise JournalUnavailable(
            f"journal {where}: its stored-format mark (chain_head.format) is not a whole number: "
            "it was altered outside tongban. Nothing was read or changed; restore the journal "
            "from a backup (see docs/operations.md, Upgrade)"
        )
    generation = 1 if stored is None else stored
    if generation > WRITES:
        raise JournalUnavailable(
            f"journal {where} holds stored format {generation}, written by a later release of "
            f"tongban; this release reads formats {READS.start} to {READS.stop - 1}. Run the "
            "later release here (see docs/operations.md, Upgrade): nothing was read or changed"
        )


# The generation a reader needs for what a write writes (the list above).
SEALED = 2  # a value sealed as ``~tb3.``: any event the chain takes
ROWS = 3  # an exchange's row digest of every column it shows
WORDS = 4  # the partner's words sealed in a row's last error
READ = "SELECT format FROM chain_head"


def raising(generation: int) -> str:
    """The SQL (SQLite and PostgreSQL) that raises the mark to ``generation``, never lowers it:
    run in the transaction that writes a value of that generation."""
    return (
        f"UPDATE chain_head SET format = {int(generation)}"
        f" WHERE format IS NULL OR format < {int(generation)}"
    )


def sealing(seal: Seal, exchange_id: str, error: Mapping[str, Any]) -> bool:
    """Whether ``error``, written as a row's last error, has the partner's words or its
    problems sealed."""
    return lasterror.holds_sealed(lasterror.sealed(seal, exchange_id, error))


class Mark:
    """What one journal object has raised the mark to, and what the transaction under way needs.

    A backend calls ``begin`` as a transaction begins, its writes say what they write (``need``,
    ``row``), it runs ``due``'s SQL before the commit and calls ``committed`` after it: the mark
    rises in the transaction that writes the value, once per process and generation (a rolled
    back one raised nothing, and the next transaction that needs it raises it again).
    """

    __slots__ = ("marked", "needed")

    def __init__(self) -> None:
        self.marked = 1  # raised to by a committed transaction of this process (1: nothing)
        self.needed = 1  # what the transaction under way writes

    def begin(self) -> None:
        self.needed = self.marked

    def need(self, generation: int) -> None:
        """The transaction under way writes a value of ``generation``."""
        self.needed = max(self.needed, generation)

    def row(self, seal: Seal, exchange_id: str, error: Mapping[str, Any] | None = None) -> None:
        """The transaction under way writes an exchange's row and its digest, with ``error`` as
        its last error: sealing the partner's words in it (``replay/lasterror.py``) needs
        WORDS. Only asked until the mark is there: it seals the words once more to know."""
        self.need(ROWS)
        if self.needed < WORDS and error is not None and sealing(seal, exchange_id, error):
            self.need(WORDS)

    def due(self) -> str | None:
        """The SQL to run before the commit, if the transaction needs the mark higher."""
        return raising(self.needed) if self.needed > self.marked else None

    def committed(self) -> None:
        self.marked = self.needed


def check_sqlite(conn: sqlite3.Connection, where: str) -> None:
    """:func:`check` on a SQLite connection. A journal without its chain head row is left for
    verify to report (it says what is missing), not refused here."""
    row = conn.execute(READ).fetchone()
    if row is not None:
        check(row[0], where)


async def check_postgres(conn: Any, where: str) -> None:
    """:func:`check` on a PostgreSQL connection (no row: as on SQLite)."""
    check(await conn.fetchval(READ), where)
