"""The PostgreSQL journal: several broker instances share one journal and one queue.

PostgreSQL does the coordination, nothing home-made: work is claimed with ``FOR UPDATE SKIP LOCKED``
and leased until an expiry (reclaimed by expiry alone); every write is fenced by the lease owner;
the hash chain stays one sequence because each transaction that appends events locks the single
``chain_head`` row last and holds it to its commit. Writes are group-committed: one writer task
per instance runs whatever queued up in one transaction that takes the chain head once.
Migrations (``replay/sql/postgresql``) run at ``open()`` under an advisory lock, so instances
starting together do not race. The SQL lives in ``replay/pgsql.py``, the callback marks'
methods in ``replay/pgnotify.py``, what operators do (verify, rekey, archive) in
``replay/pgadmin.py``.

Keys come from ``TONGBAN_JOURNAL_KEY_FILE`` (or ``TONGBAN_JOURNAL_KEYS``, see ``replay/keys.py``):
payloads sealed, the head signed in the transaction that moves it, checkpoints in a file per
instance (beside its key file). Without a key the journal is neither sealed nor signed.

Behaviour matches ``replay/sqlite.py`` method for method (the contract tests run on both).
Failures of the database or the network surface as JournalUnavailable; ours pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg

from federation.domain.errors import JournalDamaged, JournalUnavailable
from federation.domain.models import Event, Exchange, NewExchange, StateChange
from replay import formats, instances, pgsql, refs, rekey, rows, rules, sessions, tally, trail
from replay import sets as mapping_sets
from replay.chain import ChainBroken
from replay.checkpoints import Cadence, Checkpoints, Timer
from replay.instances import Instance
from replay.journal import AuditEntry, Backend, Query, Refusal, TrailQuery
from replay.keys import KeyPlace, from_environment
from replay.lasterror import column as error_column
from replay.pgadmin import PostgresAdmin
from replay.pgroom import Room
from replay.pgsql import Conn
from replay.pgwrite import Queued, _Later
from replay.rekeyed import checked_end
from replay.rows import current, read_exchange
from replay.seal import Seal
from replay.search import POSTGRESQL, UNREADABLE_ERROR, received_sql, search_sql
from replay.sessions import StoredSession
from replay.sets import MappingSets

# A stored error that is not UTF-8 JSON (altered): PostgreSQL 15's cast fails in a search by error.
UNREADABLE = (asyncpg.InvalidTextRepresentationError, asyncpg.CharacterNotInRepertoireError)
T = TypeVar("T")


class PostgresJournal(PostgresAdmin):
    """Journal backend on a PostgreSQL database (all objects in ``schema``, default: search_path)."""

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], float] = time.time,
        schema: str | None = None,
        pool_size: int = 10,
        command_timeout: float = 30.0,
        keys: KeyPlace | None = None,
        checkpoint_every: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.keys = keys if keys is not None else from_environment()
        self.seal = Seal(None)
        self.sets = MappingSets()  # the mapping sets this process has read or written
        self.checkpoints = Checkpoints(self.keys.checkpoints, self.seal)
        self._cadence = Cadence(checkpoint_every)
        self._timer = Timer.of(self, self._cadence, clock)  # an idle journal's owed checkpoint
        self.schema = schema
        self._clock = clock
        self._pool_size = pool_size
        self._timeout = command_timeout
        self._pool: Any = None  # asyncpg.Pool
        self._queue: asyncio.Queue[Queued | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._mark = formats.Mark()
        self._refused: str | None = None
        self.room = Room()  # a write refused for want of the server's space (/readyz)

    def __repr__(self) -> str:
        where = f", schema={self.schema!r}" if self.schema else ""
        return f"PostgresJournal({pgsql.masked(self.dsn)!r}{where})"

    # -- lifetime -----------------------------------------------------------------------------

    def _connect_args(self) -> dict[str, Any]:
        settings = {}
        # ?application_name=… in the DSN tells instances apart in pg_stat_activity: keep it.
        if "application_name" not in parse_qs(urlsplit(self.dsn).query):
            settings["application_name"] = "tongban"
        if self.schema is not None:
            settings["search_path"] = pgsql.quote_ident(self.schema)
        return {
            "server_settings": settings,
            "command_timeout": self._timeout,
            "timeout": self._timeout,
        }

    async def open(self) -> None:
        """Connect the pool and apply pending migrations."""
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=min(2, self._pool_size),
                max_size=self._pool_size,
                **self._connect_args(),
            )
        except (*pgsql.DRIVER_ERRORS, ValueError) as exc:
            raise JournalUnavailable(f"journal {self!r}: cannot connect: {exc}") from exc
        self._pool = pool
        try:
            await self._run(lambda conn: pgsql.migrate(conn, self.schema), transaction=False)
            await self._run(lambda c: formats.check_postgres(c, repr(self)), transaction=False)
            await self._run(lambda c: tally.pg_count_in_place(c, repr(self)), transaction=False)
            await self._use_keys()
            await self._check_end()
        except BaseException:
            await self.close()
            raise
        self._timer.start(asyncio.get_running_loop())
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(self._queue), name=f"{self!r} writer")

    async def _use_keys(self) -> None:
        mac = await self._run(lambda conn: conn.fetchval("SELECT mac FROM chain_head"))

        async def sign_first(seal: Seal) -> tuple[int, bytes] | None:
            return await self._run(lambda conn: pgsql.sign_first_head(conn, seal))

        await rekey.open_keys(self, mac is not None, sign_first, self._clock())

    async def _check_end(self) -> None:
        """This instance's checkpoints against the journal, as on SQLite (``SQLiteJournal``), once
        carried to the chain of a rekey run through another instance (``replay/rekeyed.py``)."""
        run = functools.partial(self._run, transaction=False)
        problem = await checked_end(self, run, pgsql.end_at)
        self._refused = None if problem is None else f"journal {self!r}: {problem}"

    def use(self, seal: Seal) -> None:
        """Seal and sign with ``seal`` from now on."""
        self.seal = seal
        self.checkpoints = Checkpoints(self.keys.checkpoints, seal)

    def _current_seal(self) -> Seal:
        return self.seal

    async def _checkpoint(self, signed: tuple[int, bytes] | None, *, closing: bool = False) -> None:
        """After a commit that signed ``signed``: a checkpoint if one is due (always at close)."""
        now = self._clock()
        point = self._cadence.due(signed, now, closing=closing)
        if point is not None:
            with contextlib.suppress(OSError):  # best effort: verify tells what one leaves unproven
                await asyncio.to_thread(self.checkpoints.write, *point, now)
        elif not closing:  # owed: written when due, however idle
            self._timer.owed()

    async def migrate(self) -> list[str]:
        """Apply pending migrations (``tongban journal migrate``); the files applied, in order."""

        async def run(conn: Conn) -> list[str]:
            applied = await pgsql.migrate(conn, self.schema)
            await formats.check_postgres(conn, repr(self))
            await tally.pg_count_in_place(conn, repr(self))
            return applied

        if self._pool is not None:
            return await self._run(run, transaction=False)
        try:
            conn = await asyncpg.connect(self.dsn, **self._connect_args())
        except (*pgsql.DRIVER_ERRORS, ValueError) as exc:
            raise JournalUnavailable(f"journal {self!r}: cannot connect: {exc}") from exc
        try:
            return await self._translated(run(conn))
        finally:
            await conn.close()

    async def close(self) -> None:
        await self._timer.stop()
        queue, self._queue = self._queue, None
        writer, self._writer = self._writer, None
        if queue is not None and writer is not None:
            queue.put_nowait(None)  # the writer finishes what is queued, then stops
            try:
                await asyncio.shield(writer)
            except asyncio.CancelledError:
                writer.cancel()
                raise
        pool, self._pool = self._pool, None
        if pool is None:
            return
        await self._checkpoint(None, closing=True)
        try:
            await asyncio.wait_for(pool.close(), self._timeout)
        except pgsql.DRIVER_ERRORS:
            pool.terminate()  # connections that would not close in time are cut
        except asyncio.CancelledError:
            pool.terminate()
            raise

    async def _translated(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except pgsql.DRIVER_ERRORS as exc:
            raise await self._unavailable(exc) from exc

    async def _unavailable(self, exc: BaseException) -> JournalUnavailable:
        self.room.note(exc)  # every failed statement, a write's or a probe's, comes through here
        if isinstance(exc, pgsql.CONNECTION_LOST) and self._pool is not None:
            # The server restarted or failed over: its other pooled connections are dead too.
            # Replace them all on their next use, so this call alone fails, not one per slot.
            await self._pool.expire_connections()
        return JournalUnavailable(f"journal {self!r}: {exc}")

    async def _run(
        self,
        op: Callable[[Conn], Awaitable[T]],
        *,
        transaction: bool = True,
        isolation: str | None = None,
        readonly: bool = False,
    ) -> T:
        """Run ``op`` on a pooled connection, in a transaction unless told otherwise."""
        pool = self._pool
        if pool is None:
            raise JournalUnavailable(f"journal {self!r} is not open")

        async def go() -> T:
            async with pool.acquire(timeout=self._timeout) as conn:
                if not transaction:
                    return await op(conn)
                async with conn.transaction(isolation=isolation, readonly=readonly):
                    return await op(conn)

        return await self._translated(go())

    # -- the Journal interface ---------------------------------------------------------------

    @property
    def writes_refused(self) -> bool:
        """A write was refused for want of the server's space and no probe has found room."""
        return self.room.failing is not None

    async def ping(self) -> None:
        if self._refused is not None:
            raise ChainBroken(self._refused)
        writable = await self._run(
            lambda conn: conn.fetchval(
                "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"
            ),
            transaction=False,
        )
        if not writable:
            raise JournalUnavailable(f"journal {self!r}: the database is read-only (a standby?)")
        if self.room.failing is None:
            return
        # Reads answer, and so do updates in place, while applications are refused for want of
        # the server's space: not ready until a probe finds room again (replay/pgroom.py).
        try:
            await self.room.recheck(functools.partial(self._run, transaction=False))
        except JournalUnavailable as exc:
            if self.room.failing is None:
                raise
            raise JournalUnavailable(f"journal {self!r}: {self.room.reason()}") from exc
        if self.room.failing is not None:
            raise JournalUnavailable(f"journal {self!r}: {self.room.reason()}")

    async def create(
        self, new: NewExchange, *, owner: str, lease_until: float
    ) -> tuple[Exchange, bool]:
        event = Event(
            exchange_id=new.id, kind="received", at=new.received_at, data=new.received_data()
        )
        # Sealed now, before its turn in the writer's batch; sealed again there if a rekey
        # changed the seal in between, and its compression context remembered only once written.
        received = rows.Sealing(self._current_seal, new.id, [event], new.received_at)
        received.prepare()

        async def op(conn: Conn, chain: pgsql.Chain) -> tuple[Exchange, bool]:
            # A row of the same key can vanish between the INSERT and the SELECT (archived): retry.
            for _ in range(3):
                inserted = await conn.fetchval(
                    pgsql.CREATE,
                    new.id,
                    new.direction.value,
                    new.source,
                    new.target,
                    new.service,
                    new.idempotency_key,
                    new.request_hash,
                    owner,
                    lease_until,
                    new.received_at,
                )
                if inserted is not None:
                    break
                row = await conn.fetchrow(pgsql.BY_KEY, new.source, new.idempotency_key)
                if row is None:
                    continue
                rules.repeat_of(new, exchange_id=row["id"], request_hash=row["request_hash"])
                if chain.pending_for([row["id"]]):  # created earlier in this batch
                    await chain.flush()
                events = await pgsql.histories(conn, [row["id"]], self.seal)
                return (await pgsql.exchanges(conn, [row], events, self.seal, self.sets))[0], False
            else:
                raise JournalUnavailable(f"exchange key {new.idempotency_key!r} keeps changing")
            if new.applicant_refs:
                await conn.execute(pgsql.REFS, refs.kept_all(new.applicant_refs), new.id)
            self._mark.row(self.seal, new.id)
            chain.add(received.rows(rows.shown_digest(rows.created(new))))
            return new.as_received(), True

        seen = self.room.refusals
        result: tuple[Exchange, bool] = await self._late(op)
        if result[1]:
            self.room.wrote(seen)  # rows added: room, where the probe cannot tell
        return result

    async def record(
        self,
        exchange_id: str,
        events: Sequence[Event],
        change: StateChange,
        *,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> None:
        now = self._clock()
        items: list[mapping_sets.Item] = []  # the mapping sets this write refers to
        versions = self.sets.column(change.mapping_versions, items)
        stored = self.sets.referring(events, items)
        head = (exchange_id, change.state.value, now, change.next_attempt_at, versions)
        tail = (
            change.attempts,
            change.notify,
            rules.releases_lease(change),
            lease_until,
            sorted(s.value for s in rules.allowed_from(change)),
            owner,
            rules.notify_as(change),
            change.lifecycle_state,
            change.expect_lifecycle,
            change.expect_quiet,
            change.expect_steps,
        )
        receipt = rows.receipt_column(change.receipt)

        async def op(conn: Conn, chain: pgsql.Chain) -> None:
            # The guarded UPDATE runs first: if it matches nothing, nothing has been written. The
            # partner's words in its last error are sealed with the seal in force now, as the
            # events below: never with one a rekey retired while the write waited.
            error = error_column(self.seal, exchange_id, change.last_error)
            shown = await conn.fetchrow(pgsql.RECORD, *head, receipt, error, *tail)
            if shown is None:
                row = await conn.fetchrow(pgsql.BY_ID, exchange_id)
                raise rules.refusal_reason(exchange_id, current(row), change, owner)
            self._mark.row(self.seal, exchange_id, change.last_error)
            if items:
                await conn.executemany(mapping_sets.INSERT_PG, items)
            state = rows.shown_digest(shown)
            chain.add(rows.stored_events(self.seal, exchange_id, stored, state, now=now))

        seen = self.room.refusals
        await self._late(op)
        self.room.wrote(seen)  # its events added: room, where the probe cannot tell

    async def get(self, exchange_id: str) -> Exchange | None:
        async def op(conn: Conn) -> Exchange | None:
            row = await conn.fetchrow(pgsql.BY_ID, exchange_id)
            if row is None:
                return None
            history = await pgsql.histories(conn, [exchange_id], self.seal)
            return (await pgsql.exchanges(conn, [row], history, self.seal, self.sets))[0]

        # One snapshot for the row and its events.
        return await self._run(op, isolation="repeatable_read", readonly=True)

    async def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        async def op(conn: Conn, chain: pgsql.Chain) -> _Later:
            claimed = await conn.fetch(pgsql.CLAIM, now, max(0, limit), owner, lease_until)
            mine = sorted(claimed, key=lambda r: str(r["id"]))
            if chain.pending_for(r["id"] for r in mine):  # written earlier in this batch
                await chain.flush()
            history = await pgsql.histories(conn, [r["id"] for r in mine], self.seal)
            everything = [e for events in history.values() for e in events]
            missing = self.sets.missing([r["mapping_versions"] for r in mine], everything)
            await pgsql.learn(conn, self.sets, missing)
            reclaims = [
                Event(
                    exchange_id=r["id"],
                    at=now,
                    kind="lease_reclaimed",
                    data={"from": r["previous_owner"], "to": owner, "state": r["state"]},
                )
                for r in mine
                if r["previous_owner"] is not None and r["previous_owner"] != owner
            ]
            # Appended after reading the histories: the rows are ours (locked) till commit, so
            # no other event can arrive for them meanwhile. Their seqs are known once the batch
            # has flushed its events, so the exchanges are made then.
            seqs = chain.add(
                [s for e in reclaims for s in rows.stored_events(self.seal, e.exchange_id, [e])]
            )

            def make() -> list[Exchange]:
                for e, seq in zip(reclaims, seqs, strict=True):
                    history[e.exchange_id].append(replace(e, seq=seq))
                return [read_exchange(r, history[r["id"]], self.seal, self.sets) for r in mine]

            return _Later(make)

        claimed: list[Exchange] = await self._late(op)
        return claimed

    async def renew(self, *, owner: str, ids: Sequence[str], lease_until: float) -> int:
        if not ids:
            return 0
        status = await self._late(
            lambda conn, _: conn.execute(pgsql.RENEW, lease_until, owner, list(ids))
        )
        return pgsql.affected(status)

    async def release(self, *, owner: str) -> int:
        status = await self._late(lambda conn, _: conn.execute(pgsql.RELEASE, owner))
        return pgsql.affected(status)

    async def search(self, query: Query) -> list[Exchange]:
        sql, args = search_sql(query, POSTGRESQL)

        async def op(conn: Conn) -> list[Exchange]:
            try:
                found = await conn.fetch(sql, *args)
            except UNREADABLE as exc:
                if not query.error:
                    raise
                raise JournalDamaged(f"{UNREADABLE_ERROR} ({type(exc).__name__})") from None
            out = await pgsql.exchanges(conn, found, {}, self.seal, self.sets)
            if not (query.with_supplement_of and out):
                return out
            by_id, ids = received_sql([x.id for x in out], POSTGRESQL)
            received = await conn.fetch(by_id, *ids)
            return rows.with_supplements(out, received, self.seal)

        return await self._run(op, transaction=False)

    async def tally(self) -> tally.Tally:
        return await self._run(tally.pg_tally, transaction=False)

    async def counts(self) -> Mapping[str, int]:
        found = await self._run(lambda conn: conn.fetch(pgsql.COUNTS), transaction=False)
        return {r[0]: r[1] for r in found}

    async def announce(self, instance: Instance) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(instances.UPSERT_PG, *instances.values(instance))
            await conn.execute(instances.FORGET_PG, instance.seen_at - instances.FORGET_AFTER)

        await self._run(op)
        # The count changes the triggers append are folded in here too, so that they stay
        # bounded where nothing scrapes /metrics (about seven rows a delivery otherwise pile up);
        # after the announcement's own commit, and never waiting for another instance's fold. A
        # fold that fails loses nothing (it is one statement) and is no failed announcement: the
        # next one, or a tally, folds again.
        with contextlib.suppress(JournalUnavailable):
            await self._run(tally.pg_compact, transaction=False)

    async def withdraw(self, instance_id: str) -> None:
        await self._run(lambda conn: conn.execute(instances.WITHDRAW_PG, instance_id))

    async def instances(self, *, seen_since: float) -> list[Instance]:
        found = await self._run(lambda c: c.fetch(instances.SEEN_PG, seen_since), transaction=False)
        return [instances.of_row(r) for r in found]

    async def open_session(self, session: StoredSession, *, now: float) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(sessions.PURGE_PG, now)
            await conn.execute(sessions.INSERT_PG, *sessions.values(session))

        await self._run(op)

    async def session(self, token_hash: bytes, *, now: float) -> StoredSession | None:
        row = await self._run(
            lambda conn: conn.fetchrow(sessions.GET_PG, token_hash, now), transaction=False
        )
        return None if row is None else sessions.of_row(row)

    async def end_session(self, token_hash: bytes) -> None:
        await self._run(lambda conn: conn.execute(sessions.END_PG, token_hash))

    def session_mac(self, parts: Sequence[bytes]) -> bytes | None:
        return self.seal.sign(sessions.MAC_TAG, parts)

    async def refuse(self, refusal: Refusal) -> None:
        async def op(conn: Conn, chain: pgsql.Chain) -> None:
            # Sealed in the write, under the seal in force then (a rekey may come between).
            values = rows.refusal_values(self.seal, pgsql.storable(refusal))
            seq = await conn.fetchval(pgsql.REFUSE, *values)
            chain.add([rows.refusal_event(self.seal, seq, refusal.at, values)])

        await self._write(op)

    async def note(self, entry: AuditEntry) -> None:
        async def op(conn: Conn, chain: pgsql.Chain) -> None:
            chain.add([trail.audit_event(self.seal, entry)])

        await self._late(op)

    async def trail(self, query: TrailQuery) -> list[AuditEntry]:
        async def fetch(before: int | None) -> Sequence[Any]:
            sql, args = trail.TRAIL_FIRST_PG, [trail.PAGE]
            if before is not None:
                sql, args = trail.TRAIL_AFTER_PG, [trail.PAGE, before]
            found: Sequence[Any] = await self._run(
                lambda conn: conn.fetch(sql, *args), transaction=False
            )
            return found

        return await trail.paged(fetch, self.seal, query)


if TYPE_CHECKING:  # the factory opens this module by name: mypy holds the class to Backend here
    _backend: type[Backend] = PostgresJournal
