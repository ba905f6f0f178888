"""What operators do to a PostgreSQL journal (``tongban journal …``): verify, rekey, archive (and
read what an archive is checked against), the refusals list.

The ``JournalAdmin`` side of ``PostgresJournal`` (``replay/postgres.py``, the request path's
journal), kept apart so each reads on its own, as ``SQLiteJournal``'s is in
``replay/sqliteadmin.py``. Reads run on the journal's pool, writes through its group commit
(``replay/pgwrite.py``); the SQL lives in ``replay/pgsql.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from replay import pgsql, rekey, rows
from replay.archive import ArchiveWriter
from replay.audit import Audit
from replay.chain import Break
from replay.checkpoints import Checkpoints
from replay.journal import JournalEvent, Refusal
from replay.keys import KeyPlace
from replay.pgnotify import Notifications
from replay.pgsql import Conn
from replay.rekey import Staged
from replay.seal import Seal

T = TypeVar("T")
# What an archive is checked against (JournalAdmin.events_of, .archived_markers): no content.
EVENTS_OF = (
    "SELECT seq, exchange_id, at, kind, hash, archived FROM events"
    " WHERE exchange_id = ANY($1::text[]) ORDER BY seq"
)
MARKERS_AT = (
    f"SELECT exchange_id, at FROM events WHERE kind = '{rows.ARCHIVED}' AND at BETWEEN $1 AND $2"
    " ORDER BY seq"
)


class PostgresAdmin(Notifications):
    """The operators' side of ``PostgresJournal``: verify, rekey, archive (and the reads an
    archive is checked against), refusals."""

    keys: KeyPlace
    checkpoints: Checkpoints
    _clock: Callable[[], float]

    def use(self, seal: Seal) -> None:
        raise NotImplementedError

    async def _run(
        self,
        op: Callable[[Conn], Awaitable[T]],
        *,
        transaction: bool = True,
        isolation: str | None = None,
        readonly: bool = False,
    ) -> T:
        raise NotImplementedError

    async def verify(self) -> tuple[int, Break | None]:
        """Check the chain, its signed head, the checkpoints and the rows readers are shown
        (``replay/audit.py``); the number of events checked and the first problem, if any."""
        # The checkpoints are read before the snapshot: none can be newer than what it shows.
        audit = await asyncio.to_thread(Audit, self.seal, self.checkpoints)

        async def op(conn: Conn) -> tuple[int, Break | None]:
            await pgsql.audit(conn, audit)
            return audit.result()

        return await self._run(op, isolation="repeatable_read", readonly=True)

    async def rekey(self) -> int:
        """Seal everything again under a new data key (``replay/rekey.py``); how many values."""
        return await rekey.rotate(self)

    async def reseal(self, new: Seal, staged: Staged) -> tuple[int, int, bytes]:
        """Re-seal every payload under ``new`` and re-sign the chain, in one transaction."""

        async def op(conn: Conn, chain: pgsql.Chain) -> tuple[int, int, bytes]:
            done = await pgsql.reseal(conn, chain, self.seal, new)
            # In force before the commit: a write in a later batch, or later in this one, is
            # sealed under the new key, never under the old one that rekey is about to drop.
            self.use(new)
            await asyncio.to_thread(staged, done[1], done[2])
            return done

        result: tuple[int, int, bytes] = await self._write(op)
        return result

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        """Move closed exchanges last changed before ``older_than`` to an archive file, as on
        SQLite (open work and pending callbacks stay; in chunks; file errors raised as they are)."""
        writer = await asyncio.to_thread(
            ArchiveWriter, out, created_at=self._clock(), older_than=older_than
        )
        try:
            while True:
                batch = await self._run(
                    lambda conn: pgsql.archive_candidates(conn, older_than, chunk, self.sets),
                    isolation="repeatable_read",
                    readonly=True,
                )
                if not batch:
                    break
                await asyncio.to_thread(writer.write, batch)
                await self._write(
                    lambda conn, chain, b=batch: pgsql.tombstone(  # type: ignore[misc]
                        conn, chain, self.seal, b, self._clock()
                    )
                )
        finally:
            await asyncio.to_thread(writer.close)
        return writer.exchanges, writer.events

    async def events_of(self, ids: Sequence[str]) -> list[JournalEvent]:
        """Every event of those exchanges, live or tombstoned, in chain order; no content."""
        found = await self._run(lambda conn: conn.fetch(EVENTS_OF, list(ids)), transaction=False)
        return [JournalEvent.of(r) for r in found]

    async def archived_markers(self, first: float, last: float) -> list[tuple[str, float]]:
        """(exchange id, time) of the ``~archived`` markers made at ``first`` … ``last``."""
        found = await self._run(lambda conn: conn.fetch(MARKERS_AT, first, last), transaction=False)
        return [(str(r[0]), float(r[1])) for r in found]

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        found = await self._run(lambda conn: conn.fetch(pgsql.REFUSALS, limit), transaction=False)
        return [rows.refusal(r, self.seal) for r in found]
