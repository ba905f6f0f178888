"""Group commit for the PostgreSQL journal: one writer task per instance runs whatever writes
queued up in one transaction that takes the chain head once (``replay/postgres.py`` uses it).

Like ``replay/dbthread.py`` on SQLite. A write is a coroutine function run inside the batch's
transaction, appending its events through the batch's ``pgsql.Chain``; its caller gets the result
once the batch holding it has committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from federation.domain.errors import FederationError, JournalUnavailable
from replay import formats, inherited, pgsql, tally
from replay.chain import EventRow
from replay.dbthread import batch_after
from replay.pgsql import Conn
from replay.seal import Seal

# A write: runs inside the batch's transaction, appends events through the batch's Chain.
WriteOp = Callable[[Conn, pgsql.Chain], Awaitable[Any]]
# a write, its caller's future, and whether the batch must make the ``~inherited`` plan for it as
# the transaction begins (False: the write lets it be left to the batch's first append)
Queued = tuple[WriteOp, asyncio.Future[Any], bool]
MAX_BATCH = 256


class _Later:
    """A write's result that needs the seqs of its events: computed once the batch has flushed."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


class _FirstChain(pgsql.Chain):
    """The batch's chain: its first flush of events puts the ``~inherited`` event ``first`` gives
    (if any; ``replay/inherited.py``) before them, unless a rekey put one there itself."""

    def __init__(
        self,
        conn: Conn,
        seal: Seal,
        *,
        refused: str | None,
        first: Callable[[pgsql.Chain], Awaitable[EventRow | None]],
    ) -> None:
        super().__init__(conn, seal, refused=refused)
        self._first: Callable[[pgsql.Chain], Awaitable[EventRow | None]] | None = first

    async def flush(self) -> None:
        if self._first is not None and self._pending:
            first, self._first = self._first, None
            if all(row[2] != inherited.INHERITED for row, _ in self._pending):
                ahead = await first(self)
                if ahead is not None:
                    self._pending.insert(0, (ahead, []))
        await super().flush()


class GroupCommit:
    """The writer side of ``PostgresJournal``: its queue, its loop and its batches."""

    seal: Seal
    _refused: str | None  # why no write may extend the chain (a rollback found at open)
    _pool: Any  # asyncpg.Pool
    _timeout: float
    _queue: asyncio.Queue[Queued | None] | None
    _mark: formats.Mark  # the stored-format mark (replay/formats.py)
    _clock: Callable[[], float]
    _inheritance: inherited.Inheritance | None = None  # made at the first batch

    async def _unavailable(self, exc: BaseException) -> JournalUnavailable:
        raise NotImplementedError

    async def _checkpoint(self, signed: tuple[int, bytes] | None, *, closing: bool = False) -> None:
        raise NotImplementedError

    async def _write(self, op: WriteOp, *, early: bool = True) -> Any:
        """Queue a write for the writer task; its result once the batch holding it has committed.
        The ``~inherited`` plan of a batch holding it is made as the batch begins if ``early``."""
        queue = self._queue
        if queue is None:
            raise JournalUnavailable(f"journal {self!r} is not open")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue.put_nowait((op, fut, early))
        return await fut

    async def _late(self, op: WriteOp) -> Any:
        """``_write`` for a write that writes no event, refusal row or mark before it appends to
        the chain: the ``~inherited`` plan (a read of every event) is left to the batch's first
        append, and not made at all if the batch appends nothing."""
        return await self._write(op, early=False)

    async def _write_loop(self, queue: asyncio.Queue[Queued | None]) -> None:
        """Take everything queued (up to MAX_BATCH), run it in one transaction, commit once.

        Like replay/dbthread.py on SQLite: the writes that queue up while one batch commits go
        together in the next, so instances take the chain head once per batch, not once per write.
        """
        batch: list[Queued] = []
        try:
            while True:
                first = await queue.get()
                if first is None:
                    return
                batch, stopping = batch_after(
                    first, queue.get_nowait, asyncio.QueueEmpty, MAX_BATCH
                )
                await self._run_batch(batch)
                batch = []
                if stopping:
                    return
        finally:
            # Cancelled (a close that was itself cancelled): nobody must wait forever.
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    batch.append(item)
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(JournalUnavailable(f"journal {self!r} was closed"))

    def _inherit(self) -> inherited.Inheritance:
        if self._inheritance is None:
            self._inheritance = inherited.Inheritance()
        return self._inheritance

    async def _chain(self, conn: Conn, early: bool) -> pgsql.Chain:
        """The batch's chain, as its transaction begins: if the journal's mark is none, what the
        first releases left is counted now, before any of the batch's writes, if ``early`` (a
        write of the batch may write tombstones, refusal rows or the mark before it appends), else
        at the batch's first append (``_inherited``)."""
        if self._inherit().starting(early=early):
            self._inherit().planned(await inherited.plan_postgres(conn))
        return _FirstChain(
            conn, self.seal, refused=self._refused, first=lambda chain: self._inherited(conn, chain)
        )

    async def _inherited(self, conn: Conn, chain: pgsql.Chain) -> EventRow | None:
        """At the batch's first flush: the ``~inherited`` event planned as it began (or now, before
        any of its events is written, if it was left to this flush), if the mark is still none with
        the chain head locked (another instance may have raised it since)."""
        inherit = self._inherit()
        if inherit.due:
            inherit.planned(await inherited.plan_postgres(conn))
        counts = inherit.take()
        if counts is None:
            return None
        await chain.lock()
        if not await inherited.unmarked_postgres(conn):
            return None
        return inherited.record(self.seal, self._clock(), counts)

    async def _raise_mark(self, conn: Conn, chain: pgsql.Chain) -> None:
        """Last in a batch's transaction, the chain head locked if it moved: the stored-format
        mark raised to the generation of what the batch wrote (``replay/formats.py``; any event
        the chain took is sealed)."""
        if chain.signed is not None:
            self._mark.need(formats.SEALED)
        raising = self._mark.due()
        if raising is not None:
            await conn.execute(raising)

    async def _run_batch(self, batch: list[Queued]) -> None:
        """Run ``batch`` in one transaction; an unexpected failure re-runs its ops one by one.

        Operations raise only FederationErrors, and only before they write anything, so those need
        no savepoint. Anything else (the database refusing a statement, a bug) rolls the whole
        batch back; its ops are then retried one per transaction so that one bad op cannot fail
        its neighbours. A lost connection fails the batch: retrying would only fail again.
        """
        batch = [item for item in batch if not item[1].done()]  # cancelled while queued
        if not batch:
            return
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        signed: tuple[int, bytes] | None = None
        try:
            pool = self._pool
            if pool is None:
                raise JournalUnavailable(f"journal {self!r} is not open")
            t0 = time.perf_counter()
            self._mark.begin()
            async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                chain = await self._chain(conn, any(early for _, _, early in batch))
                for op, fut, _ in batch:
                    try:
                        results.append((fut, await op(conn, chain), None))
                    except FederationError as exc:
                        results.append((fut, None, exc))
                await chain.flush()
                await self._raise_mark(conn, chain)
            signed = chain.signed
            self._mark.committed()
            tally.committed(self, time.perf_counter() - t0, len(batch))
            results = [
                (fut, value.make() if isinstance(value, _Later) else value, exc)
                for fut, value, exc in results
            ]
        except Exception as exc:
            lost = isinstance(exc, (*pgsql.CONNECTION_LOST, TimeoutError))
            if len(batch) > 1 and not lost:
                for item in batch:
                    await self._run_batch([item])
                return
            error: BaseException = exc
            if isinstance(exc, pgsql.DRIVER_ERRORS):
                error = await self._unavailable(exc)
                error.__cause__ = exc
            results = [(fut, None, error) for _, fut, _ in batch]
        for fut, value, failure in results:
            if fut.done():
                continue
            if failure is None:
                fut.set_result(value)
            else:
                fut.set_exception(failure)
        if signed is not None:
            await self._checkpoint(signed)
