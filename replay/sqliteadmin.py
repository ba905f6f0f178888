"""What operators do to a SQLite journal (``tongban journal …``): migrate, verify, rekey, archive
and read what an archive is checked against.

The ``JournalAdmin`` side of ``SQLiteJournal`` (``replay/sqlite.py``, the request path's journal),
kept apart so each reads on its own, as ``PostgresJournal``'s writer side is in ``replay/pgwrite.py``.
It runs on the journal's own threads: reads on the reader thread, writes in the writer's batches,
a migration on a connection of its own, set up as the journal sets up its connections.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from federation.domain.errors import JournalUnavailable
from replay import formats, rekey, rows, sqlitesql
from replay.archive import ArchivedExchange, ArchiveWriter
from replay.audit import Audit
from replay.chain import Break, Chain
from replay.checkpoints import Checkpoints
from replay.journal import JournalEvent, Refusal
from replay.keys import KeyPlace
from replay.rekey import Staged
from replay.seal import Seal
from replay.sets import MappingSets


class SQLiteAdmin:
    """The operators' side of ``SQLiteJournal``: migrations, verify, rekey, archive (and the
    reads an archive is checked against), refusals."""

    path: Path
    keys: KeyPlace
    seal: Seal
    sets: MappingSets
    checkpoints: Checkpoints
    _chain: Chain
    _clock: Callable[[], float]

    def use(self, seal: Seal) -> None:
        raise NotImplementedError

    def _connect(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _read(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        raise NotImplementedError

    def _write(
        self, op: Callable[[sqlite3.Connection], Any], prepare: Callable[[], None] | None = None
    ) -> asyncio.Future[Any]:
        raise NotImplementedError

    async def migrate(self) -> list[str]:
        """Apply pending migrations (``tongban journal migrate``); the files applied, in order."""

        def run() -> list[str]:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                applied = sqlitesql.migrate(conn)
                formats.check_sqlite(conn, str(self.path))
                return applied
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(run)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"journal {self.path}: {exc}") from exc

    async def verify(self) -> tuple[int, Break | None]:
        """Check the chain, its signed head, the checkpoints and the rows readers are shown
        (``replay/audit.py``); the number of events checked and the first problem, if any."""
        # The checkpoints are read before the snapshot: none can be newer than what it shows.
        audit = await asyncio.to_thread(Audit, self.seal, self.checkpoints)

        def op(conn: sqlite3.Connection) -> tuple[int, Break | None]:
            sqlitesql.audit(conn, audit)
            return audit.result()

        result: tuple[int, Break | None] = await self._read(op)
        return result

    async def rekey(self) -> int:
        """Seal everything again under a new data key (``replay/rekey.py``); how many values."""
        return await rekey.rotate(self)

    async def reseal(self, new: Seal, staged: Staged) -> tuple[int, int, bytes]:
        """Re-seal every payload under ``new`` and re-sign the chain, in one transaction;
        ``staged`` told the new head before it commits."""

        def op(conn: sqlite3.Connection) -> tuple[int, int, bytes]:
            count, seq, head = sqlitesql.reseal(conn, self.seal, new)
            self._chain.moved_to(seq, head)
            # In force before the commit: a write in a later batch, or later in this one, is
            # sealed under the new key, never under the old one that rekey is about to drop.
            self.use(new)
            staged(seq, head)
            return count, seq, head

        result: tuple[int, int, bytes] = await self._write(op)
        return result

    async def archive(self, *, older_than: float, out: Path, chunk: int = 500) -> tuple[int, int]:
        """Move closed exchanges last changed before ``older_than`` to an archive file.

        Open exchanges, and ended ones with a callback still pending, are never archived. Works in
        chunks so intake is never held up for long; returns (exchanges, events) archived.
        """
        writer = await asyncio.to_thread(
            ArchiveWriter, out, created_at=self._clock(), older_than=older_than
        )
        try:
            while True:
                batch: list[ArchivedExchange] = await self._write(
                    lambda conn: sqlitesql.archive_candidates(conn, older_than, chunk, self.sets)
                )
                if not batch:
                    break
                await asyncio.to_thread(writer.write, batch)
                await self._write(
                    lambda conn, b=batch: sqlitesql.tombstone(  # type: ignore[misc]
                        conn, b, self._chain, self.seal, self._clock()
                    )
                )
        finally:
            await asyncio.to_thread(writer.close)
        return writer.exchanges, writer.events

    async def events_of(self, ids: Sequence[str]) -> list[JournalEvent]:
        """Every event of those exchanges, live or tombstoned, in chain order; no content."""
        found: list[JournalEvent] = await self._read(lambda conn: sqlitesql.events_of(conn, ids))
        return found

    async def archived_markers(self, first: float, last: float) -> list[tuple[str, float]]:
        """(exchange id, time) of the ``~archived`` markers made at ``first`` … ``last``."""
        found: list[tuple[str, float]] = await self._read(
            lambda conn: sqlitesql.archived_markers(conn, first, last)
        )
        return found

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        """The most recent refused intake requests, newest first."""

        def op(conn: sqlite3.Connection) -> list[Refusal]:
            cur = conn.execute("SELECT * FROM refusals ORDER BY seq DESC LIMIT ?", (limit,))
            return [rows.refusal(r, self.seal) for r in cur.fetchall()]

        result: list[Refusal] = await self._read(op)
        return result
